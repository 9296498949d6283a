"""Decision record: what to assume about landmark rows that do not say their frame or hand
(train/landmark_rows.py; ../shared/data/borisgraudt_landmarks).

Question: MediaPipe's x and y are fractions of the frame's width and height, and the source kept
neither the frame size nor the handedness. Which aspect ratio and which hand make its rows look like
the runtime's rows of the same letters?
Options measured: 4:3, 1:1, 16:9 x MediaPipe's "Right" (not mirrored) or "Left" (mirrored): a landmark
classifier fitted as asl-train fits it (train/landmark_fit.py, pose augmentation) on the hand finder's
rows of the given image sources, two seeds, scores the borisgraudt rows under each assumption.
Decision: 16:9, right hand (benchmarks/RESULTS.md, "Landmark rows without images").

    python -m asl_edge.benchmarks.studies.landmark_rows_frame \\
        webcam_recordings/gunsai75 webcam_recordings/lolzorus webcam_recordings/meyyappan
"""
from __future__ import annotations

import sys

import torch

from asl_edge.runtime.contract import KAGGLE_CLASSES
from asl_edge.runtime.landmarks import stack
from asl_edge.train import landmark_rows as LR
from asl_edge.train.run_data import source_with_hands
from asl_edge.train.landmark_fit import fit_landmark_classifier
from asl_edge.train.models import FusionHead

SHARED = "../shared/data/"
ROWS = SHARED + "borisgraudt_landmarks/landmarks.csv"


def main(sources):
    samples = []
    for i, s in enumerate(sources):
        samples += source_with_hands(SHARED + s, i, 100)[0]
    rows = torch.from_numpy(stack([s.hand for s in samples], len(samples)))
    labels = torch.tensor([s.label for s in samples])
    frame = (LR.FRAME_W, LR.FRAME_H, LR.HANDEDNESS)
    try:
        for seed in (0, 1):
            head = FusionHead(8, len(KAGGLE_CLASSES))
            fit_landmark_classifier(head.landmarks, rows, labels, torch.ones(len(labels)), True, seed)
            for hand in ("Right", "Left"):
                for w, h in ((640, 480), (480, 480), (1280, 720)):
                    LR.FRAME_W, LR.FRAME_H, LR.HANDEDNESS = float(w), float(h), hand
                    got = LR.load_landmark_rows(ROWS, KAGGLE_CLASSES, 100)
                    with torch.no_grad():
                        acc = (head.landmarks(torch.from_numpy(got.rows)).argmax(1).numpy() == got.labels).mean()
                    print(f"seed {seed}, {hand} hand, {w}x{h}: {100 * acc:.1f}% of {len(got.labels)} rows", flush=True)
    finally:
        LR.FRAME_W, LR.FRAME_H, LR.HANDEDNESS = frame


if __name__ == "__main__":
    main(sys.argv[1:])
