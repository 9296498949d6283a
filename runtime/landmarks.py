"""The hand's 21 landmarks as a second view for the classifier (next to the image crop).

A model whose contract has `landmarks: 64` takes a second input, `landmarks` (N, 64) float32:
the 21 points of runtime/hands.py normalised for position, scale, rotation and hand, then a
presence flag. An image with no hand found gets all zeros (flag 0); the model is trained with
such rows too, so it falls back to the image alone. Training, export, asl-bench and asl-run all
build this vector here, so they cannot drift apart.
"""
from __future__ import annotations

import numpy as np

LANDMARK_FEATURES = 64  # 21 x (x, y, z) + presence flag
LANDMARKS_INPUT = "landmarks"  # the graph input's name
WRIST, MIDDLE_MCP = 0, 9


def hand_features(landmarks, handedness: str) -> np.ndarray:
    """(21, 3) landmarks in frame pixels (z on the same scale) -> (64,) float32.

    Relative to the wrist; rotated so wrist -> middle knuckle points up; divided by that length;
    x mirrored for MediaPipe's "Left" label so both hands look alike; last value 1 (a hand)."""
    p = np.asarray(landmarks, np.float64).reshape(21, 3)
    p = p - p[WRIST]
    up = p[MIDDLE_MCP, :2]
    size = float(np.hypot(*up))
    if not np.isfinite(p).all() or size < 1e-6:
        return no_hand()
    angle = np.arctan2(up[0], -up[1])
    c, s = np.cos(angle), np.sin(angle)
    xy = p[:, :2] @ np.array([[c, s], [-s, c]]).T
    out = np.concatenate([xy, p[:, 2:3]], axis=1) / size
    if handedness == "Left":
        out[:, 0] = -out[:, 0]
    return np.append(out.ravel(), 1.0).astype(np.float32)


def no_hand() -> np.ndarray:
    return np.zeros(LANDMARK_FEATURES, np.float32)


def of_hand(hand) -> np.ndarray:
    """A runtime/hands.py Hand (or None) -> the model's landmark row."""
    return no_hand() if hand is None else hand_features(hand.landmarks, hand.handedness)


def stack(rows, n: int) -> np.ndarray:
    """Rows (None for no hand) -> (n, 64); missing rows are no hand."""
    rows = list(rows) if rows is not None else []
    out = np.zeros((n, LANDMARK_FEATURES), np.float32)
    for i, r in enumerate(rows[:n]):
        if r is not None:
            out[i] = r
    return out
