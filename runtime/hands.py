"""Optional hand finding: classify a square around the hand instead of the fixed guide box.

Two finders, both offline (nothing is downloaded at run time):

* ``MediaPipeHands`` (``--roi hand``): MediaPipe's legacy hand-landmark solution, whose palm
  detector and landmark models ship inside the ``mediapipe`` wheel (versions 0.10.5 to 0.10.21;
  0.10.30 and later dropped ``mediapipe.solutions`` and want a ``.task`` file downloaded).
  Install with ``pip install "asl-edge[hands]"``. Imported lazily: the runtime works without it.
* ``SkinHands`` (``--roi skin``): OpenCV only. Skin-coloured pixels in YCrCb, cleaned up,
  largest blob. No extra install, but it finds anything skin-coloured (faces, arms, wooden
  floors, beige walls) and nothing in grayscale images or under coloured light.

Both return a square (x, y, w, h) in pixels with a margin around the hand, kept inside the
frame, or None. ``HandRoi`` wraps a finder for camera mode: it smooths the box over frames
and falls back to the guide box when no hand is found.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from .camera import GuideBox, first_line, quiet_native_stderr
from .errors import UserError

# The same margin training uses around a boxes.csv hand box (train/data.py crop_box).
MARGIN = 0.25
MEDIAPIPE_PIN = "mediapipe>=0.10.5,<0.10.30"
MEDIAPIPE_MISSING = (f"--roi hand needs MediaPipe's bundled hand model: pip install \"asl-edge[hands]\" "
                     f"(or pip install \"{MEDIAPIPE_PIN}\"); --roi skin needs no extra package")
ROI_FINDERS = ("hand", "skin")


def square_box(hand, width: int, height: int, margin: float = MARGIN):
    """Tight hand box (x, y, w, h) -> a square (x, y, side, side) around its centre, `margin`
    wider than the hand's longer side, shifted (not cut) to stay inside the frame."""
    x, y, w, h = hand
    side = max(w, h) * (1 + margin)
    side = int(round(min(side, width, height)))
    side = max(side, 2)
    cx, cy = x + w / 2, y + h / 2
    x0 = int(round(min(max(cx - side / 2, 0), width - side)))
    y0 = int(round(min(max(cy - side / 2, 0), height - side)))
    return x0, y0, side, side


def xywh_to_corners(box):
    x, y, w, h = box
    return x, y, x + w, y + h


class HandFinder:
    """Base class: find_hand() gives the tight hand box; find() the square crop box."""

    name = "hand finder"

    def __init__(self, margin: float = MARGIN):
        self.margin = margin

    def find_hand(self, rgb: np.ndarray):
        """RGB uint8 HxWx3 -> tight hand box (x, y, w, h) in pixels, or None."""
        raise NotImplementedError

    def find(self, rgb: np.ndarray):
        """RGB uint8 HxWx3 -> square (x, y, w, h) with margin around the hand, or None."""
        hand = self.find_hand(rgb)
        if hand is None:
            return None
        return square_box(hand, rgb.shape[1], rgb.shape[0], self.margin)

    def close(self):
        pass


class SkinHands(HandFinder):
    """Largest skin-coloured blob (YCrCb box thresholds, a narrower version of Chai & Ngan's
    1999 range, picked on Roboflow hand photos), OpenCV only.

    Works on a plain, non-skin-coloured background in white-ish light. Fails on grayscale
    frames, skin-coloured backgrounds (wood, beige, pink), under coloured light, and picks
    the face or a bare arm when that blob is larger than the hand.
    """

    name = "skin colour (OpenCV)"
    # (Y, Cr, Cb) lower and upper bounds
    LOWER = np.array([40, 138, 90], np.uint8)
    UPPER = np.array([255, 170, 125], np.uint8)

    def __init__(self, margin: float = MARGIN, min_area: float = 0.01, max_area: float = 0.7,
                 work_size: int = 240):
        super().__init__(margin)
        self.min_area, self.max_area, self.work_size = min_area, max_area, work_size

    def mask(self, rgb: np.ndarray) -> np.ndarray:
        """Skin mask (uint8 0/255) at work resolution."""
        h, w = rgb.shape[:2]
        scale = self.work_size / max(h, w)
        small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA) if scale < 1 else rgb
        ycrcb = cv2.cvtColor(small, cv2.COLOR_RGB2YCrCb)
        m = cv2.inRange(ycrcb, self.LOWER, self.UPPER)
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, k)
        return cv2.morphologyEx(m, cv2.MORPH_CLOSE, k, iterations=2)

    def find_hand(self, rgb):
        h, w = rgb.shape[:2]
        m = self.mask(rgb)
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            return None
        c = max(contours, key=cv2.contourArea)
        frac = cv2.contourArea(c) / float(m.shape[0] * m.shape[1])
        if not self.min_area <= frac <= self.max_area:  # specks, or a skin-coloured background
            return None
        x, y, bw, bh = cv2.boundingRect(c)
        sx, sy = w / m.shape[1], h / m.shape[0]
        return int(x * sx), int(y * sy), max(1, int(round(bw * sx))), max(1, int(round(bh * sy)))


class MediaPipeHands(HandFinder):
    """MediaPipe's legacy Hands solution (palm detector + 21 landmarks), models from the wheel.

    The landmarks sit on the joints, inside the hand's outline, so their box is widened by
    `pad` (fraction of its longer side, each way) to approximate the whole hand.
    """

    name = "MediaPipe hand landmarks"

    def __init__(self, margin: float = MARGIN, *, video: bool = False, complexity: int = 0,
                 min_confidence: float = 0.5, pad: float = 0.15):
        super().__init__(margin)
        self.pad = pad
        hands = load_mediapipe_hands()
        try:
            # MediaPipe's graph threads print log banners while it starts and on the first
            # frame; one blank frame inside the quiet block gets them all over with.
            with quiet_native_stderr():
                self._hands = hands.Hands(static_image_mode=not video, max_num_hands=1,
                                          model_complexity=complexity,
                                          min_detection_confidence=min_confidence,
                                          min_tracking_confidence=min_confidence)
                self._hands.process(np.zeros((64, 64, 3), np.uint8))
        except Exception as e:
            raise UserError(f"cannot start MediaPipe hands: {first_line(e)}") from None
        self._quiet = True  # until the first hand: its landmark calculator warns once then

    def find_hand(self, rgb):
        h, w = rgb.shape[:2]
        if self._quiet:
            with quiet_native_stderr():
                result = self._hands.process(np.ascontiguousarray(rgb))
            self._quiet = not result.multi_hand_landmarks
        else:
            result = self._hands.process(np.ascontiguousarray(rgb))
        if not result.multi_hand_landmarks:
            return None
        pts = np.array([(p.x * w, p.y * h) for p in result.multi_hand_landmarks[0].landmark])
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        d = self.pad * max(x1 - x0, y1 - y0)
        x0, y0 = max(0.0, x0 - d), max(0.0, y0 - d)
        x1, y1 = min(float(w), x1 + d), min(float(h), y1 + d)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        return int(x0), int(y0), int(round(x1 - x0)), int(round(y1 - y0))

    def close(self):
        try:
            self._hands.close()
        except Exception:
            pass


def load_mediapipe_hands():
    """mediapipe.solutions.hands, or a one-line UserError naming the pip command."""
    os.environ.setdefault("GLOG_minloglevel", "2")       # MediaPipe's C++ logging
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with quiet_native_stderr():
            import mediapipe as mp
    except ImportError:
        raise UserError(MEDIAPIPE_MISSING) from None
    except Exception as e:  # e.g. a numpy it was not built for
        raise UserError(f"mediapipe is installed but does not import ({first_line(e)}); "
                        f"pip install \"{MEDIAPIPE_PIN}\"") from None
    solutions = getattr(mp, "solutions", None)
    if solutions is None:
        try:
            from mediapipe.python import solutions
        except ImportError:
            version = getattr(mp, "__version__", "?")
            raise UserError(f"mediapipe {version} has no bundled hand model (mediapipe.solutions was "
                            f"removed in 0.10.30); pip install \"{MEDIAPIPE_PIN}\"") from None
    return solutions.hands


def make_finder(kind: str, *, video: bool = False) -> HandFinder:
    """'hand' -> MediaPipeHands, 'skin' -> SkinHands."""
    if kind == "hand":
        return MediaPipeHands(video=video)
    if kind == "skin":
        return SkinHands()
    raise ValueError(f"unknown hand finder {kind!r}")


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
