"""Augmentations that need the hand's landmarks or act before the crop: what changes between
people's rooms and lights rather than between their hands.

- background: everything outside the hand (the landmarks' convex hull, widened and feathered) is
  replaced by a random smooth colour field with noise, so the model cannot lean on the training
  signer's wall.
- light: white balance (per-channel gain) and exposure (gamma), as another camera and lamp give.
These two run on the whole image before the hand crop, with the view's seeded generator.
- pose: on a landmark model's landmark rows (not the image), every training step: the same hand
  seen from another camera angle (turned up to POSE_TURN radians about each axis), with another
  depth estimate (z scaled) and landmark noise, then normalised again as the runtime does; the
  hand's direction in the frame turns with it. With POSE_BONES > 0 the hand is first made
  another person's: each finger's length, each bone and the palm's spread scaled at random
  (people's proportions differ, and the hand finder's estimate of them differs with them).
"""
from __future__ import annotations

import cv2
import numpy as np

BACKGROUND_P = 0.5  # share of views whose background is replaced (the rest keep the real one)
# pose: (yaw, pitch, roll) limits in radians, depth scale +-, landmark noise (in wrist-to-knuckle lengths).
# Set before the leave-one-source-out runs (benchmarks/RESULTS.md, "The landmark classifier: its own stage"), not tuned on them.
POSE_TURN, POSE_DEPTH, POSE_NOISE = (0.5, 0.4, 0.3), 0.3, 0.03
# Another person's hand: each finger's length scaled by exp(U(-b, b)), each bone and palm bone by
# exp(U(-b/2, b/2)). Set before the leave-one-source-out runs; 0 turns it off.
POSE_BONES = 0.0
# MediaPipe's 21 points as a tree: the wrist (0), then 4 points per finger from the palm out.
PARENT = np.array([0, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19])
FINGER = np.array([-1] + [f for f in range(5) for _ in range(4)])  # -1: the wrist
PALM = PARENT == 0  # bones from the wrist (their far end: the thumb's base and the 4 knuckles)


def hand_mask(shape, points: np.ndarray, widen: float = 0.3) -> np.ndarray:
    """float32 (H, W) in [0, 1]: 1 on the hand (hull of the 21 points, widened by `widen` of the
    hand's size for the fingers' and palm's thickness), fading to 0 outside."""
    h, w = shape[:2]
    pts = np.asarray(points, np.float64)[:, :2]
    size = float(np.ptp(pts, axis=0).max()) or 1.0
    hull = cv2.convexHull(np.round(pts).astype(np.int32))
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, hull, 255)
    k = max(3, int(widen * size) | 1)
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    feather = max(3, int(0.1 * size) | 1)
    return cv2.GaussianBlur(mask, (feather, feather), 0).astype(np.float32) / 255.0


def random_background(shape, rng: np.random.Generator) -> np.ndarray:
    """A smooth random colour field (a few control points around one base colour, upsampled, so
    more like a room's wall than a rainbow) plus fine noise."""
    h, w = shape[:2]
    cells = int(rng.integers(2, 6))
    base = rng.uniform(30, 225, 3)
    field = (base + rng.normal(0, 35, (cells, cells, 3))).astype(np.float32)
    field = cv2.resize(field, (w, h), interpolation=cv2.INTER_CUBIC)
    field += rng.normal(0, float(rng.uniform(2, 15)), (h, w, 3)).astype(np.float32)
    return np.clip(field, 0, 255)


def replace_background(rgb: np.ndarray, points, rng: np.random.Generator) -> np.ndarray:
    mask = hand_mask(rgb.shape, points)[..., None]
    out = rgb.astype(np.float32) * mask + random_background(rgb.shape, rng) * (1 - mask)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def relight(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """White balance (per-channel gain 0.8-1.2) and exposure (gamma 0.6-1.6)."""
    gain = rng.uniform(0.8, 1.2, 3).astype(np.float32)
    gamma = float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))
    x = np.clip(rgb.astype(np.float32) * gain / 255.0, 0, 1) ** gamma
    return (x * 255 + 0.5).astype(np.uint8)


def scene(rgb: np.ndarray, points, augment: tuple, rng: np.random.Generator) -> np.ndarray:
    """The whole-image augmentations of `augment` (background, light) on one image."""
    if "background" in augment and points is not None and rng.random() < BACKGROUND_P:
        rgb = replace_background(rgb, points, rng)
    if "light" in augment:
        rgb = relight(rgb, rng)
    return rgb


def _rotations(angles: np.ndarray) -> np.ndarray:
    """(N, 3) yaw (about y, up), pitch (about x), roll (about z, the camera axis) -> (N, 3, 3)."""
    (cy, cp, cr), (sy, sp, sr) = np.cos(angles).T, np.sin(angles).T
    one, zero = np.ones_like(cy), np.zeros_like(cy)
    m = lambda rows: np.stack([np.stack(r, -1) for r in rows], -2)  # noqa: E731
    yaw = m([(cy, zero, sy), (zero, one, zero), (-sy, zero, cy)])
    pitch = m([(one, zero, zero), (zero, cp, -sp), (zero, sp, cp)])
    roll = m([(cr, -sr, zero), (sr, cr, zero), (zero, zero, one)])
    return yaw @ pitch @ roll


def proportions(points: np.ndarray, rng: np.random.Generator, bones: float) -> np.ndarray:
    """(N, 21, 3) hands -> the same poses with other proportions: every bone keeps its direction,
    its length is scaled (finger factor x bone factor; palm bones by a bone factor alone)."""
    n = len(points)
    finger = np.exp(rng.uniform(-bones, bones, (n, 5)))
    scale = np.exp(rng.uniform(-bones / 2, bones / 2, (n, 21)))
    scale[:, ~PALM] *= finger[:, FINGER[~PALM]]
    out = points.copy()
    for j in range(1, 21):  # parents come first, so each point moves with its parent
        out[:, j] = out[:, PARENT[j]] + (points[:, j] - points[:, PARENT[j]]) * scale[:, j:j + 1]
    return out


def pose(rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 66) landmark rows (runtime/landmarks.py; or the 64 of older checkpoints) -> the same hands
    turned, re-estimated and normalised again; no-hand rows stay as they are."""
    from asl_edge.runtime.landmarks import DIRECTION, PRESENCE, normalise

    rows = np.asarray(rows, np.float32)
    n = len(rows)
    p = rows[:, :63].reshape(n, 21, 3).astype(np.float64)
    if POSE_BONES > 0:
        p = proportions(p, rng, POSE_BONES)
    p[..., 2] *= 1 + rng.uniform(-POSE_DEPTH, POSE_DEPTH, (n, 1))
    p = p @ _rotations(rng.uniform(-1, 1, (n, 3)) * POSE_TURN).transpose(0, 2, 1)
    p += rng.normal(0, POSE_NOISE, p.shape)
    turned = normalise(p, np.zeros(n, bool))
    if rows.shape[1] > PRESENCE + 1:
        # normalise() measured the turn's own angle from the upright hand: add it to the hand's direction
        (s0, c0), (s1, c1) = rows[:, DIRECTION].T, turned[:, DIRECTION].T
        turned[:, DIRECTION] = np.stack([s0 * c1 + c0 * s1, c0 * c1 - s0 * s1], 1)
    turned = turned[:, :rows.shape[1]]
    return np.where(rows[:, PRESENCE:PRESENCE + 1] > 0, turned, rows)
