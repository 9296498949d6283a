"""Dev-only reference: MediaPipe's own legacy Hands solution, for parity checks of runtime/hands/.

Needs ``mediapipe>=0.10.5,<0.10.30`` (numpy<2; best in its own venv). Never imported by the runtime.
"""
from __future__ import annotations

import os

import numpy as np

from asl_edge.common.errors import UserError, first_line
from asl_edge.common.native_stderr import quiet_native_stderr
from asl_edge.runtime.contract import CROP_MARGIN as MARGIN
from asl_edge.runtime.hands import HandFinder, square_box

MEDIAPIPE_PIN = "mediapipe>=0.10.5,<0.10.30"


def load_mediapipe_hands():
    """mediapipe.solutions.hands, or a one-line UserError naming the pip command."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with quiet_native_stderr():
            from mediapipe.python import solutions
    except ImportError:
        raise UserError(f"the MediaPipe reference needs pip install \"{MEDIAPIPE_PIN}\"") from None
    except Exception as e:  # e.g. a numpy it was not built for
        raise UserError(f"mediapipe does not import ({first_line(e)}); pip install \"{MEDIAPIPE_PIN}\"") from None
    return solutions.hands


class MediaPipeHands(HandFinder):
    """Same interface as runtime.hands.HandFinder (find_hand, find, .hand_landmarks)."""

    name = "MediaPipe (reference)"

    def __init__(self, margin: float = MARGIN, *, video: bool = False, complexity: int = 1,
                 min_confidence: float = 0.5, pad: float = 0.15):
        self.margin, self.pad, self.tracker = margin, pad, None
        hands = load_mediapipe_hands()
        with quiet_native_stderr():
            self._hands = hands.Hands(static_image_mode=not video, max_num_hands=1, model_complexity=complexity,
                                      min_detection_confidence=min_confidence,
                                      min_tracking_confidence=min_confidence)
            self._hands.process(np.zeros((64, 64, 3), np.uint8))
        self.landmarks = None  # (21, 2) frame pixels of the last hand
        self.handedness = None

    def find_hand(self, rgb):
        h, w = rgb.shape[:2]
        with quiet_native_stderr():
            result = self._hands.process(np.ascontiguousarray(rgb))
        if not result.multi_hand_landmarks:
            self.landmarks = self.handedness = None
            return None
        self.landmarks = np.array([(p.x * w, p.y * h) for p in result.multi_hand_landmarks[0].landmark])
        self.handedness = result.multi_handedness[0].classification[0].label
        x0, y0 = self.landmarks.min(axis=0)
        x1, y1 = self.landmarks.max(axis=0)
        d = self.pad * max(x1 - x0, y1 - y0)
        x0, y0 = max(0.0, x0 - d), max(0.0, y0 - d)
        x1, y1 = min(float(w), x1 + d), min(float(h), y1 + d)
        if x1 - x0 < 1 or y1 - y0 < 1:
            return None
        return int(x0), int(y0), int(round(x1 - x0)), int(round(y1 - y0))

    def find(self, rgb):
        hand = self.find_hand(rgb)
        return None if hand is None else square_box(hand, rgb.shape[1], rgb.shape[0], self.margin)

    def close(self):
        try:
            self._hands.close()
        except Exception:
            pass
