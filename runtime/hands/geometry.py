"""The hand finder's constants, geometry (crops, anchors, search squares, NMS) and result objects
(Palm, Hand). Numpy only."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODELS = Path(__file__).resolve().parent.parent / "models"
PALM_MODEL = MODELS / "palm_detection_full.onnx"
LANDMARK_MODELS = {"full": MODELS / "hand_landmark_full.onnx", "lite": MODELS / "hand_landmark_lite.onnx"}
# INT8 files made from the float ones by export/hand_models.py, where made (full-int8 ships)
LANDMARK_MODELS.update({f"{name}-int8": path.with_suffix(".int8.onnx") for name, path in list(LANDMARK_MODELS.items())
                        if path.with_suffix(".int8.onnx").is_file()})
PALM_SIZE, LANDMARK_SIZE = 192, 224


def default_landmark_model(reads_landmarks: bool) -> str:
    """The camera loop's landmark model (asl-run --camera, asl-enroll, the benchmarks). For a classifier that
    reads landmarks: the INT8 full model where it ships (as close to the float one as the float one is to
    itself on frames one grey level apart, and faster: benchmarks/RESULTS.md, "INT8 hands: the float model's
    own drift"), else the float full model it was trained with (lite's landmarks cost a landmark model accuracy:
    "Hand finding"). Lite, about twice as fast, for an image-only classifier."""
    if not reads_landmarks:
        return "lite"
    return "full-int8" if "full-int8" in LANDMARK_MODELS else "full"


# MediaPipe's palm_detection_cpu / hand_landmark graphs: anchors, decoding, crop geometry.
ANCHOR_STRIDES = (8, 16, 16, 16)
PALM_NMS_IOU = 0.3
PALM_TO_CROP = dict(shift_y=-0.5, scale=2.6)   # palm box -> hand crop
LANDMARKS_TO_CROP = dict(shift_y=-0.1, scale=2.0)  # last landmarks -> next frame's crop
# A crop this small (frame pixels) holds no hand the landmark model can read; a track whose crop shrinks
# under it ends there (else a presence near the threshold can follow one pixel for ever).
MIN_CROP_SIDE = 24
WRIST, MIDDLE_MCP = 0, 2  # palm keypoints that give the rotation
TRACK_JOINTS = [0, 1, 2, 5, 6, 9, 10, 13, 14, 17, 18]  # wrist, thumb base, each finger's MCP and PIP
# Zoomed search: squares of these fractions of the frame's shorter side (coarse first), overlapping
# by at least half their side (so any hand up to half a square wide lies whole in one). A square
# under ZOOM_MIN_SIDE pixels (1.25x the detector's 192) is not searched: it gains the detector little
# resolution and, measured on 416 px photos, found other things than the hand.
# Chosen on made 640x480 frames (benchmarks/studies/hand_search.py).
ZOOM_TILES, ZOOM_MIN_SIDE = (0.75, 0.5), 240
# Step 4: the outer square's side as a multiple of the image's longer side (benchmarks/RESULTS.md,
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


def outer_square(width: int, height: int, factor: float):
    """(x0, y0, side): a square `factor` times the longer side, centred on the image (step 4)."""
    side = max(width, height) * factor
    return (width - side) / 2, (height - side) / 2, side



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
