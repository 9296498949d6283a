"""The hand's 21 landmarks as a second view for the classifier (next to the image crop).

A model whose contract has `landmarks: 66` takes a second input, `landmarks` (N, 66) float32:
the 21 points of runtime/hands/ normalised for position, scale, rotation and hand, a presence
flag, then the hand's direction in the frame (sin, cos of the wrist -> middle knuckle angle from
straight up, mirrored with the hand). The shape alone cannot tell letters that differ only in
where the hand points (G/Q, H/U, K/P): the direction gives that back (benchmarks/RESULTS.md,
"The hand's direction"). Files with `landmarks: 64` take the first 64 numbers (shape and flag).
An image with no hand found gets all zeros (flag 0); the model is trained with such rows too, so
it falls back to the image alone. Training, export, asl-bench and asl-run all build this vector
here, so they cannot drift apart.
"""
from __future__ import annotations

import numpy as np

from asl_edge.common.errors import UserError

LANDMARK_FEATURES = 66  # 21 x (x, y, z), presence flag, direction (sin, cos)
SHAPE_ONLY = 64  # the earlier layout (no direction): its rows are the first 64 numbers of these
LAYOUTS = (SHAPE_ONLY, LANDMARK_FEATURES)  # the widths a model file may take
PRESENCE = 63  # index of the presence flag
DIRECTION = slice(64, 66)  # sin, cos of the hand's angle from straight up in the frame
LANDMARKS_INPUT = "landmarks"  # the graph input's name
WRIST, MIDDLE_MCP = 0, 9


def hand_features(landmarks, handedness: str) -> np.ndarray:
    """(21, 3) landmarks in frame pixels (z on the same scale) -> (66,) float32.

    Relative to the wrist; rotated so wrist -> middle knuckle points up; divided by that length;
    x mirrored for MediaPipe's "Left" label so both hands look alike; then 1 (a hand); then the
    sin and cos of the angle that rotation undid (mirrored too)."""
    rows = normalise(np.asarray(landmarks, np.float64).reshape(1, 21, 3), np.array([handedness == "Left"]))
    return rows[0]


def normalise(points: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """(N, 21, 3) points, (N,) bool mirror -> (N, 66) float32 rows (hand_features for many hands at once;
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
    turn = np.where(np.asarray(mirror), -angle, angle)[:, None]  # a mirrored hand turns the other way
    rows = np.concatenate([out.reshape(len(p), 63), np.ones((len(p), 1)), np.sin(turn), np.cos(turn)], axis=1)
    rows[~ok] = 0.0
    return rows.astype(np.float32)


def no_hand() -> np.ndarray:
    return np.zeros(LANDMARK_FEATURES, np.float32)


def of_hand(hand) -> np.ndarray:
    """A runtime/hands/ Hand (or None) -> the model's landmark row."""
    return no_hand() if hand is None else hand_features(hand.landmarks, hand.handedness)


def stack(rows, n: int, width: int = LANDMARK_FEATURES) -> np.ndarray:
    """Rows (None for no hand) -> (n, width) (a model's contract width, runtime/landmarks.LAYOUTS);
    missing rows are no hand."""
    rows = list(rows) if rows is not None else []
    out = np.zeros((n, LANDMARK_FEATURES), np.float32)
    for i, r in enumerate(rows[:n]):
        if r is not None:
            out[i] = r
    return for_width(out, width)


def for_width(rows: np.ndarray, width: int) -> np.ndarray:
    """(N, 66) rows -> the (N, width) rows a file with `landmarks: width` takes (64: the earlier
    layout, without the direction). Rows already that wide pass through."""
    rows = np.asarray(rows, np.float32)
    if width not in LAYOUTS or rows.shape[-1] < width:
        raise UserError(f"landmark rows of width {rows.shape[-1]} cannot feed a model taking {width}")
    return np.ascontiguousarray(rows[..., :width])
