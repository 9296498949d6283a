"""Decision record: more from the landmark rows for a stranger: distances to the thumb, all distances, or the
classifier's mean over turned copies of the hand at test time?

Question: for webcam strangers the landmark view carries the fusion, and its most frequent errors are letters
told apart by where the thumb lies against the fingers (E as M, M as S, N as T, A) or by a bend (D as X). The
shipped classifier reads the 66-number row plus the hand's geometry (train/hand_geometry.py: each finger's
flexion, the fingertips' spread). Options, each computed in the model from the same row and fitted the shipped
way (train/landmark_fit.py, the pose augmentation), leave one source out:
- distances: the shipped row and geometry plus the distance from the thumb's tip to every point of the four
  fingers (`thumb`, 16), plus from the thumb's last joint to the fingers' knuckles and middle joints
  (`thumb+ip`, 24), from each fingertip to the knuckles and the wrist (`palm`, 22), or every pair of points
  (`all`, 210: instead of the others);
- test-time turns: the shipped classifier's mean probability over the row and K-1 copies turned by the pose
  augmentation (`pose-K`: as in training; `turn-K-F`: turns of F times training's, no depth or noise change).
Decision and figures: benchmarks/RESULTS.md, "More from the landmark rows".

    D=../shared/data; python -m asl_edge.benchmarks.studies.landmark_extras --seed 0 --seed 1 \\
        --data $D/asl_alphabet/train --data $D/roboflow_asl_letters/train --data $D/t32rahman_closeup \\
        --data $D/longhongvo23_handcrops --data $D/webcam_recordings/gunsai75 \\
        --data $D/webcam_recordings/lolzorus --data $D/webcam_recordings/meyyappan
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np
import torch
from torch import nn

from asl_edge.benchmarks.studies.landmark_lopo import source_rows
from asl_edge.train import augment
from asl_edge.train.hand_geometry import HandGeometry
from asl_edge.train.landmark_fit import fit_landmark_classifier
from asl_edge.train.models import FusionHead

FINGERS = range(5, 21)
DISTANCES = {
    "thumb": [(4, j) for j in FINGERS],
    "thumb+ip": [(4, j) for j in FINGERS] + [(3, j) for j in (5, 6, 9, 10, 13, 14, 17, 18)],
    "palm": [(t, b) for t in (8, 12, 16, 20) for b in (5, 9, 13, 17, 0)] + [(4, 0), (4, 2)],
    "all": [(a, b) for a in range(21) for b in range(a + 1, 21)],
}
TURNS = {"pose-8": (8, 1.0, True), "turn-8-0.5": (8, 0.5, False), "turn-16-0.5": (16, 0.5, False),
         "turn-8-0.25": (8, 0.25, False)}


class WithDistances(nn.Module):
    """(N, 66) rows -> the shipped geometry's output plus the listed point-to-point distances."""

    def __init__(self, pairs):
        super().__init__()
        self.geometry = HandGeometry()
        self.register_buffer("a", torch.tensor([i for i, _ in pairs]), persistent=False)
        self.register_buffer("b", torch.tensor([j for _, j in pairs]), persistent=False)

    def forward(self, rows):
        points = rows[:, :63].reshape(-1, 21, 3)
        return torch.cat([self.geometry(rows), rows[:, 63:64] * (points[:, self.a] - points[:, self.b]).norm(dim=2)], 1)


def classifier(pairs, num_classes: int) -> nn.Module:
    if pairs is None:
        return FusionHead(1, num_classes, geometry=True).landmarks  # the shipped one
    width = HandGeometry()(torch.zeros(1, 66)).shape[1] + len(pairs)
    h = FusionHead.DROPOUT
    return nn.Sequential(WithDistances(pairs), nn.Linear(width, 128), nn.ReLU(), nn.Dropout(h),
                         nn.Linear(128, 128), nn.ReLU(), nn.Dropout(h), nn.Linear(128, num_classes))


def turned_mean(mlp: nn.Module, rows: np.ndarray, copies: int, scale: float, as_training: bool) -> np.ndarray:
    """The classifier's mean probability over the rows and copies - 1 turned copies (seeded)."""
    rng = np.random.default_rng(123)
    saved = augment.POSE_TURN, augment.POSE_DEPTH, augment.POSE_NOISE
    if not as_training:
        augment.POSE_TURN, augment.POSE_DEPTH, augment.POSE_NOISE = tuple(t * scale for t in saved[0]), 0.0, 0.0
    try:
        with torch.no_grad():
            total = sum(torch.softmax(mlp(torch.from_numpy(augment.pose(rows, rng) if i else rows)), 1).numpy()
                        for i in range(copies))
    finally:
        augment.POSE_TURN, augment.POSE_DEPTH, augment.POSE_NOISE = saved
    return total / copies


def left_out_scores(sources: list, k: int, seed: int, num_classes: int) -> dict:
    """Every option's top-1 % on source k, each classifier fitted on the others."""
    rest = [s for j, s in enumerate(sources) if j != k]
    rows, labels = np.concatenate([r for r, _, _ in rest]), np.concatenate([y for _, y, _ in rest])
    weights = torch.from_numpy(np.concatenate([np.full(len(y), 1.0 / len(y)) for _, y, _ in rest])).float()
    rows_k, y_k, _ = sources[k]
    keep = np.isin(y_k, labels)
    rows_k, y_k = rows_k[keep], y_k[keep]
    out = {}
    for name, pairs in {"shipped (geometry)": None, **DISTANCES}.items():
        mlp = classifier(pairs, num_classes)
        fit_landmark_classifier(mlp, torch.from_numpy(rows), torch.from_numpy(labels), weights, True, seed)
        out[name] = 100 * float((turned_mean(mlp, rows_k, 1, 1.0, True).argmax(1) == y_k).mean())
        if pairs is None:
            for turn, spec in TURNS.items():
                out[f"shipped, {turn}"] = 100 * float((turned_mean(mlp, rows_k, *spec).argmax(1) == y_k).mean())
    return out


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", "paths", multiple=True, required=True, type=click.Path(exists=True, path_type=Path),
              help="A source (asl-train's --data), each left out in turn.")
@click.option("--max-per-class", default=100, show_default=True, type=click.IntRange(1))
@click.option("--seed", "seeds", multiple=True, type=int, default=(0,), show_default=True)
def main(paths, max_per_class, seeds):
    sources = [source_rows(p, i, max_per_class, lambda *a: None) for i, p in enumerate(paths)]
    names = [p.parent.name if p.name in ("train", "test") else p.name for p in paths]  # asl_alphabet/train
    scores = {}
    for seed in seeds:
        for k in range(len(sources)):
            for name, v in left_out_scores(sources, k, seed, 29).items():
                scores.setdefault(name, np.zeros((len(seeds), len(sources))))[seeds.index(seed), k] = v
            print(f"seed {seed}, {names[k]} left out: done", file=sys.stderr, flush=True)
    print("| rows | " + " | ".join(names) + " | mean |\n|---|" + "---|" * (len(paths) + 1))
    for name, s in scores.items():
        m = s.mean(0)
        print(f"| {name} | " + " | ".join(f"{v:.1f}%" for v in m) + f" | {m.mean():.1f}% |")


if __name__ == "__main__":
    main()
