"""Decision record: how should the two classifiers be fused for a stranger at a webcam?

Question: the fused score is log p_image + w * log p_landmarks (w = 1 shipped; chosen on the four older
sources, benchmarks/RESULTS.md "The landmark classifier: its own stage"). On the webcam people, each left
out of its fold's training, which view is right how often, and would another w, or another rule, do better?
Options: the image view alone, the landmark view alone, the product at w in 0.5..3, the mean of the two
probabilities, the more confident view. Method: every `--step`th frame of each letter video, tracked by
asl-run's own frame pipeline (the fold's INT8 file for the crop and the landmarks), scored by the fold's
checkpoint in PyTorch, whose two branches give each view's log-probabilities.
Decision and figures: benchmarks/RESULTS.md, "Fusing the two views for webcam strangers".

    python -m asl_edge.benchmarks.studies.webcam_fusion ../shared/data/webcam_recordings \
        --fold gunsai75=runs/lopo_web/lo-gunsai75 --fold lolzorus=runs/lopo_web/lo-lolzorus \
        --fold meyyappan=runs/lopo_web/lo-meyyappan
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
import cv2
import numpy as np
import torch

from asl_edge.benchmarks.loop import hand_pipeline
from asl_edge.runtime.cli import load_model
from asl_edge.runtime.landmarks import LANDMARK_FEATURES, PRESENCE
from asl_edge.train.checkpoint import load_checkpoint, model_from_checkpoint

WEIGHTS = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


def tracked_letter_frames(videos: Path, clf, step: int):
    """(letter, the frame pipeline's Prepared) for every `step`th frame of each <LETTER>.mp4 in `videos`, each
    video tracked from its first frame by asl-run's frame pipeline (full hand landmark model)."""
    for video in sorted(videos.glob("*.mp4")):
        pipe = hand_pipeline(clf, "full")
        cap = cv2.VideoCapture(str(video))
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            p = pipe.prepare(frame)  # every frame, so the tracker sees the video as the camera loop does
            if i % step == 0:
                yield video.stem, p
            i += 1
        cap.release()


def views(videos: Path, fold: Path, step: int) -> dict:
    """Each view's log-probabilities on every `step`th frame of the person's letter videos."""
    clf = load_model(str(fold / "last.int8.onnx"), "cpu", 1)[0]
    net = model_from_checkpoint(load_checkpoint(fold / "last.ckpt"))[0].eval()
    classes = list(clf.classes)
    xs, rows, labels = [], [], []
    for letter, p in tracked_letter_frames(videos, clf, step):
        xs.append(p.x[0])
        rows.append(p.landmarks[0] if p.landmarks is not None else np.zeros(LANDMARK_FEATURES, np.float32))
        labels.append(classes.index(letter))
    lm = torch.from_numpy(np.stack(rows)).float()
    with torch.no_grad():
        b = torch.log_softmax(net.head.landmarks(lm), 1).numpy()
    return {"a": image_log_probs(net, np.stack(xs)), "b": b, "hand": lm[:, PRESENCE].numpy() > 0, "y": np.array(labels)}


def image_log_probs(net, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """The checkpoint's image view on preprocessed crops (N, ...), in batches."""
    with torch.no_grad():
        return torch.cat([torch.log_softmax(net.head.image(net.backbone(torch.from_numpy(x[k:k + batch]))), 1)
                          for k in range(0, len(x), batch)]).numpy()


def fold_command(step: int):
    """The command line of a study over webcam people, each scored by the fold that left them out."""
    def wrap(f):
        f = click.option("--step", default=step, show_default=True, type=click.IntRange(1, 100), help="Every Nth frame.")(f)
        f = click.option("--fold", "folds", multiple=True, required=True, metavar="PERSON=RUN_DIR",
                         help="A person and the run (last.ckpt, last.int8.onnx) that left them out.")(f)
        f = click.argument("recordings", type=click.Path(exists=True, file_okay=False, path_type=Path))(f)
        return click.command(context_settings={"help_option_names": ["-h", "--help"]})(f)
    return wrap


def rules(v: dict) -> dict:
    """Top-1 of each fusion rule."""
    a, b, hand, y = v["a"], v["b"], v["hand"][:, None], v["y"]
    pa, pb = np.exp(a), np.exp(b)

    def top1(scores):
        return float((scores.argmax(1) == y).mean())

    out = {"image alone": top1(a), "landmarks alone (frames with a hand)": float((b.argmax(1) == y)[v["hand"]].mean())}
    out |= {f"product, w = {w:g}": top1(a + w * hand * b) for w in WEIGHTS}
    out["mean of the two probabilities"] = top1(np.where(hand, (pa + pb) / 2, pa))
    out["the more confident view"] = top1(np.where(hand & (pb.max(1, keepdims=True) > pa.max(1, keepdims=True)), pb, pa))
    return out


@fold_command(step=2)
def main(recordings, folds, step):
    table = {}
    for spec in folds:
        person, _, run = spec.partition("=")
        table[person] = rules(views(recordings / person, Path(run), step))
        print(f"{person}: done", file=sys.stderr, flush=True)
    people = list(table)
    print("| rule | " + " | ".join(people) + " | mean |\n|---|" + "---|" * (len(people) + 1))
    for rule in table[people[0]]:
        values = [table[p][rule] for p in people]
        print(f"| {rule} | " + " | ".join(f"{100 * v:.1f}%" for v in values) + f" | {100 * np.mean(values):.1f}% |")


if __name__ == "__main__":
    main()
