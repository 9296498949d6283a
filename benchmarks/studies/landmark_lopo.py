"""Landmark-only letters, leave-one-source-out: how far do the 21 hand landmarks alone go on strangers?

    python -m asl_edge.benchmarks.studies.landmark_lopo --per-class 10 \\
        --data ../shared/data/asl_alphabet/train --data ../shared/data/roboflow_asl_letters/train \\
        --data ../shared/data/t32rahman_closeup --data ../shared/data/longhongvo23_handcrops

Each source is one signer (or, for Roboflow, one collection of people). Landmarks come from the
runtime's hand finder (runtime/hands.py, full landmark model, still-image mode) on the whole
image; images where it finds no hand are counted, not classified. Features: the 21 points
relative to the wrist, rotated so wrist -> middle knuckle points up, divided by that length,
x mirrored for one handedness (so left and right hands look alike); z is scaled the same way.
A small MLP (63 -> 64 -> 26, Adam, weight decay, fixed epochs, seed 0) is trained on all
sources but one and scored on the one left out. Letters only (A-Z). A measurement, not shipped.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

from asl_edge.runtime.errors import UserError, cli_errors

LETTERS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]


def normalise(landmarks: np.ndarray, handedness: str) -> np.ndarray:
    """(21, 3) frame-pixel landmarks -> 63 numbers: runtime/landmarks.py's row without its presence flag."""
    from asl_edge.runtime.landmarks import hand_features

    return hand_features(landmarks, handedness)[:63]


def source_features(path, per_class: int, log) -> tuple:
    """(features (n, 63), labels (n,), images tried) for up to per_class images per letter."""
    from asl_edge.export.images import stratified
    from asl_edge.runtime.contract import read_rgb
    from asl_edge.runtime.hands import HandTracker
    from asl_edge.train.data import scan_source

    samples, _ = scan_source(path, LETTERS, strict_classes=False, check_images=False, log=log)
    samples = stratified(samples, per_class * len({s.label for s in samples}))
    tracker = HandTracker("full", video=False)
    feats, labels = [], []
    for s in samples:
        hand = tracker.process(read_rgb(s.path))
        if hand is not None:
            feats.append(normalise(hand.landmarks, hand.handedness))
            labels.append(s.label)
    log(f"{path}: hand found in {len(feats)}/{len(samples)} images")
    return np.array(feats).reshape(-1, 63), np.array(labels, int), len(samples)


def train_mlp(x, y, epochs: int = 400, seed: int = 0):
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, len(LETTERS)))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):  # full batch: a few hundred rows per source
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return lambda z: net(torch.from_numpy(z)).argmax(1).numpy()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", "sources", multiple=True, required=True, type=click.Path(), help="A source (repeat, >= 2).")
@click.option("--per-class", default=10, show_default=True, type=click.IntRange(1))
@cli_errors
def main(sources, per_class):
    """Leave-one-source-out accuracy of a landmark-only letter classifier."""
    if len(sources) < 2:
        raise UserError("give at least two --data sources")
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    data = {Path(p).parent.name if Path(p).name == "train" else Path(p).name: source_features(p, per_class, log)
            for p in sources}
    print("| left-out source | images | hand found | landmark-only top-1 (found) | top-1 over all images |")
    print("|---|---|---|---|---|")
    for name, (x, y, tried) in data.items():
        rest = [v for k, v in data.items() if k != name]
        predict = train_mlp(np.concatenate([v[0] for v in rest]), np.concatenate([v[1] for v in rest]))
        right = int((predict(x) == y).sum())
        print(f"| {name} | {tried} | {len(y)} ({100 * len(y) / tried:.0f}%) | {100 * right / max(len(y), 1):.1f}% | "
              f"{100 * right / tried:.1f}% |")


if __name__ == "__main__":
    main()
