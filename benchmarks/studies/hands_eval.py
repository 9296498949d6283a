"""How well do the hand finders find hands, and what does their crop do to accuracy?

    python -m asl_edge.benchmarks.studies.hands_eval --data ../shared/data/roboflow_asl_letters/train \
        --finder onnx --finder onnx-lite --max-images 300 --threads 1

Needs a folder of class subfolders with a boxes.csv beside them (file,class,x_min,y_min,x_max,y_max,
one hand box per image; the Roboflow layout). For each finder it reports

* detection rate: images where the finder returned a box;
* IoU >= 0.5: the finder's tight hand box against the true box (all images; a miss counts as 0);
* covers >= 70%: at least 70% of the true box lies inside the square crop that gets classified;

and top-1 accuracy of an asl-edge ONNX model (default: the shipped one) on the same images with
(a) the full image, (b) the square crop around the true box (same margin as the finders), and
(c) the finder's square crop, or the full image where it found nothing.

Finders: onnx (runtime/hands/ with the full landmark model, the runtime's default), onnx-lite
(the lite landmark model), mediapipe (MediaPipe itself, dev-only reference; needs mediapipe<0.10.30).
Torch-free: onnxruntime, numpy, OpenCV.
"""
from __future__ import annotations

import csv
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import click
import cv2
import numpy as np

from asl_edge.runtime.contract import IMAGE_EXTENSIONS, read_rgb
from asl_edge.common.errors import UserError, cli_errors
from asl_edge.runtime.hands import HandFinder, crop_box, iou_xyxy, square_box, xywh_to_corners

FINDERS = ("onnx", "onnx-lite", "mediapipe")


def make_finder(kind: str):
    if kind == "mediapipe":
        from asl_edge.benchmarks.studies.mediapipe_ref import MediaPipeHands
        return MediaPipeHands(video=False, complexity=1)
    finder = HandFinder(video=False, landmark_model="lite" if kind == "onnx-lite" else "full")
    finder.name = f"ONNX hands ({finder.tracker.landmark_model})"
    return finder
from asl_edge.runtime.model import OnnxClassifier, softmax


def load_boxes(root: Path) -> dict:
    f = root / "boxes.csv"
    if not f.is_file():
        raise UserError(f"no boxes.csv in {root}: hands_eval needs one true hand box per image")
    boxes = {}
    with open(f, newline="") as fh:
        for row in csv.DictReader(fh):
            boxes[row["file"]] = tuple(float(row[k]) for k in ("x_min", "y_min", "x_max", "y_max"))
    return boxes


def spread_sample(root: Path, boxes: dict, count: int) -> list:
    """Up to `count` (relative path, class) pairs with boxes, evenly spaced within each class and
    taken round-robin over classes, so every class is represented about equally."""
    per_class = defaultdict(list)
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(d.iterdir()):
            rel = f"{d.name}/{f.name}"
            if f.suffix.lower() in IMAGE_EXTENSIONS and rel in boxes:
                per_class[d.name].append(rel)
    if not per_class:
        raise UserError(f"no images with boxes found in class folders under {root}")
    classes = sorted(per_class)
    total = sum(len(v) for v in per_class.values())
    count = total if count <= 0 else min(count, total)
    quota = {c: 0 for c in classes}
    while sum(quota.values()) < count:
        for c in classes:
            if quota[c] < len(per_class[c]) and sum(quota.values()) < count:
                quota[c] += 1
    picked = []
    for c in classes:
        files, k = per_class[c], quota[c]
        idx = np.linspace(0, len(files) - 1, k).round().astype(int) if k else []
        picked += [(files[i], c) for i in idx]
    return picked


def iou(a, b) -> float:
    """Boxes as (x0, y0, x1, y1)."""
    return float(iou_xyxy(np.asarray(a, float), np.asarray([b], float))[0])


def covered(true, crop) -> float:
    """Fraction of the true box (x0, y0, x1, y1) inside crop (x0, y0, x1, y1)."""
    ix = max(0.0, min(true[2], crop[2]) - max(true[0], crop[0]))
    iy = max(0.0, min(true[3], crop[3]) - max(true[1], crop[1]))
    area = (true[2] - true[0]) * (true[3] - true[1])
    return ix * iy / area if area > 0 else 0.0


class Classify:
    def __init__(self, clf):
        self.clf, self.index = clf, {c: i for i, c in enumerate(clf.classes)}

    def correct(self, images, labels) -> np.ndarray:
        out = []
        for i in range(0, len(images), 32):
            x = self.clf.contract.preprocess_batch(images[i:i + 32])
            out.append(softmax(self.clf.run(x)).argmax(axis=1))
        pred = np.concatenate(out)
        return pred == np.array([self.index.get(lab, -1) for lab in labels])


def pct(x) -> str:
    return f"{100 * float(np.mean(x)):.1f}%" if len(x) else "n/a"


def evaluate(data: Path, finders: list, model, max_images: int, threads: int, log=print) -> dict:
    boxes = load_boxes(data)
    picked = spread_sample(data, boxes, max_images)
    clf = OnnxClassifier(model, provider="cpu", threads=threads)
    unknown = sorted({c for _, c in picked} - set(clf.classes))
    if unknown:
        raise UserError(f"classes {unknown} are not among the model's classes")
    cls = Classify(clf)
    labels = [c for _, c in picked]
    images = [read_rgb(data / rel) for rel, _ in picked]
    true = [boxes[rel] for rel, _ in picked]
    true_sq = [square_box((b[0], b[1], b[2] - b[0], b[3] - b[1]), im.shape[1], im.shape[0])
               for b, im in zip(true, images)]
    full_ok = cls.correct(images, labels)
    box_ok = cls.correct([crop_box(im, sq) for im, sq in zip(images, true_sq)], labels)
    result = {"data": str(data), "images": len(images), "classes": len(set(labels)),
              "model": str(clf.path), "accuracy_full": float(full_ok.mean()),
              "accuracy_true_box": float(box_ok.mean()), "finders": {}}
    for kind in finders:
        finder = make_finder(kind)
        found, ious, covers, crops, seconds = [], [], [], [], []
        for im, tb in zip(images, true):
            t0 = time.perf_counter()
            hand = finder.find_hand(im)
            seconds.append(time.perf_counter() - t0)
            if hand is None:
                found.append(False)
                ious.append(0.0)
                covers.append(0.0)
                crops.append(im)
                continue
            sq = square_box(hand, im.shape[1], im.shape[0], finder.margin)
            found.append(True)
            ious.append(iou(xywh_to_corners(hand), tb))
            covers.append(covered(tb, xywh_to_corners(sq)))
            crops.append(crop_box(im, sq))
        finder.close()
        found, ious, covers = np.array(found), np.array(ious), np.array(covers)
        ok = cls.correct(crops, labels)
        result["finders"][kind] = {
            "name": finder.name, "detected": float(found.mean()), "iou_ge_0.5": float((ious >= 0.5).mean()),
            "covers_ge_70pct": float((covers >= 0.7).mean()),
            "mean_iou_when_found": float(ious[found].mean()) if found.any() else None,
            "accuracy_finder_crop": float(ok.mean()),
            "accuracy_when_found": {"finder_crop": float(ok[found].mean()) if found.any() else None,
                                    "true_box": float(box_ok[found].mean()) if found.any() else None,
                                    "full": float(full_ok[found].mean()) if found.any() else None},
            "ms_per_image_median": 1000 * float(np.median(seconds)),
        }
        g = np.array([im.ndim == 3 and np.array_equal(im[..., 0], im[..., 1]) and
                      np.array_equal(im[..., 1], im[..., 2]) for im in images])
        result["finders"][kind]["detected_grayscale"] = float(found[g].mean()) if g.any() else None
        result["grayscale_images"] = int(g.sum())
    return result


def report(r: dict) -> str:
    lines = [f"data {r['data']}: {r['images']} images, {r['classes']} classes "
             f"({r.get('grayscale_images', 0)} grayscale); model {r['model']}",
             f"top-1 (a) full image {100 * r['accuracy_full']:.1f}%   "
             f"(b) true-box crop {100 * r['accuracy_true_box']:.1f}%"]
    head = f"{'finder':<28} {'detected':>8} {'IoU>=0.5':>9} {'cover>=70%':>10} {'meanIoU':>8} " \
           f"{'(c) top-1':>9} {'ms/img':>7} {'gray det':>8}"
    lines += [head]
    for f in r["finders"].values():
        miou = f"{f['mean_iou_when_found']:.2f}" if f["mean_iou_when_found"] is not None else "-"
        gd = f"{100 * f['detected_grayscale']:.0f}%" if f["detected_grayscale"] is not None else "-"
        lines.append(f"{f['name']:<28} {100 * f['detected']:>7.1f}% {100 * f['iou_ge_0.5']:>8.1f}% "
                     f"{100 * f['covers_ge_70pct']:>9.1f}% {miou:>8} {100 * f['accuracy_finder_crop']:>8.1f}% "
                     f"{f['ms_per_image_median']:>7.1f} {gd:>8}")
        w = f["accuracy_when_found"]
        if w["finder_crop"] is not None:
            lines.append(f"{'':<28} on its detected images: finder crop {100 * w['finder_crop']:.1f}%, "
                         f"true-box crop {100 * w['true_box']:.1f}%, full {100 * w['full']:.1f}%")
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Class folders with boxes.csv beside them (e.g. roboflow_asl_letters/train).")
@click.option("--finder", "finders", multiple=True, type=click.Choice(FINDERS), default=("onnx",),
              show_default=True, help="Repeatable. onnx / onnx-lite = runtime/hands/ with the full / lite "
                                      "landmark model; mediapipe = MediaPipe itself (dev-only reference).")
@click.option("--model", "-m", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="ONNX model (default: the shipped model).")
@click.option("--max-images", type=click.IntRange(min=0), default=300, show_default=True,
              help="Images spread evenly over classes (0 = all).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the figures as JSON here.")
def cli(data, finders, model, max_images, threads, json_out):
    if not data.is_dir():
        raise UserError(f"data folder not found: {data}")
    cv2.setNumThreads(threads)
    r = evaluate(data, list(dict.fromkeys(finders)), model, max_images, threads,
                 log=lambda m: print(m, file=sys.stderr))
    r["command"] = " ".join(["python -m asl_edge.benchmarks.studies.hands_eval"] + sys.argv[1:])
    print(report(r))
    if json_out:
        json_out.write_text(json.dumps(r, indent=2))


@cli_errors
def main(argv=None):
    cli.main(args=argv, prog_name="python -m asl_edge.benchmarks.studies.hands_eval")


if __name__ == "__main__":
    main()
