"""Hand finding: speed per frame and in the camera loop, and what it does to accuracy.

    python -m asl_edge.benchmarks.studies.hands_bench --kaggle ../shared/data/asl_alphabet \
        --roboflow ../shared/data/roboflow_asl_letters/train --threads 1

1. Speed, on a 640x480 MJPG video made from Roboflow photos pasted at several places and scales
   on a Kaggle "nothing" background (benchmarks/studies/hand_scenes.py; 30 drifting frames per photo):
   median ms of palm detection (whole frame), one landmark run, a tracking-mode frame (landmarks
   only) and a frame that needs palm detection; then `asl-run --camera VIDEO --no-display` end to
   end (fps from its summary line), with hand finding and with the fixed guide box.
2. Accuracy of the shipped classifier on the Roboflow photos the default model never saw (its
   held-out split, rebuilt with train.data.split_samples exactly as `make default-model` made it):
   whole image vs the finder's crop vs the boxes.csv crop, and detection (IoU >= 0.5).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from asl_edge.benchmarks.studies.hand_scenes import scenes, write_video
from asl_edge.runtime.contract import KAGGLE_CLASSES
from asl_edge.runtime.hands import HandTracker


def median_ms(xs) -> float:
    return 1000 * float(np.median(xs)) if len(xs) else float("nan")


def speed(frames, landmark_model: str, threads: int) -> dict:
    t = HandTracker(landmark_model, video=True, threads=threads)
    palm, lm, tracked, detected = [], [], [], []
    for rgb, _, _ in frames[:5]:  # warm-up
        t.process(rgb)
    t.reset()
    for rgb, _, _ in frames:
        t0 = time.perf_counter()
        palms = t.detect_palms(rgb)
        palm.append(time.perf_counter() - t0)
        if palms:
            crop = t.palm_crop(palms[0])
            t0 = time.perf_counter()
            t.landmarks(rgb, crop)
            lm.append(time.perf_counter() - t0)
    for rgb, _, _ in frames:
        was_tracking = t.last is not None
        runs = t.palm_runs
        t0 = time.perf_counter()
        t.process(rgb)
        dt = time.perf_counter() - t0
        (tracked if was_tracking and t.palm_runs == runs else detected).append(dt)
    return {"landmark_model": landmark_model, "threads": threads, "frames": len(frames),
            "palm_detection_ms": median_ms(palm), "landmarks_ms": median_ms(lm),
            "tracking_frame_ms": median_ms(tracked), "tracking_frames": len(tracked),
            "detection_frame_ms": median_ms(detected), "detection_frames": len(detected)}


def camera_loop(video: Path, roi: str, threads: int, hand_model: str, zoom: bool = True) -> dict:
    cmd = [sys.executable, "-m", "asl_edge.runtime.cli", "--camera", str(video), "--no-display",
           "--roi", roi, "--hand-model", hand_model, "--threads", str(threads), "--zoom" if zoom else "--no-zoom"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    line = next((l for l in out.stdout.splitlines() if l.startswith("summary:")), "")
    m = re.search(r"([\d.]+) fps end-to-end; model ([\d.]+) ms/frame", line)
    hand = re.search(r"hand found in (\d+)/(\d+) frames \(([\d.]+) ms/frame\)", line)
    return {"roi": roi, "hand_model": hand_model, "zoom": zoom, "fps": float(m.group(1)) if m else None,
            "model_ms": float(m.group(2)) if m else None,
            "hand_frames": f"{hand.group(1)}/{hand.group(2)}" if hand else None,
            "hand_ms": float(hand.group(3)) if hand else None, "summary": line or out.stderr[-300:]}


def heldout_folder(kaggle: Path, roboflow: Path, out: Path) -> Path:
    """The default model's held-out Roboflow photos as OUT/<CLASS>/ links + boxes.csv."""
    from asl_edge.train import data as D
    samples = []
    for i, src in enumerate([kaggle / "train", roboflow]):
        found, _ = D.scan_source(src, KAGGLE_CLASSES, source_index=i, check_images=False)
        samples += found
    _, val = D.split_samples(samples, 0.2, 0)
    rows = ["file,class,x_min,y_min,x_max,y_max"]
    for i in val:
        s = samples[i]
        if s.source != 1:
            continue
        p = Path(s.path)
        (out / p.parent.name).mkdir(parents=True, exist_ok=True)
        link = out / p.parent.name / p.name
        if not link.exists():
            os.symlink(p.resolve(), link)
        rows.append(f"{p.parent.name}/{p.name}," + p.parent.name + "," + ",".join(f"{v:.2f}" for v in s.box))
    (out / "boxes.csv").write_text("\n".join(rows) + "\n")
    return out


@click.command()
@click.option("--kaggle", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--roboflow", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--photos", type=int, default=12, show_default=True, help="Photos in the made video (30 frames each).")
@click.option("--skip-accuracy", is_flag=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(kaggle, roboflow, threads, photos, skip_accuracy, json_out):
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        frames = list(scenes(roboflow, kaggle, photos, frames_each=30))
        video = Path(tmp) / "hands_640x480.avi"
        write_video(video, frames)
        print(f"video: {len(frames)} frames 640x480 from {photos} photos")
        result["speed"] = [speed(frames, m, threads) for m in ("full", "lite")]
        for s in result["speed"]:
            print(json.dumps(s))
        result["camera_loop"] = [camera_loop(video, roi, threads, m, zoom)
                                 for roi, m, zoom in (("hand", "full", True), ("hand", "full", False),
                                                      ("hand", "lite", True), ("hand", "lite", False),
                                                      ("0.6", "full", True))]
        for c in result["camera_loop"]:
            print(json.dumps({k: v for k, v in c.items() if k != "summary"}))
            print("   ", c["summary"])
        if not skip_accuracy:
            from asl_edge.benchmarks.studies.hands_eval import evaluate, report
            folder = heldout_folder(kaggle, roboflow, Path(tmp) / "heldout")
            r = evaluate(folder, ["onnx", "onnx-lite"], None, 0, threads, log=lambda *a: None)
            print(report(r))
            result["accuracy"] = r
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
