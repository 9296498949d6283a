"""Dev-only: does runtime/hands/ (ONNX) find the same hands as MediaPipe itself?

    python -m asl_edge.benchmarks.studies.hands_parity --kaggle ../shared/data/asl_alphabet \
        --roboflow ../shared/data/roboflow_asl_letters/train --max-images 300

Needs mediapipe>=0.10.5,<0.10.30 (numpy<2) next to asl-edge: run it from a venv of its own.
Both run in image mode (palm detection on every image), MediaPipe with model_complexity=1 (the
same palm_detection_full and hand_landmark_full models the runtime ships). Per source (Kaggle
test images, Roboflow photos, camera-like frames made from Roboflow photos):

* found: images where each finder returned a hand;
* box IoU >= 0.9: the landmarks' bounding boxes agree (of the images where MediaPipe found one);
* landmark error: mean distance over the 21 landmarks, as % of MediaPipe's landmark box size
  (longer side), median and share <= 3%; handedness agreement;
* vs boxes.csv (Roboflow and made frames): hand box (landmarks + 15% pad) IoU >= 0.5 with the
  labelled box, for both finders (a miss counts as a failure).
"""
from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from asl_edge.benchmarks.studies.hand_scenes import load_boxes, scenes
from asl_edge.benchmarks.studies.hands_eval import iou as box_iou
from asl_edge.benchmarks.studies.mediapipe_ref import MediaPipeHands
from asl_edge.runtime.contract import IMAGE_EXTENSIONS, read_rgb
from asl_edge.common.errors import UserError, cli_errors
from asl_edge.runtime.hands import HandFinder, xywh_to_corners


def extent(lm) -> tuple:
    return (*lm.min(0), *lm.max(0))


def compare(items, ours: HandFinder, ref: MediaPipeHands) -> dict:
    """items: (rgb, true box or None) pairs."""
    n = mp_found = our_found = both = iou_ok = hand_agree = 0
    errors, true_n, true_ok = [], 0, {"onnx": 0, "mediapipe": 0}
    for rgb, true in items:
        n += 1
        ob, rb = ours.find_hand(rgb), ref.find_hand(rgb)
        our_found += ob is not None
        mp_found += rb is not None
        if true is not None:
            true_n += 1
            true_ok["onnx"] += ob is not None and box_iou(xywh_to_corners(ob), true) >= 0.5
            true_ok["mediapipe"] += rb is not None and box_iou(xywh_to_corners(rb), true) >= 0.5
        if rb is None:
            continue
        if ob is None:
            errors.append(np.inf)
            continue
        both += 1
        a, b = ours.hand.landmarks[:, :2], ref.landmarks
        iou_ok += box_iou(extent(a), extent(b)) >= 0.9
        size = max(np.ptp(b[:, 0]), np.ptp(b[:, 1]), 1e-6)
        errors.append(float(np.linalg.norm(a - b, axis=1).mean() / size))
        hand_agree += ours.hand.handedness == ref.handedness
    errors = np.array(errors)
    return {"images": n, "mediapipe_found": mp_found, "onnx_found": our_found, "both_found": both,
            "box_iou_ge_0.9_of_mediapipe_found": iou_ok / mp_found if mp_found else None,
            "landmark_error_median_pct": 100 * float(np.median(errors)) if len(errors) else None,
            "landmark_error_le_3pct_of_mediapipe_found": float((errors <= 0.03).mean()) if len(errors) else None,
            "handedness_agree_of_both": hand_agree / both if both else None,
            "vs_true_boxes": None if not true_n else {k: v / true_n for k, v in true_ok.items()} | {"images": true_n}}


def kaggle_test(root: Path):
    for f in sorted((root / "test").rglob("*")):
        if f.suffix.lower() in IMAGE_EXTENSIONS:
            yield read_rgb(f), None


def roboflow_photos(root: Path, count: int):
    boxes = load_boxes(root)
    names = sorted(boxes)
    if count > 0:
        names = [names[i] for i in np.linspace(0, len(names) - 1, min(count, len(names))).round().astype(int)]
    for name in names:
        yield read_rgb(root / name), boxes[name]


def made_frames(root: Path, kaggle: Path, count: int):
    for rgb, true, _ in scenes(root, kaggle, count):
        yield rgb, true


def fmt_err(v) -> str:
    return "-" if v is None else f"{v:.2f}%"


def report(name, r) -> str:
    def p(v):
        return "-" if v is None else f"{100 * v:.1f}%"
    line = (f"{name:<22} {r['images']:>5} imgs  found mp {r['mediapipe_found']:>4} onnx {r['onnx_found']:>4}  "
            f"IoU>=0.9 {p(r['box_iou_ge_0.9_of_mediapipe_found'])}  landmark err median "
            f"{fmt_err(r['landmark_error_median_pct'])}"
            f", <=3% {p(r['landmark_error_le_3pct_of_mediapipe_found'])}  handedness {p(r['handedness_agree_of_both'])}")
    t = r["vs_true_boxes"]
    if t:
        line += f"  boxes.csv IoU>=0.5: onnx {p(t['onnx'])} mediapipe {p(t['mediapipe'])}"
    return line


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--kaggle", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Kaggle asl_alphabet folder (uses test/ and, for made frames, train/nothing/).")
@click.option("--roboflow", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Roboflow train folder with boxes.csv.")
@click.option("--max-images", type=click.IntRange(min=0), default=300, show_default=True,
              help="Roboflow photos, spread over the folder (0 = all); as many made frames / 2.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def cli(kaggle, roboflow, max_images, json_out):
    if kaggle is None and roboflow is None:
        raise UserError("give --kaggle and/or --roboflow")
    ours, ref = HandFinder(video=False, zoom=False), MediaPipeHands(video=False, complexity=1)
    results = {}
    if kaggle is not None:
        results["kaggle test"] = compare(kaggle_test(kaggle), ours, ref)
    if roboflow is not None:
        results["roboflow photos"] = compare(roboflow_photos(roboflow, max_images), ours, ref)
        if kaggle is not None:
            results["made 640x480 frames"] = compare(made_frames(roboflow, kaggle, max(1, max_images // 2)), ours, ref)
    for name, r in results.items():
        print(report(name, r))
    if json_out:
        json_out.write_text(json.dumps(results, indent=2))
    ref.close()


@cli_errors
def main(argv=None):
    cli.main(args=argv, prog_name="python -m asl_edge.benchmarks.studies.hands_parity")


if __name__ == "__main__":
    main()
