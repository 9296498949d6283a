"""Find the hand with onnxruntime alone: MediaPipe Hands' palm detector and landmark model (ONNX,
shipped in runtime/models/), with their pre- and post-processing in numpy/OpenCV.

Per frame (``HandTracker.process``):

1. Tracking: when the last frame had a hand, its landmarks give this frame's crop (a square
   rotated so the wrist is below the fingers, 2x the landmarks' extent); the landmark model runs
   on it. If it still sees a hand (presence >= ``min_presence``) that is the answer: no palm
   detection.
2. Otherwise palm detection on the whole frame (letterboxed to 192x192): 2016 SSD anchors,
   sigmoid scores >= ``min_score``, box and 7 keypoints decoded, weighted NMS. The best palm
   (highest score: with two hands, the more confident one) gives a rotated crop (rotation from
   the wrist and middle-finger keypoints, the palm box shifted toward the fingers and scaled
   2.6x), and the landmark model runs on it.
3. Zoomed search (``zoom``): a hand far from the camera is a few pixels wide once the whole frame
   is shrunk to 192x192, and the palm detector misses it. When step 2 finds no hand, the palm
   detector looks again at overlapping squares of the frame (``search_tiles``), each shrunk less;
   a palm found there is mapped back to the frame, and the landmark model runs on the frame
   itself. From files, every square is searched at once; from a camera, one square per frame in
   turn (the whole frame is still searched every frame), so a camera frame without a hand costs
   two palm detections (a file without one: the whole frame and all 21 squares of a 640x480 image).
4. Border (``border``): a hand that fills the image (a close-up photo, a hand held near the
   camera) is too large for the palm detector's anchors. After the zoomed squares, the detector
   looks at the image shrunk inside a black border (a square ``BORDER`` times the image's longer
   side); the landmark model then runs on the image itself. From a camera this square is one more
   in the turn of step 3's squares (no extra detection per frame).

The result is a ``Hand``: 21 landmarks in frame pixels, presence, handedness, the crop used.
``HandFinder.find`` turns it into the square the classifier sees: the landmarks' box widened by
``pad`` (landmarks sit on the joints, inside the hand's outline), then the training framing (a
square ``MARGIN`` wider than the hand's longer side, as train/data.py crops boxes.csv hands).
``HandRoi`` smooths that square over camera frames and falls back to the guide box.

Any image (grayscale, RGBA, 1x1, huge) gives a Hand or None, never an exception.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .camera import GuideBox, first_line
from .errors import UserError
from .model import choose_providers

# The same margin training uses around a boxes.csv hand box (train/data.py crop_box).
MARGIN = 0.25
MODELS = Path(__file__).resolve().parent / "models"
PALM_MODEL = MODELS / "palm_detection_full.onnx"
LANDMARK_MODELS = {"full": MODELS / "hand_landmark_full.onnx", "lite": MODELS / "hand_landmark_lite.onnx"}
PALM_SIZE, LANDMARK_SIZE = 192, 224
# MediaPipe's palm_detection_cpu / hand_landmark graphs: anchors, decoding, crop geometry.
ANCHOR_STRIDES = (8, 16, 16, 16)
PALM_NMS_IOU = 0.3
PALM_TO_CROP = dict(shift_y=-0.5, scale=2.6)   # palm box -> hand crop
LANDMARKS_TO_CROP = dict(shift_y=-0.1, scale=2.0)  # last landmarks -> next frame's crop
WRIST, MIDDLE_MCP = 0, 2  # palm keypoints that give the rotation
TRACK_JOINTS = [0, 1, 2, 5, 6, 9, 10, 13, 14, 17, 18]  # wrist, thumb base, each finger's MCP and PIP
# Zoomed search: squares of these fractions of the frame's shorter side (coarse first), overlapping
# by at least half their side (so any hand up to half a square wide lies whole in one). A square
# under ZOOM_MIN_SIDE pixels (1.25x the detector's 192) is not searched: it gains the detector little
# resolution and, measured on 416 px photos, found other things than the hand.
# Chosen on made 640x480 frames (benchmarks/studies/hand_search.py).
ZOOM_TILES, ZOOM_MIN_SIDE = (0.75, 0.5), 240
# Step 4: the outer square's side as a multiple of the image's longer side (benchmarks/README.md,
# "Hands that fill the image").
BORDER = 2.0


# --- geometry ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Crop:
    """A square crop of the frame in pixels: centre, side, rotation (radians, clockwise on screen)."""
    cx: float
    cy: float
    side: float
    rotation: float

    def to_frame(self, size: int) -> np.ndarray:
        """2x3 affine matrix: crop pixel (u, v) of a size x size tensor -> frame pixel."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        k = self.side / size
        r = np.array([[c, -s], [s, c]]) * k
        t = np.array([self.cx, self.cy]) - r @ np.array([size / 2, size / 2])
        return np.hstack([r, t[:, None]])


def normalize_radians(a: float) -> float:
    return a - 2 * math.pi * math.floor((a + math.pi) / (2 * math.pi))


def rotation_from(p0, p1) -> float:
    """Angle that turns the vector p0 -> p1 to point up the screen."""
    return normalize_radians(math.pi / 2 - math.atan2(-(p1[1] - p0[1]), p1[0] - p0[0]))


def transform_rect(cx, cy, w, h, rotation, shift_y, scale) -> Crop:
    """MediaPipe's RectTransformation in pixels: shift along the rotated y axis by shift_y * h,
    make square on the long side, scale."""
    cx -= h * shift_y * math.sin(rotation)
    cy += h * shift_y * math.cos(rotation)
    return Crop(cx, cy, max(w, h) * scale, rotation)


def ssd_anchors(size: int = PALM_SIZE, strides=ANCHOR_STRIDES) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1]: fixed-size anchors, 2 per cell per layer, layers with the
    same stride merged (MediaPipe's SsdAnchorsCalculator with palm_detection's options)."""
    out, i = [], 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        per_cell = 2 * (j - i)
        n = math.ceil(size / strides[i])
        ys, xs = np.mgrid[0:n, 0:n]
        centres = np.stack([(xs + 0.5) / n, (ys + 0.5) / n], -1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
        i = j
    return np.concatenate(out).astype(np.float32)


def search_tiles(width: int, height: int, tile: float, min_side: int = ZOOM_MIN_SIDE):
    """The zoomed search's squares (x0, y0, side) in frame pixels: side = `tile` x the shorter
    side, on a grid with steps of at most half a side, first and last flush with the frame's edges.
    Empty when that side is under `min_side` (the frame is too small to gain from zooming)."""
    side = tile * min(width, height)
    if side < min_side or not 0 < tile < 1:
        return []

    def starts(length):
        n = math.ceil((length - side) / (side / 2)) + 1
        return np.linspace(0, length - side, n) if n > 1 else np.array([(length - side) / 2])

    return [(float(x), float(y), float(side)) for y in starts(height) for x in starts(width)]


def iou_xyxy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box a (4,) with boxes b (N, 4), corners."""
    ix = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(boxes, keypoints, scores, iou: float = PALM_NMS_IOU):
    """MediaPipe's WEIGHTED non-max suppression: each kept detection is the score-weighted mean
    of the boxes (and keypoints) overlapping the best remaining one; its score is the best's."""
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    left = np.ones(len(scores), bool)
    kept = []
    for i in range(len(scores)):
        if not left[i]:
            continue
        group = left & (iou_xyxy(boxes[i], boxes) > iou)
        group[i] = True
        w = scores[group][:, None]
        kept.append(((boxes[group] * w).sum(0) / w.sum(),
                     (keypoints[group].reshape(int(group.sum()), -1) * w).sum(0).reshape(-1, 2) / w.sum(),
                     float(scores[i])))
        left &= ~group
    return kept


def as_rgb(image) -> np.ndarray | None:
    """Any image array -> contiguous uint8 HxWx3, or None when it has no pixels."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[0] == 0 or a.shape[1] == 0 or a.shape[2] == 0:
        return None
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] > 3:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


# --- results ----------------------------------------------------------------------------

@dataclass
class Palm:
    score: float
    box: tuple          # (x0, y0, x1, y1) frame pixels
    keypoints: np.ndarray  # (7, 2) frame pixels


@dataclass
class Hand:
    landmarks: np.ndarray   # (21, 3): x, y in frame pixels, z relative depth (pixels, wrist-relative scale)
    presence: float
    handedness: str         # MediaPipe's label ("Left"/"Right"), which assumes a mirrored selfie image
    handedness_score: float
    crop: Crop              # the crop the landmark model saw
    tracked: bool           # True when the crop came from the previous frame's landmarks
    palm_score: float | None = None

    def box(self, width: int, height: int, pad: float = 0.15):
        """Tight hand box (x, y, w, h): the landmarks' extent widened by `pad` of its longer side
        each way, clipped to the frame; None when nothing of it is inside."""
        xy = self.landmarks[:, :2]
        x0, y0 = xy.min(0)
        x1, y1 = xy.max(0)
        d = pad * max(x1 - x0, y1 - y0)
        x0, y0 = max(0.0, x0 - d), max(0.0, y0 - d)
        x1, y1 = min(float(width), x1 + d), min(float(height), y1 + d)
        if x1 - x0 < 1 or y1 - y0 < 1:
            return None
        return int(x0), int(y0), max(1, int(round(x1 - x0))), max(1, int(round(y1 - y0)))


# --- the models -------------------------------------------------------------------------

def _session(path: Path, threads: int, provider: str = "cpu"):
    import onnxruntime as ort
    if not path.is_file():
        raise UserError(f"hand model missing: {path} (reinstall asl-edge)")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # the classifier's rule (auto = CUDA where this onnxruntime has it); its fallback note is said once, there
    providers = choose_providers(provider, log=lambda msg: None)
    try:
        return ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as e:
        raise UserError(f"cannot load hand model {path}: {first_line(e)}") from None


class HandTracker:
    """One hand, frame after frame (video=True tracks; video=False detects on every call)."""

    def __init__(self, landmark_model: str = "full", *, video: bool = True, threads: int = 1,
                 min_score: float = 0.5, min_presence: float = 0.5, provider: str = "cpu", zoom: bool = True,
                 zoom_tiles: tuple = ZOOM_TILES, border: float = BORDER):
        if landmark_model not in LANDMARK_MODELS:
            raise UserError(f"unknown hand landmark model {landmark_model!r}: use {' or '.join(LANDMARK_MODELS)}")
        self.video, self.min_score, self.min_presence, self.zoom = video, min_score, min_presence, zoom
        self.zoom_tiles = tuple(zoom_tiles)
        self.border = float(border)  # 0: no step 4
        self._next_tile = 0  # camera mode: the square the next frame without a hand searches
        self._palm = _session(PALM_MODEL, threads, provider)
        self._landmarks = _session(LANDMARK_MODELS[landmark_model], threads, provider)
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

    def _landmarks_on(self, rgb, crop, tracked, palm_score):
        if not (crop.side > 1 and np.isfinite([crop.cx, crop.cy, crop.side, crop.rotation]).all()):
            return None
        m = crop.to_frame(LANDMARK_SIZE)
        x = cv2.warpAffine(rgb, m, (LANDMARK_SIZE, LANDMARK_SIZE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)
        x = (x.astype(np.float32) / 255.0)[None]
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


def outer_square(width: int, height: int, factor: float):
    """(x0, y0, side): a square `factor` times the longer side, centred on the image (step 4)."""
    side = max(width, height) * factor
    return (width - side) / 2, (height - side) / 2, side


# --- the square the classifier sees -------------------------------------------------------

def square_box(hand, width: int, height: int, margin: float = MARGIN):
    """Tight hand box (x, y, w, h) -> a square (x, y, side, side) around its centre, `margin`
    wider than the hand's longer side, shifted (not cut) to stay inside the frame."""
    x, y, w, h = hand
    side = max(w, h) * (1 + margin)
    side = int(round(min(side, width, height)))
    side = max(side, 1)
    cx, cy = x + w / 2, y + h / 2
    x0 = int(round(min(max(cx - side / 2, 0), width - side)))
    y0 = int(round(min(max(cy - side / 2, 0), height - side)))
    return x0, y0, side, side


def xywh_to_corners(box):
    x, y, w, h = box
    return x, y, x + w, y + h


def crop_box(rgb: np.ndarray, box) -> np.ndarray:
    """The (x, y, w, h) box of the frame (HandFinder.find's square), or the whole frame for None."""
    if box is None:
        return rgb
    x, y, w, h = box
    return rgb[y:y + h, x:x + w]


class HandFinder:
    """find_hand() gives the tight hand box; find() the square crop box (training framing)."""

    name = "hand landmarks (ONNX)"

    def __init__(self, margin: float = MARGIN, *, video: bool = False, landmark_model: str = "full",
                 threads: int = 1, pad: float = 0.15, tracker: HandTracker | None = None, provider: str = "cpu",
                 zoom: bool = True):
        self.margin, self.pad = margin, pad
        self.tracker = tracker or HandTracker(landmark_model, video=video, threads=threads, provider=provider,
                                              zoom=zoom)
        self.name = f"hand landmarks (ONNX, {self.tracker.landmark_model}" + (", zoomed search)" if self.tracker.zoom else ")")
        self.hand: Hand | None = None  # the last frame's hand (for the overlay)

    def find_hand(self, rgb):
        """Image -> tight hand box (x, y, w, h) in pixels, or None."""
        self.hand = self.tracker.process(rgb)
        if self.hand is None:
            return None
        h, w = np.shape(rgb)[:2]
        box = self.hand.box(w, h, self.pad)
        if box is None:
            self.hand = None
        return box

    def find(self, rgb):
        """Image -> square (x, y, w, h) with margin around the hand, or None."""
        hand = self.find_hand(rgb)
        if hand is None:
            return None
        return square_box(hand, np.shape(rgb)[1], np.shape(rgb)[0], self.margin)

    def reset(self):
        self.hand = None
        if self.tracker is not None:
            self.tracker.reset()

    def close(self):
        pass


class HandRoi:
    """Camera mode's region: the hand's square, smoothed over frames; the guide box when no
    hand has been seen for `keep` frames.

    Smoothing is exponential on centre and side (`alpha` = weight of the new frame); a jump
    to a box that does not overlap the current one is taken at once.
    """

    def __init__(self, finder: HandFinder, fallback: GuideBox | None = None, *, alpha: float = 0.5,
                 keep: int = 5):
        self.finder, self.fallback = finder, fallback or GuideBox()
        self.alpha, self.keep = alpha, keep
        self._state = None  # (cx, cy, side) floats
        self._missed = 0
        self.found = False  # did the last box come from a hand (fresh or kept)?

    @property
    def landmarks(self):
        """The current frame's 21 landmarks (frame pixels), or None."""
        hand = getattr(self.finder, "hand", None)
        return None if hand is None else hand.landmarks[:, :2]

    def reset(self):
        self._state, self._missed, self.found = None, 0, False

    def box(self, rgb: np.ndarray):
        """RGB frame -> (x0, y0, x1, y1) to classify."""
        h, w = rgb.shape[:2]
        got = self.finder.find(rgb)
        if got is None:
            self._missed += 1
            if self._state is None or self._missed > self.keep:
                self._state, self.found = None, False
                return self.fallback.box(w, h)
        else:
            self._missed = 0
            x, y, s, _ = got
            new = (x + s / 2, y + s / 2, float(s))
            if self._state is None or not _overlap(self._state, new):
                self._state = new
            else:
                a = self.alpha
                self._state = tuple(a * n + (1 - a) * o for n, o in zip(new, self._state))
        self.found = True
        cx, cy, s = self._state
        return xywh_to_corners(square_box((cx - s / 2, cy - s / 2, s, s), w, h, margin=0.0))

    def close(self):
        self.finder.close()


def _overlap(a, b) -> bool:
    (ax, ay, asz), (bx, by, bsz) = a, b
    return abs(ax - bx) < (asz + bsz) / 2 and abs(ay - by) < (asz + bsz) / 2
