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
    rows = normalise(np.asarray(landmarks, np.float64).reshape(1, 21, 3), np.array([handedness == "Left"]))
    return rows[0]


def normalise(points: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """(N, 21, 3) points, (N,) bool mirror -> (N, 64) float32 rows (hand_features for many hands at once;
    train/augment.py re-normalises turned hands with it). A degenerate hand gets the no-hand row."""
    p = np.asarray(points, np.float64)
    p = p - p[:, WRIST:WRIST + 1]
    up = p[:, MIDDLE_MCP, :2]
    size = np.hypot(up[:, 0], up[:, 1])
    ok = np.isfinite(p).all(axis=(1, 2)) & (size >= 1e-6)
    angle = np.arctan2(up[:, 0], -up[:, 1])
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x = c * p[..., 0] + s * p[..., 1]
    y = -s * p[..., 0] + c * p[..., 1]
    out = np.stack([np.where(np.asarray(mirror)[:, None], -x, x), y, p[..., 2]], axis=-1)
    out = out / np.where(ok, size, 1.0)[:, None, None]
    rows = np.concatenate([out.reshape(len(p), 63), np.ones((len(p), 1))], axis=1)
    rows[~ok] = 0.0
    return rows.astype(np.float32)


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
