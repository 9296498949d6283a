"""Decision record: the hand finder's step 4, hands that fill the image (runtime/hands/ BORDER).

Question: where the hand finder found no hand (steps 1-3), does looking again at the image shrunk
inside a black border find the hand, and does the classifier then do better than on the whole image?
Options measured: no border, and outer squares 1.5x, 2x, 3x the image's longer side; on the images of
the hand-box cache (train/hand_boxes.py) where the finder without step 4 found nothing, whose path
contains PATTERN, scored with MODEL (default: the shipped one) as asl-run's files mode does.
Decision: 2x (benchmarks/RESULTS.md, "Hands that fill the image").

    python -m asl_edge.benchmarks.studies.border_search video_frames 300
"""
from __future__ import annotations

import glob
import json
import sys
from pathlib import Path

from asl_edge.runtime.contract import KAGGLE_CLASSES, read_rgb
from asl_edge.runtime.hands import HandFinder, HandTracker, crop_box
from asl_edge.runtime.landmarks import of_hand, stack
from asl_edge.runtime.model import OnnxClassifier
from asl_edge.train.data import CACHE_ROOT
from asl_edge.train.hand_boxes import finder_key


def true_class(path: str) -> str:
    p = Path(path)
    return p.parent.name if p.parent.name in KAGGLE_CLASSES else p.stem.split("_f")[0]


def top1(clf, rgb, hand) -> str:
    x = clf.contract.preprocess(rgb)[None]
    lm = stack([of_hand(hand) if hand is not None else None], 1, clf.contract.landmarks)
    return clf.classes[int(clf.classify(x, lm).probs[0].argmax())]


def main(pattern: str, limit: int, model=None):
    cache = {}
    for f in glob.glob(str(CACHE_ROOT / "hand_boxes" / f"{finder_key(border=0)}-*.json")):
        cache.update(json.loads(Path(f).read_text()))
    none = sorted({k.split("|")[0] for k, v in cache.items() if v is None and pattern in k})[:limit]
    print(f"{len(none)} images where the finder without step 4 found no hand")
    clf = OnnxClassifier(model, provider="cpu")
    whole = {p: top1(clf, read_rgb(p), None) for p in none}
    print(f"whole image: top-1 {sum(whole[p] == true_class(p) for p in none)}/{len(none)}")
    for factor in (1.5, 2.0, 3.0):
        finder = HandFinder(video=False, tracker=HandTracker("full", video=False, border=factor))
        found = right = 0
        for p in none:
            rgb = read_rgb(p)
            box = finder.find(rgb)
            label = whole[p] if box is None else top1(clf, crop_box(rgb, box), finder.hand)
            found += box is not None
            right += label == true_class(p)
        print(f"border {factor}: found {found}/{len(none)}, top-1 {right}/{len(none)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:4])
