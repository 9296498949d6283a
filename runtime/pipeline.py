"""One camera frame through the product: find the hand (or take the fixed guide box), crop, preprocess,
classify. The live loop (runtime/live.py) and enrollment (runtime/enroll.py) both go through it, so a
profile is fitted on exactly what asl-run classifies."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .camera import GuideBox
from .contract import bgr_to_rgb
from .hands import HandRoi
from .landmarks import of_hand


@dataclass(frozen=True)
class FrameResult:
    box: tuple            # (x0, y0, x1, y1) of the frame that was classified
    hand: bool | None     # a hand gave the box (None: a fixed guide box, no hand finding)
    landmarks: object     # the hand's 21 points in frame pixels, or None
    scores: object        # model.Scores of this one frame
    hand_s: float         # seconds finding the hand
    preprocess_s: float   # crop, colour, resize, normalise
    model_s: float        # onnxruntime (and the profile)

    @property
    def probs(self) -> np.ndarray:
        return self.scores.probs[0]

    @property
    def agree(self) -> bool:
        return bool(self.scores.agreement[0])


class FramePipeline:
    """region: a fixed GuideBox, or a HandRoi (the found hand; the guide box when none)."""

    def __init__(self, clf, region: GuideBox | HandRoi):
        self.clf, self.region = clf, region
        self.hands = region if isinstance(region, HandRoi) else None

    def reset(self):
        if self.hands is not None:
            self.hands.reset()

    def __call__(self, frame_bgr: np.ndarray) -> FrameResult:
        t0 = time.perf_counter()
        hand_s, found, points, landmarks = 0.0, None, None, None
        if self.hands is not None:
            rgb = bgr_to_rgb(frame_bgr)
            box = self.hands.box(rgb)
            found = self.hands.found
            points = self.hands.landmarks if found else None
            t1 = time.perf_counter()
            hand_s, t0 = t1 - t0, t1
            x = self.clf.contract.preprocess(rgb[box[1]:box[3], box[0]:box[2]])[None]
            # this frame's hand only (zeros when none), for a model that reads landmarks
            if getattr(self.clf, "uses_landmarks", False):
                landmarks = of_hand(self.hands.finder.hand)[None]
        else:
            box = self.region.box(frame_bgr.shape[1], frame_bgr.shape[0])
            x = self.clf.contract.preprocess(bgr_to_rgb(frame_bgr[box[1]:box[3], box[0]:box[2]]))[None]
        t1 = time.perf_counter()
        scores = self.clf.classify(x, landmarks)
        return FrameResult(tuple(int(v) for v in box), found, points, scores, hand_s, t1 - t0,
                           time.perf_counter() - t1)
