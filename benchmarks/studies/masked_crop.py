"""Decision record: would the image classifier read a webcam stranger better if the crop showed the hand alone?

Question: the shipped recipe replaces the background outside the hand's hull (its landmarks, widened and
feathered) with a random colour field in half the training views (train/augment.py, `background`), so a
fold's model has seen hands without their room. For a stranger at a webcam the image view is the weak one
(benchmarks/RESULTS.md, "Fusing the two views for webcam strangers"). At run time, would masking the frame the
same way before the crop (no retraining) help the image view and the fused score? Options, each frame's
background replaced by: nothing (`raw`, as shipped), mid grey (`grey`), a random colour field as training
makes (`field`, seeded), the frame itself blurred (`blur`). Method: every `--step`th frame of each letter video,
tracked by asl-run's frame pipeline (the fold's INT8 file: hand box, landmarks), frames with a tracked hand;
the fold's checkpoint in PyTorch scores each variant's crop (image view) and the frame's landmark row.
Decision and figures: benchmarks/RESULTS.md, "The crop without its room, at run time".

    python -m asl_edge.benchmarks.studies.masked_crop ../shared/data/webcam_recordings \\
        --fold gunsai75=runs/full/lo-gunsai75 --fold lolzorus=runs/geom_scene/lo-lolzorus \\
        --fold meyyappan=runs/full/lo-meyyappan
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from asl_edge.benchmarks.studies.webcam_fusion import fold_command, image_log_probs, tracked_letter_frames
from asl_edge.runtime.cli import load_model
from asl_edge.train.augment import hand_mask, random_background
from asl_edge.train.checkpoint import load_checkpoint, model_from_checkpoint

VARIANTS = ("raw", "grey", "field", "blur")


def fill(rgb: np.ndarray, variant: str, rng: np.random.Generator) -> np.ndarray:
    if variant == "grey":
        return np.full(rgb.shape, 128, np.float32)
    if variant == "field":
        return random_background(rgb.shape, rng)
    return cv2.GaussianBlur(rgb, (0, 0), 25).astype(np.float32)


def person_scores(videos: Path, fold: Path, step: int) -> dict:
    """{variant: (image top-1 %, fused top-1 %)} and "landmarks": top-1 %, "frames": n."""
    clf = load_model(str(fold / "last.int8.onnx"), "cpu", 1)[0]
    net = model_from_checkpoint(load_checkpoint(fold / "last.ckpt"))[0].eval()
    classes = list(clf.classes)
    xs = {v: [] for v in VARIANTS}
    rows, labels = [], []
    rng = np.random.default_rng(0)
    for letter, p in tracked_letter_frames(videos, clf, step):
        r = p.region
        if r.hand is None or r.rgb is None:
            continue
        x0, y0, x1, y1 = r.box
        mask = hand_mask(r.rgb.shape, r.landmarks)[..., None]
        xs["raw"].append(p.x[0])
        for v in VARIANTS[1:]:
            masked = np.clip(r.rgb.astype(np.float32) * mask + fill(r.rgb, v, rng) * (1 - mask) + 0.5, 0, 255)
            xs[v].append(clf.contract.preprocess(masked.astype(np.uint8)[y0:y1, x0:x1]))
        rows.append(p.landmarks[0])
        labels.append(classes.index(letter))
    y = np.array(labels)
    with torch.no_grad():
        b = torch.log_softmax(net.head.landmarks(torch.from_numpy(np.stack(rows)).float()), 1).numpy()
        out = {"frames": len(y), "landmarks": 100 * float((b.argmax(1) == y).mean())}
        for v in VARIANTS:
            a = image_log_probs(net, np.stack(xs[v]))
            out[v] = (100 * float((a.argmax(1) == y).mean()), 100 * float(((a + b).argmax(1) == y).mean()))
    return out


@fold_command(step=4)
def main(recordings, folds, step):
    print("| person (frames) | landmarks | " + " | ".join(f"{v}: image / fused" for v in VARIANTS) + " |")
    print("|---|---|" + "---|" * len(VARIANTS))
    for spec in folds:
        person, _, run = spec.partition("=")
        s = person_scores(recordings / person, Path(run), step)
        print(f"| {person} ({s['frames']}) | {s['landmarks']:.1f}% | "
              + " | ".join(f"{s[v][0]:.1f} / {s[v][1]:.1f}%" for v in VARIANTS) + " |", flush=True)
        print(f"{person}: done", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
