"""Augmentations that need the hand's landmarks or act before the crop: what changes between
people's rooms and lights rather than between their hands.

- background: everything outside the hand (the landmarks' convex hull, widened and feathered) is
  replaced by a random smooth colour field with noise, so the model cannot lean on the training
  signer's wall.
- light: white balance (per-channel gain) and exposure (gamma), as another camera and lamp give.
Both run on the whole image before the hand crop, with the view's seeded generator.
"""
from __future__ import annotations

import cv2
import numpy as np

BACKGROUND_P = 0.5  # share of views whose background is replaced (the rest keep the real one)


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
