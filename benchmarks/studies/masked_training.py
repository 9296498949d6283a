"""Decision record: the shipped recipe trained with every view's room replaced, for webcam strangers.

Question: the shipped recipe replaces the background outside the hand's hull with a random colour field in
half of its training views (train/augment.py, BACKGROUND_P = 0.5). Would replacing it in every view (the image
classifier never sees a real room) make the fused classifier read people left out better, on the crop as shipped
or on the crop with its room masked the same way at run time (masked_crop.py)?
Method: this command is asl-train with BACKGROUND_P = 1 (every other option as given); the leave-one-person-out
folds are then scored by masked_crop.py (per frame) and benchmarks/speller.py (what is typed), against the
shipped recipe's folds. Decision and figures: benchmarks/RESULTS.md, "Every view without its room".

    python -m asl_edge.benchmarks.studies.masked_training ASL-TRAIN-OPTIONS...
"""
from __future__ import annotations

import sys

from asl_edge.train import augment
from asl_edge.train.cli import main as train_main


def main():
    augment.BACKGROUND_P = 1.0
    return train_main()


if __name__ == "__main__":
    sys.exit(main())
