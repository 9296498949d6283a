"""One camera frame through the product: find the hand (or take the fixed guide box), crop, preprocess,
classify. The live loop (runtime/live.py) and enrollment (runtime/enroll.py) both go through it, so a
profile is fitted on exactly what asl-run classifies. Two stages, prepare (the hand finder and the
crop) and finish (the classifier), so the live loop can run the first on frame t+1 while the second
runs on frame t."""
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


@dataclass(frozen=True)
class Prepared:
    region: object        # camera.Region
    x: np.ndarray         # the preprocessed crop, (1, ...) as the model takes it
    landmarks: object     # (1, width) landmark features, or None
    hand_s: float
    preprocess_s: float


class FramePipeline:
    """region: a fixed GuideBox, or a HandRoi (the found hand; the guide box when none); both give a
    camera.Region for a frame."""

    def __init__(self, clf, region: GuideBox | HandRoi):
        self.clf, self.region = clf, region
        self.hands = region if isinstance(region, HandRoi) else None

    def reset(self):
        if self.hands is not None:
            self.hands.reset()

    def __call__(self, frame_bgr: np.ndarray) -> FrameResult:
        return self.finish(self.prepare(frame_bgr))

    def prepare(self, frame_bgr: np.ndarray) -> Prepared:
        """The first stage: the region (the hand finder) and the classifier's inputs."""
        t0 = time.perf_counter()
        region = self.region.region(frame_bgr)
        t1 = time.perf_counter()
        x0, y0, x1, y1 = region.box
        # only the crop changes colour, unless the hand finder already converted the whole frame
        crop = region.rgb[y0:y1, x0:x1] if region.rgb is not None else bgr_to_rgb(frame_bgr[y0:y1, x0:x1])
        x = self.clf.contract.preprocess(crop)[None]
        # this frame's hand only (zeros when none), for a model that reads landmarks
        landmarks = (of_hand(region.hand)[None] if region.found is not None and getattr(self.clf, "uses_landmarks", False)
                     else None)
        return Prepared(region, x, landmarks, t1 - t0, time.perf_counter() - t1)

    def finish(self, p: Prepared) -> FrameResult:
        """The second stage: the classifier (and the profile)."""
        t0 = time.perf_counter()
        scores = self.clf.classify(p.x, p.landmarks)
        return FrameResult(tuple(int(v) for v in p.region.box), p.region.found, p.region.landmarks, scores, p.hand_s,
                           p.preprocess_s, time.perf_counter() - t0)
