"""J and Z as motions: recognised from a fingertip's path over tracked hand landmarks.

ASL's J is the pinky drawing a hook (down, then curving to the side and up) and Z is the
index finger drawing a Z (across, diagonally back and down, across again). A still image
only shows their end pose, so camera mode recognises the motion itself:

1. Each frame gives the 21 hand landmarks (frame pixels, MediaPipe order) or None.
2. The fingertip path over the last ``window_s`` seconds is made relative to its start and
   divided by the hand's size (median wrist -> middle-finger knuckle distance), so it does
   not depend on where the hand is or how far from the camera.
3. The path is simplified into straight strokes (Ramer-Douglas-Peucker with a tolerance of
   ``tolerance`` hand sizes, so jitter disappears); strokes shorter than ``min_stroke`` are
   dropped and neighbours pointing the same way are merged.
4. Z: exactly three strokes: across, back-and-down diagonally, across the first way again.
   J: first stroke down, then strokes that keep turning the same way until the path points
   sideways or up (a hook of 70-200 degrees in total) and has gone sideways by 0.8 ``min_len``.
   Left/right is not fixed (mirrored cameras, left-handed signers): both are accepted.
5. The hand shape must fit on most frames of the motion: pinky out and index/middle curled
   for J, index out and middle/ring/pinky curled for Z. An open hand waving does not type.
6. The path must be purposeful: its length (lightly smoothed) at most ``max_wander`` times
   the length of its strokes. A hand drifting at random can trace any shape, but not directly.

Every suffix of the window is tried, so a motion is found as soon as it ends even when the
hand did something else just before. After a detection the window is cleared (one motion,
one letter). Pure numpy, deterministic.
"""
from __future__ import annotations

import math
import time
from collections import deque

import numpy as np

WRIST, MIDDLE_MCP = 0, 9
PALM = (0, 5, 9, 13, 17)  # the wrist and the four knuckles: where the hand is, whatever its fingers do
# (pip, tip) landmark indices per finger.
FINGERS = {"index": (6, 8), "middle": (10, 12), "ring": (14, 16), "pinky": (18, 20)}
# The finger whose tip draws the letter, which fingers must be out and which curled.
SHAPES = {
    "J": {"tip": 20, "out": ("pinky",), "curled": ("index", "middle")},
    "Z": {"tip": 8, "out": ("index",), "curled": ("middle", "ring", "pinky")},
}
# What a still-image classifier reads while the motion starts or ends: J starts as I and the
# classes J and Z are their end poses. Typed just before the motion, they were the motion.
MOTION_POSES = {"J": ("I", "J"), "Z": ("Z",)}
# A finger is out when its tip is this much farther from the wrist than its middle joint.
EXTENDED_RATIO = 1.15


def finger_states(landmarks: np.ndarray) -> dict:
    """{finger: True when extended} from one frame's (21, 2+) landmarks."""
    wrist = landmarks[WRIST, :2]
    out = {}
    for name, (pip, tip) in FINGERS.items():
        d_tip = np.linalg.norm(landmarks[tip, :2] - wrist)
        d_pip = np.linalg.norm(landmarks[pip, :2] - wrist)
        out[name] = bool(d_tip > EXTENDED_RATIO * d_pip)
    return out


def shape_fits(landmarks: np.ndarray, letter: str) -> bool:
    states = finger_states(landmarks)
    shape = SHAPES[letter]
    return all(states[f] for f in shape["out"]) and not any(states[f] for f in shape["curled"])


def simplify(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Ramer-Douglas-Peucker: the path's corners, dropping points within tolerance of a chord."""
    if len(points) < 3:
        return points
    a, b = points[0], points[-1]
    ab = b - a
    norm = float(np.hypot(*ab))
    rel = points - a
    if norm < 1e-9:
        dist = np.hypot(rel[:, 0], rel[:, 1])
    else:
        dist = np.abs(ab[0] * rel[:, 1] - ab[1] * rel[:, 0]) / norm
    i = int(np.argmax(dist))
    if dist[i] <= tolerance:
        return np.stack([a, b])
    left = simplify(points[:i + 1], tolerance)
    return np.concatenate([left[:-1], simplify(points[i:], tolerance)])


def strokes(path: np.ndarray, tolerance: float, min_stroke: float, merge_deg: float = 30.0) -> list:
    """Path (N, 2) in hand sizes -> list of stroke vectors (dx, dy), y pointing down."""
    corners = simplify(path, tolerance)
    out = []
    for v in np.diff(corners, axis=0):
        if np.hypot(*v) < min_stroke:
            continue
        if out and abs(_turn(out[-1], v)) < merge_deg:
            out[-1] = out[-1] + v
        else:
            out.append(v.astype(float))
    return out


def _angle(v) -> float:
    """Direction in degrees, 0 = right, 90 = down (image y)."""
    return math.degrees(math.atan2(v[1], v[0]))


def _turn(a, b) -> float:
    """Signed turn from direction a to direction b, in (-180, 180]."""
    d = _angle(b) - _angle(a)
    return (d + 180.0) % 360.0 - 180.0


def _horizontal(v, max_deg: float = 30.0) -> bool:
    return abs(math.degrees(math.atan2(abs(v[1]), abs(v[0])))) <= max_deg


def is_z(s: list, min_len: float) -> bool:
    if len(s) != 3 or any(np.hypot(*v) < min_len for v in s):
        return False
    first, diag, last = s
    slope = math.degrees(math.atan2(abs(diag[1]), abs(diag[0])))
    return (_horizontal(first) and _horizontal(last)
            and np.sign(first[0]) == np.sign(last[0]) != np.sign(diag[0])
            and diag[1] > 0 and 20.0 <= slope <= 75.0)


def is_j(s: list, min_len: float) -> bool:
    if not 2 <= len(s) <= 5 or np.hypot(*s[0]) < min_len:
        return False
    if abs(_angle(s[0]) - 90.0) > 30.0:  # starts going down
        return False
    turns = [_turn(a, b) for a, b in zip(s, s[1:])]
    if not (all(t > 0 for t in turns) or all(t < 0 for t in turns)):
        return False  # a hook turns one way only
    if max(abs(t) for t in turns) > 120.0:
        return False  # and is rounded: a sharp reversal (down, then back up) is not a J
    total = abs(sum(turns))
    last = s[-1]
    # The hook goes sideways by most of min_len (a twitch up at the end is not a hook).
    across = abs(sum(v[0] for v in s[1:]))
    sideways = across >= 0.8 * min_len and last[1] <= 0.35 * np.hypot(*last)
    return 70.0 <= total <= 200.0 and sideways


class MotionSpotter:
    """Feed update(landmarks or None, timestamp) per frame; it returns "J", "Z" or None."""

    def __init__(self, window_s: float = 1.5, tolerance: float = 0.15, min_stroke: float = 0.2,
                 min_len: float = 0.5, shape_share: float = 0.6, min_frames: int = 6,
                 max_wander: float = 1.5):
        self.window_s, self.tolerance, self.min_stroke = window_s, tolerance, min_stroke
        self.min_len, self.shape_share, self.min_frames = min_len, shape_share, min_frames
        self.max_wander = max_wander
        self.reset()

    def reset(self):
        self._frames = deque()  # (timestamp, landmarks (21, 2), {letter: hand shape fits})

    def update(self, landmarks, now: float | None = None) -> str | None:
        now = time.monotonic() if now is None else float(now)
        if landmarks is None:
            self.reset()  # the hand was lost: a path across the gap means nothing
            return None
        lm = np.asarray(landmarks, float)[:, :2]
        self._frames.append((now, lm, {letter: shape_fits(lm, letter) for letter in SHAPES}))
        while now - self._frames[0][0] > self.window_s:
            self._frames.popleft()
        found = self._spot()
        if found is not None:
            self.reset()
        return found

    def _spot(self) -> str | None:
        """Every suffix of the window, oldest start first, Z before J: the first that draws its letter.
        The two cheap tests (the hand shape on enough of the suffix's frames, the tip far enough from
        its start) are computed for all starts at once; only the suffixes that pass them are traced."""
        n = len(self._frames)
        starts = n - self.min_frames + 1
        shares = {}
        for letter in ("Z", "J"):
            fits = np.array([f[2][letter] for f in self._frames], float)
            shares[letter] = np.cumsum(fits[::-1])[::-1] / np.arange(n, 0, -1)  # mean of fits[start:]
        if starts <= 0 or not any((sh[:starts] >= self.shape_share).any() for sh in shares.values()):
            return None  # no suffix has the hand shape of either letter: nothing to trace (a held letter)
        lms = np.stack([f[1] for f in self._frames])
        size = float(np.median(np.linalg.norm(lms[:, MIDDLE_MCP] - lms[:, WRIST], axis=1)))
        if size < 1e-6:
            return None
        candidates = {}
        for letter in ("Z", "J"):
            share = shares[letter]
            tip = lms[:, SHAPES[letter]["tip"]]
            # [start, k]: (tip[k] - tip[start]) / size, as the traced path computes it, to the last bit
            reach = np.hypot((tip[None, :, 0] - tip[:, None, 0]) / size, (tip[None, :, 1] - tip[:, None, 1]) / size)
            reach = np.triu(reach).max(1)  # the farthest the tip gets from each start, later frames only
            candidates[letter] = (share >= self.shape_share) & (reach >= self.min_len)
        for start in range(starts):
            for letter, test in (("Z", is_z), ("J", is_j)):
                if not candidates[letter][start]:
                    continue
                tip = lms[start:, SHAPES[letter]["tip"]]
                path = (tip - tip[0]) / size
                found = strokes(path, self.tolerance, self.min_stroke)
                if test(found, self.min_len) and self._direct(path, found):
                    return letter
        return None

    def _direct(self, path: np.ndarray, found: list) -> bool:
        # A 3-frame moving average takes out per-frame landmark noise before measuring length.
        smooth = np.stack([np.convolve(path[:, k], np.ones(3) / 3, mode="valid") for k in (0, 1)], 1)
        length = float(np.hypot(*np.diff(smooth, axis=0).T).sum())
        return length <= self.max_wander * sum(float(np.hypot(*v)) for v in found)


def hand_size(lm: np.ndarray) -> float | None:
    """The hand's size in one frame's (21, 2) landmarks: wrist -> middle knuckle, or None when degenerate."""
    size = float(np.linalg.norm(lm[MIDDLE_MCP] - lm[WRIST]))
    return size if size > 1e-6 else None


def hand_place(landmarks) -> tuple | None:
    """(x, y, size): the palm's centre in frame pixels and the hand's size (hand_size, pixels),
    or None without a hand. The speller measures how far the hand slid from where it typed a letter."""
    if landmarks is None:
        return None
    lm = np.asarray(landmarks, float)[:, :2]
    size = hand_size(lm)
    if size is None:
        return None
    x, y = lm[list(PALM)].mean(0)
    return float(x), float(y), size


class HandSpeed:
    """How fast the hand moves: the median of its 21 landmarks' displacement since the last frame,
    in hand sizes (wrist -> middle knuckle) per second. None without a hand on both frames. Letters
    are held still; a hand moving fast is between letters or drawing J or Z (the speller weighs such
    frames less, runtime/spelling.py)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self._last = None

    def update(self, landmarks, now: float) -> float | None:
        if landmarks is None:
            self._last = None
            return None
        lm = np.asarray(landmarks, float)[:, :2]
        last, self._last = self._last, (float(now), lm)
        if last is None or not float(now) > last[0]:
            return None
        size = hand_size(lm)
        if size is None:
            return None
        moved = float(np.median(np.linalg.norm(lm - last[1], axis=1)))
        return moved / size / (float(now) - last[0])

