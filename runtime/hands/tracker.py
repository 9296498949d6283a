"""HandTracker: the palm detector and the landmark model on onnxruntime, frame after frame (the steps in
runtime/hands/__init__.py)."""
from __future__ import annotations

import math
import time
from pathlib import Path

import cv2
import numpy as np

from asl_edge.common.errors import UserError, first_line
from asl_edge.common.sessions import choose_providers, ort_session
from .geometry import (LANDMARK_MODELS, LANDMARK_SIZE, LANDMARKS_TO_CROP, MIDDLE_MCP, MIN_CROP_SIDE, PALM_MODEL, PALM_SIZE,
                       PALM_TO_CROP, TRACK_JOINTS, WRIST, ZOOM_TILES, BORDER, Crop, Hand, Palm, as_rgb,
                       outer_square, rotation_from, search_tiles, ssd_anchors, transform_rect, weighted_nms)

def _session(path: Path, threads: int, provider: str = "cpu", take_turns: bool = False):
    if not path.is_file():
        raise UserError(f"hand model missing: {path} (reinstall asl-edge)")
    # the classifier's rule (auto = CUDA where this onnxruntime has it); its fallback note is said once, there
    providers = choose_providers(provider)
    try:
        return ort_session(path, threads, providers, take_turns=take_turns)
    except Exception as e:
        raise UserError(f"cannot load hand model {path}: {first_line(e)}") from None


class HandTracker:
    """One hand, frame after frame (video=True tracks; video=False detects on every call)."""

    def __init__(self, landmark_model: str = "full", *, video: bool = True, threads: int = 1, take_turns: bool = False,
                 min_score: float = 0.5, min_presence: float = 0.5, provider: str = "cpu", zoom: bool = True,
                 zoom_tiles: tuple = ZOOM_TILES, border: float = BORDER):
        if landmark_model not in LANDMARK_MODELS:
            raise UserError(f"unknown hand landmark model {landmark_model!r}: use {' or '.join(LANDMARK_MODELS)}")
        self.video, self.min_score, self.min_presence, self.zoom = video, min_score, min_presence, zoom
        self.zoom_tiles = tuple(zoom_tiles)
        self.border = float(border)  # 0: no step 4
        self._next_tile = 0  # camera mode: the square the next frame without a hand searches
        self._palm = _session(PALM_MODEL, threads, provider, take_turns)
        self._landmarks = _session(LANDMARK_MODELS[landmark_model], threads, provider, take_turns)
        self._lm_outputs = ["landmarks", "presence", "handedness"]
        self.landmark_model = landmark_model
        self.anchors = ssd_anchors()
        self.last: Hand | None = None
        self.palm_runs = self.landmark_runs = 0
        self.palm_s = self.landmark_s = 0.0  # time in each model, with its warp and decoding (asl-bench --loop)

    def reset(self):
        self.last = None

    # palm detection ---------------------------------------------------------------------
    def detect_palms(self, rgb: np.ndarray, square=None) -> list[Palm]:
        """All palms (after NMS), best first, in frame pixels. `square` (x0, y0, side): search only
        there; default the whole frame, letterboxed."""
        t0 = time.perf_counter()
        try:
            return self._detect_palms(rgb, square)
        finally:
            self.palm_s += time.perf_counter() - t0

    def _detect_palms(self, rgb, square):
        h, w = rgb.shape[:2]
        if square is None:
            side = max(h, w)
            square = (-(side - w) / 2, -(side - h) / 2, side)
        x0, y0, side = square
        k = PALM_SIZE / side
        m = np.array([[k, 0, -k * x0], [0, k, -k * y0]])
        x = cv2.warpAffine(rgb, m, (PALM_SIZE, PALM_SIZE), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        x = (x.astype(np.float32) / 255.0)[None]
        reg, logits = self._palm.run(["regressors", "scores"], {"input": x})
        self.palm_runs += 1
        scores = 1 / (1 + np.exp(-np.clip(logits[0, :, 0], -100, 100)))
        keep = scores >= self.min_score
        if not keep.any():
            return []
        reg, scores, anchors = reg[0, keep], scores[keep], self.anchors[keep]
        cxy = reg[:, 0:2] / PALM_SIZE + anchors
        wh = reg[:, 2:4] / PALM_SIZE
        boxes = np.concatenate([cxy - wh / 2, cxy + wh / 2], 1)
        kps = reg[:, 4:18].reshape(-1, 7, 2) / PALM_SIZE + anchors[:, None, :]
        # the square's [0, 1] -> frame pixels
        off = -np.array([x0, y0])
        palms = []
        for box, kp, score in weighted_nms(boxes, kps, scores):
            b = box.reshape(2, 2) * side - off
            palms.append(Palm(score, tuple(float(v) for v in b.ravel()), kp * side - off))
        return palms

    @staticmethod
    def palm_crop(palm: Palm) -> Crop:
        x0, y0, x1, y1 = palm.box
        rot = rotation_from(palm.keypoints[WRIST], palm.keypoints[MIDDLE_MCP])
        return transform_rect((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, rot, **PALM_TO_CROP)

    # landmarks --------------------------------------------------------------------------
    def landmarks(self, rgb: np.ndarray, crop: Crop, tracked: bool = False,
                  palm_score: float | None = None) -> Hand | None:
        """Run the landmark model on a crop; None when it sees no hand there."""
        t0 = time.perf_counter()
        try:
            return self._landmarks_on(rgb, crop, tracked, palm_score)
        finally:
            self.landmark_s += time.perf_counter() - t0

    @staticmethod
    def landmark_input(rgb: np.ndarray, crop: Crop):
        """The landmark model's input for a crop of the frame (1, 224, 224, 3 float32 in [0, 1]), and the
        affine map from its pixels to the frame's."""
        m = crop.to_frame(LANDMARK_SIZE)
        x = cv2.warpAffine(rgb, m, (LANDMARK_SIZE, LANDMARK_SIZE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)
        return (x.astype(np.float32) / 255.0)[None], m

    def _landmarks_on(self, rgb, crop, tracked, palm_score):
        if not (crop.side >= MIN_CROP_SIDE and np.isfinite([crop.cx, crop.cy, crop.side, crop.rotation]).all()):
            return None
        x, m = self.landmark_input(rgb, crop)
        raw, presence, handed = self._landmarks.run(self._lm_outputs, {"input": x})
        self.landmark_runs += 1
        presence = float(presence.ravel()[0])
        if not presence >= self.min_presence:
            return None
        raw = raw.reshape(21, 3).astype(np.float64)
        xy = raw[:, :2] @ m[:, :2].T + m[:, 2]
        z = raw[:, 2:] * crop.side / LANDMARK_SIZE
        left = float(handed.ravel()[0])
        return Hand(np.hstack([xy, z]), presence, "Left" if left > 0.5 else "Right", max(left, 1 - left),
                    crop, tracked, palm_score)

    @staticmethod
    def landmarks_crop(hand: Hand) -> Crop:
        """The next frame's crop from this frame's landmarks (MediaPipe's HandLandmarksToRect on
        the steadier joints, no fingertips: rotation from the wrist to the mean of the index,
        middle and ring PIP joints; the joints' extent in that rotated frame, scaled 2x)."""
        lm = hand.landmarks[TRACK_JOINTS, :2]
        pip = hand.landmarks[:, :2]
        p1 = ((pip[6] + pip[14]) / 2 + pip[10]) / 2
        rot = rotation_from(pip[0], p1)
        centre = (lm.min(0) + lm.max(0)) / 2
        c, s = math.cos(-rot), math.sin(-rot)
        d = lm - centre
        proj = np.stack([d[:, 0] * c - d[:, 1] * s, d[:, 0] * s + d[:, 1] * c], 1)
        lo, hi = proj.min(0), proj.max(0)
        pc = (lo + hi) / 2
        cr, sr = math.cos(rot), math.sin(rot)
        cx = pc[0] * cr - pc[1] * sr + centre[0]
        cy = pc[0] * sr + pc[1] * cr + centre[1]
        w, h = hi - lo
        return transform_rect(cx, cy, w, h, rot, **LANDMARKS_TO_CROP)

    # one frame --------------------------------------------------------------------------
    def _from_palms(self, rgb, palms) -> Hand | None:
        """The landmark model on the best palm's crop (palms: best first)."""
        if not palms:
            return None
        return self.landmarks(rgb, self.palm_crop(palms[0]), palm_score=palms[0].score)

    def _search_levels(self, rgb) -> list:
        """Steps 3 and 4: lists of squares (x0, y0, side) searched in turn after the whole frame."""
        h, w = rgb.shape[:2]
        levels = [search_tiles(w, h, t) for t in self.zoom_tiles] if self.zoom else []
        if self.border > 1:
            levels.append([outer_square(w, h, self.border)])
        return levels

    def _searched(self, rgb) -> Hand | None:
        """Steps 3-4. Files: each level in turn, all its squares, until the best palm found is a
        hand. Camera: the next square of all levels in turn, one per frame."""
        levels = self._search_levels(rgb)
        if self.video:
            tiles = [t for level in levels for t in level]
            if not tiles:
                return None
            self._next_tile %= len(tiles)
            levels, self._next_tile = [[tiles[self._next_tile]]], self._next_tile + 1
        for tiles in levels:
            palms = [p for t in tiles for p in self.detect_palms(rgb, t)]
            hand = self._from_palms(rgb, sorted(palms, key=lambda p: -p.score))
            if hand is not None:
                return hand
        return None

    def process(self, image) -> Hand | None:
        """A frame (RGB, or grayscale / RGBA / any size) -> the hand, or None."""
        try:
            rgb = as_rgb(image)
            if rgb is None:
                self.last = None
                return None
            hand = None
            if self.video and self.last is not None:
                hand = self.landmarks(rgb, self.landmarks_crop(self.last), tracked=True)
            if hand is None:
                hand = self._from_palms(rgb, self.detect_palms(rgb))
            if hand is None:
                hand = self._searched(rgb)
        except (cv2.error, ValueError, FloatingPointError, OverflowError):
            hand = None  # e.g. an image too large for OpenCV's warp: no hand, not a crash
        self.last = hand
        return hand
