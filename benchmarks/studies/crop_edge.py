"""Decision record: the hand crop where its square would leave the frame.

Question: training cropped a hand cut by the frame edge with a centred square, padded by repeating the
edge pixels; asl-run shifted the square inside the frame (never larger than the frame's shorter side).
One rule must serve both (the model contract's crop). Which one, for a model trained with the padded one?
Options: the two crops of the same found hand, classified by the same model, on the held-out (val) frame
blocks of each training source (split.csv of the model's run); only images where the two crops differ count.
Decision and figures: benchmarks/RESULTS.md, "The crop at the frame edge".

    python -m asl_edge.benchmarks.studies.crop_edge runs/default/best.onnx runs/default/split.csv --per-source 300
"""
from __future__ import annotations

import csv
import random
from collections import defaultdict

import click
import cv2
import numpy as np

from asl_edge.runtime.contract import read_rgb
from asl_edge.runtime.hands import HandFinder, crop_box
from asl_edge.runtime.landmarks import of_hand
from asl_edge.runtime.model import OnnxClassifier


def padded_crop(rgb, box, margin):
    """The former training crop: a square `margin` wider than the (x, y, w, h) box, centred on it (at most
    the frame's longer side), edge pixels repeated where it leaves the frame."""
    x, y, w, h = box
    side = min(max(w, h) * (1 + margin), max(rgb.shape[:2]))
    a, b, s = int(round(x + w / 2 - side / 2)), int(round(y + h / 2 - side / 2)), int(round(side))
    pad = max(0, -a, -b, a + s - rgb.shape[1], b + s - rgb.shape[0])
    if pad:
        rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        a, b = a + pad, b + pad
    return rgb[b:b + s, a:a + s]


def source_name(path: str) -> str:
    parts = path.split("/")
    return parts[parts.index("data") + 1] if "data" in parts else "video frames (the frame cache)"


def val_rows(split_csv, per_source: int):
    """(source, its val rows of split.csv, at most per_source drawn with seed 0) for each source in order."""
    by_source = defaultdict(list)
    for row in csv.DictReader(open(split_csv)):
        if row["split"] == "val":
            by_source[row["source"]].append(row)
    rng = random.Random(0)
    for source, rows in sorted(by_source.items()):
        yield source, rows if len(rows) <= per_source else rng.sample(rows, per_source)


@click.command()
@click.argument("model")
@click.argument("split_csv")
@click.option("--per-source", default=300, show_default=True, help="Val images drawn per source.")
def main(model, split_csv, per_source):
    clf = OnnxClassifier(model, provider="cpu", threads=2)
    finder = HandFinder(clf.contract.crop_margin, video=False)
    print("| source | val images | crops differ | shifted right | padded right |\n|---|---|---|---|---|")
    for source, rows in val_rows(split_csv, per_source):
        differ = right_shift = right_pad = 0
        for row in rows:
            rgb = read_rgb(row["path"])
            found = finder.locate(rgb)
            if found is None:
                continue
            shifted, padded = crop_box(rgb, found.square), padded_crop(rgb, found.box, clf.contract.crop_margin)
            if shifted.shape == padded.shape and np.array_equal(shifted, padded):
                continue
            differ += 1
            x = clf.contract.preprocess_batch([shifted, padded])
            top = clf.classify(x, np.repeat(of_hand(found.hand)[None], 2, 0)).probs.argmax(1)
            right_shift += clf.classes[int(top[0])] == row["class"]
            right_pad += clf.classes[int(top[1])] == row["class"]
        print(f"| {source} ({source_name(rows[0]['path'])}) | {len(rows)} | {differ} | {right_shift} | {right_pad} |",
              flush=True)


if __name__ == "__main__":
    main()
