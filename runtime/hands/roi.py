"""The square the classifier sees: HandFinder (a hand -> the training framing) and HandRoi (camera mode:
smoothed over frames, the guide box when no hand)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera import GuideBox, Region
from ..contract import CROP_MARGIN, bgr_to_rgb
from .geometry import Hand
from .tracker import HandTracker

def square_box(hand, width: int, height: int, margin: float = CROP_MARGIN):
    """Tight hand box (x, y, w, h) -> a square (x, y, side, side) around its centre, `margin`
    wider than the hand's longer side, shifted (not cut) to stay inside the frame (the contract's
    "shift" edge rule; training crops with this function too)."""
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


@dataclass(frozen=True)
class FoundHand:
    """HandFinder.locate's result: the hand, its tight box and the square the classifier sees."""
    hand: Hand
    box: tuple      # (x, y, w, h): the landmarks' extent widened by the finder's pad
    square: tuple   # (x, y, side, side): the training framing (the crop margin around the box), inside the image


class HandFinder:
    """locate() gives a FoundHand (or None); find_hand() and find() its tight box and its square."""

    name = "hand landmarks (ONNX)"

    def __init__(self, margin: float = CROP_MARGIN, *, video: bool = False, landmark_model: str = "full",
                 threads: int = 1, pad: float = 0.15, tracker: HandTracker | None = None, provider: str = "cpu",
                 zoom: bool = True, take_turns: bool = False):
        self.margin, self.pad = margin, pad
        self.tracker = tracker or HandTracker(landmark_model, video=video, threads=threads, provider=provider,
                                              zoom=zoom, take_turns=take_turns)
        self.name = f"hand landmarks (ONNX, {self.tracker.landmark_model}" + (", zoomed search)" if self.tracker.zoom else ")")
        self.hand: Hand | None = None  # the last frame's hand (for the overlay)

    def locate(self, rgb) -> FoundHand | None:
        """Image (RGB) -> the hand found in it, or None."""
        hand = self.tracker.process(rgb)  # None for any image without a hand, odd shapes included
        self.hand = None
        if hand is None:
            return None
        h, w = np.shape(rgb)[:2]
        box = hand.box(w, h, self.pad)
        if box is None:
            return None
        self.hand = hand  # the last frame's hand, for callers that draw it
        return FoundHand(hand, box, square_box(box, w, h, self.margin))

    def find_hand(self, rgb):
        """Image -> tight hand box (x, y, w, h) in pixels, or None."""
        found = self.locate(rgb)
        return None if found is None else found.box

    def find(self, rgb):
        """Image -> square (x, y, w, h) with margin around the hand, or None."""
        found = self.locate(rgb)
        return None if found is None else found.square

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
        self._found = None  # this frame's FoundHand
        self.found = False  # did the last box come from a hand (fresh or kept)?

    def reset(self):
        self._state, self._missed, self._found, self.found = None, 0, None, False

    def region(self, frame_bgr: np.ndarray) -> Region:
        """A camera frame (BGR) -> the Region to classify: the hand's smoothed square, with this frame's
        hand (None on a frame where the square is kept from the frames before); the guide box when none."""
        rgb = bgr_to_rgb(frame_bgr)
        box = self.box(rgb)
        return Region(box, self.found, self._found.hand if self._found is not None else None, rgb)

    def box(self, rgb: np.ndarray):
        """RGB frame -> (x0, y0, x1, y1) to classify."""
        h, w = rgb.shape[:2]
        self._found = got = self.finder.locate(rgb)
        if got is None:
            self._missed += 1
            if self._state is None or self._missed > self.keep:
                self._state, self.found = None, False
                return self.fallback.box(w, h)
        else:
            self._missed = 0
            x, y, s, _ = got.square
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
