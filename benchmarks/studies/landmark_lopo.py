"""Landmark-only letters, leave one source out: how far do the hand's landmarks alone go on
strangers, with the shape alone (the earlier 64-number rows) and with the hand's direction in the
frame (today's 66, runtime/landmarks.py)?

    python -m asl_edge.benchmarks.studies.landmark_lopo --max-per-class 100 --seed 0 --seed 1 --seed 2 \\
        --data ../shared/data/asl_alphabet/train --data ../shared/data/roboflow_asl_letters/train \\
        --data ../shared/data/t32rahman_closeup --data ../shared/data/longhongvo23_handcrops

Each source is one signer (or, for Roboflow, one collection of people). The images and landmarks
are asl-train's: up to --max-per-class images per class and source, through the runtime's hand
finder (train/hand_boxes.py, cached). The classifier is the shipped one, fitted the shipped way
(FusionHead's landmark MLP, train/landmark_fit.py with the pose augmentation) on all sources but
one, every source weighted to the same total, and scored on the hands found in the one left out
(its classes that the others also have). A measurement, not shipped.
With --ensemble: per layout, the --seed classifiers' mean probability as one more row (an ensemble's gain).
With --geometry: a row for the 66 layout with the hand's geometry (train/hand_geometry.py).
With --bones B (repeat): more rows of the 66 layout, the pose augmentation also changing the hand's
proportions by B (train/augment.py, POSE_BONES; measured, not shipped: benchmarks/RESULTS.md).
"""
from __future__ import annotations

import sys

import click
import numpy as np

from asl_edge.common.errors import UserError, cli_errors
from asl_edge.runtime.landmarks import LAYOUTS

LETTERS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
LAYOUT_NAMES = {64: "shape (64: earlier layout)", 66: "shape + direction (66)"}


def source_rows(path, index: int, max_per_class: int, log) -> tuple:
    """One source -> (landmark rows (n, 66) of the images with a hand, labels (n,), images tried)."""
    from asl_edge.runtime.landmarks import stack
    from asl_edge.train.run_data import source_with_hands

    samples, _ = source_with_hands(path, index, max_per_class)
    found = [s for s in samples if s.hand is not None]
    return stack([s.hand for s in found], len(found)), np.array([s.label for s in found], int), len(samples)


def left_out_probabilities(sources: list, k: int, width: int, seed: int, num_classes: int,
                           geometry: bool = False) -> tuple:
    """Fit the landmark classifier on every source but k (rows cut to `width`), -> (probabilities,
    true) on k's rows whose class the others have."""
    import torch

    from asl_edge.train.landmark_fit import fit_landmark_classifier
    from asl_edge.train.models import FusionHead

    rest = [s for j, s in enumerate(sources) if j != k]
    rows = np.concatenate([r for r, _, _ in rest])[:, :width]
    labels = np.concatenate([y for _, y, _ in rest])
    weights = np.concatenate([np.full(len(y), 1.0 / len(y)) for _, y, _ in rest])
    head = FusionHead(1, num_classes, landmark_dim=width, geometry=geometry)
    fit_landmark_classifier(head.landmarks, torch.from_numpy(rows), torch.from_numpy(labels),
                            torch.from_numpy(weights).float(), True, seed)
    rows_k, y_k, _ = sources[k]
    keep = np.isin(y_k, labels)
    with torch.no_grad():
        probs = torch.softmax(head.landmarks(torch.from_numpy(rows_k[keep, :width])), 1).numpy()
    return probs, y_k[keep]


def layout_scores(sources: list, width: int, seeds, num_classes: int, geometry: bool = False) -> dict:
    """-> {"per_source": (seeds, sources) top-1 %, "per_class": (classes,) right / count over all,
    "ensemble": (sources,) top-1 % of the seeds' classifiers' mean probability}."""
    per_source = np.zeros((len(seeds), len(sources)))
    right, count = np.zeros(num_classes), np.zeros(num_classes)
    summed = [0.0] * len(sources)
    truth = [None] * len(sources)
    for i, seed in enumerate(seeds):
        for k in range(len(sources)):
            probs, y = left_out_probabilities(sources, k, width, seed, num_classes, geometry)
            pred = probs.argmax(1)
            per_source[i, k] = 100.0 * (pred == y).mean() if len(y) else float("nan")
            np.add.at(count, y, 1)
            np.add.at(right, y[pred == y], 1)
            summed[k], truth[k] = summed[k] + probs, y
    ensemble = np.array([100.0 * (np.argmax(p, 1) == y).mean() if len(y) else float("nan")
                         for p, y in zip(summed, truth)])
    return {"per_source": per_source, "ensemble": ensemble,
            "per_class": np.divide(right, count, out=np.full(num_classes, np.nan), where=count > 0)}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", "paths", multiple=True, required=True, type=click.Path(), help="A source (repeat, >= 2).")
@click.option("--max-per-class", default=100, show_default=True, type=click.IntRange(1))
@click.option("--seed", "seeds", multiple=True, type=int, default=(0,), show_default=True, help="Repeat for more.")
@click.option("--bones", "bones", multiple=True, type=click.FloatRange(0, 1, min_open=True),
              help="Also the 66 layout with the hand's proportions changed by this much (repeat).")
@click.option("--geometry", is_flag=True,
              help="Also the 66 layout with the hand's geometry (train/hand_geometry.py, asl-train --landmark-geometry).")
@click.option("--ensemble", is_flag=True,
              help="Also a row per layout for the mean probability of the --seed classifiers (one per seed).")
@cli_errors
def main(paths, max_per_class, seeds, bones, geometry, ensemble):
    """Leave-one-source-out top-1 of the landmark classifier alone, per row layout."""
    from asl_edge.runtime.contract import KAGGLE_CLASSES
    from asl_edge.train import augment

    if len(paths) < 2:
        raise UserError("give at least two --data sources")
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    sources = [source_rows(p, i, max_per_class, log) for i, p in enumerate(paths)]
    names = [p.rstrip("/").split("/")[-2 if p.rstrip("/").endswith("train") else -1] for p in paths]
    print("hands found: " + ", ".join(f"{n} {len(y)}/{tried}" for n, (_, y, tried) in zip(names, sources)))
    print(f"\n| rows | {' | '.join(names)} | mean left-out | per seed |")
    print("|---|" + "---|" * (len(names) + 2))
    per_class = {}
    rows = [(LAYOUT_NAMES[w], w, 0.0, False) for w in LAYOUTS] + [(f"66, proportions +-{b:g}", 66, b, False) for b in bones]
    rows += [("66 + the hand's geometry", 66, 0.0, True)] if geometry else []
    for name, width, bone, with_geometry in rows:
        augment.POSE_BONES = bone
        s = layout_scores(sources, width, list(seeds), len(KAGGLE_CLASSES), with_geometry)
        per_class[name] = s["per_class"]
        cells = " | ".join(f"{v:.1f}%" for v in s["per_source"].mean(0))
        print(f"| {name} | {cells} | {s['per_source'].mean():.1f}% | "
              f"{' / '.join(f'{v:.1f}' for v in s['per_source'].mean(1))} |")
        if ensemble:
            print(f"| {name}, the {len(seeds)} seeds' classifiers averaged | "
                  + " | ".join(f"{v:.1f}%" for v in s["ensemble"]) + f" | {s['ensemble'].mean():.1f}% | |")
    augment.POSE_BONES = 0.0
    print("\n| letter | " + " | ".join(per_class) + " |")
    print("|---|" + "---|" * len(per_class))
    for c, name in enumerate(LETTERS):
        print(f"| {name} | " + " | ".join(f"{100 * p[c]:.0f}%" for p in per_class.values()) + " |")


if __name__ == "__main__":
    main()
