"""How should a landmark model's landmark classifier be trained? Measured on fine-tuned
leave-one-source-out fold models, without training their image path again.

    python -m asl_edge.benchmarks.studies.landmark_stage --fold runs/lopo/fusion-lo0 --fold runs/lopo/fusion-lo1 \\
        --fold runs/lopo/fusion-lo2 --fold runs/lopo/fusion-lo3

Each --fold is an `asl-train --landmarks --val-source K` run (last.ckpt, split.csv), whose image path
never saw source K. FusionHead's two classifiers share no weight, so its landmark classifier can be
swapped for one trained another way on the same training rows (split.csv, the run's source weights)
and the fused answer scored on source K's rows (the run's own val rows of K, all 29 classes, as
asl-train reports them). Rows:
- as trained: the fold's own landmark classifier (trained with the image, 6 epochs of batch 32);
- stage: train/landmark_fit.py (full batch, to convergence), without and with the pose augmentation.
Then the speller's view on letters (20 per letter and source, seeded): a temperature fitted on all
folds' left-out rows (and per fold on the other three), ECE, and precision / coverage at --threshold.
The image path's logits are computed once per fold (the slow part: a few minutes on 2 cores).
With --landmark-weight W (repeat): the fold's own classifiers fused as log p_image + W log p_landmarks,
per W, and W chosen on the other folds' left-out sources for each fold (nested: no fold's score
picks its own W).
"""
from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import click
import numpy as np

from asl_edge.common.errors import UserError, cli_errors
from asl_edge.runtime.landmarks import PRESENCE

ROWS = ("as trained", "stage", "stage + pose")


def fold_data(run: Path, log, flip: bool = False) -> dict:
    """One fold: image-branch logits, its own landmark logits, landmark rows and labels on its left-out
    source's val rows; and its training rows' landmarks, labels and source weights. With `flip`, also
    the image branch's logits on the mirrored crops ("image_flip")."""
    import torch

    from asl_edge.runtime.landmarks import stack
    from asl_edge.train.checkpoint import load_checkpoint, model_from_checkpoint
    from asl_edge.train.data import load_image
    from asl_edge.train.run_data import source_with_hands
    from asl_edge.train.presets import EvalPreset

    ckpt = load_checkpoint(run / "last.ckpt")
    cfg = ckpt["config"]
    if not cfg.get("landmarks") or cfg.get("val_source") is None:
        raise UserError(f"{run}: not an asl-train --landmarks --val-source run")
    model, contract = model_from_checkpoint(ckpt)
    by_path = {}
    for i, path in enumerate(cfg["data"]):
        # the images the run itself drew (asl-train's subsample): the hand finder need not see the rest
        samples, _ = source_with_hands(path, i, cfg.get("max_per_class") or 0)
        by_path.update({os.path.realpath(s.path): s for s in samples})
    with open(run / "split.csv", newline="") as f:
        train = [by_path[os.path.realpath(r["path"])] for r in csv.DictReader(f) if r["split"] == "train"]
    held = [by_path[os.path.realpath(p)] for p in ckpt["split"]["val_files"]]
    held = [s for s in held if s.source == cfg["val_source"]]
    weights = cfg.get("source_weights") or []
    pre = EvalPreset(contract)
    image, own, mirrored = [], [], []
    rows = stack([s.hand for s in held], len(held), contract.landmarks)
    with torch.no_grad():
        for b in range(0, len(held), 64):
            x = torch.stack([pre(load_image(s)) for s in held[b:b + 64]])
            a, lm = model.head.branches(model.backbone(x), torch.from_numpy(rows[b:b + 64]))
            image.append(a.numpy())
            own.append(lm.numpy())
            if flip:
                mirrored.append(model.head.image(model.backbone(torch.flip(x, dims=[3]))).numpy())
    log(f"{run}: {len(held)} left-out rows (source {cfg['val_source']}), {len(train)} training rows")
    return {"image": np.concatenate(image), "own": np.concatenate(own), "rows": rows,
            "y": np.array([s.label for s in held]), "seed": int(cfg.get("seed", 0)),
            **({"image_flip": np.concatenate(mirrored)} if flip else {}),
            "train_rows": stack([s.hand for s in train], len(train), contract.landmarks), "train_y": np.array([s.label for s in train]),
            "train_w": np.array([float(weights[s.source]) if s.source < len(weights) else 1.0 for s in train],
                                np.float32)}


def landmark_logits(fold: dict, row: str) -> np.ndarray:
    import torch

    from asl_edge.train.landmark_fit import fit_landmark_classifier
    from asl_edge.train.models import FusionHead

    if row == "as trained":
        return fold["own"]
    head = FusionHead(1, fold["image"].shape[1], landmark_dim=fold["rows"].shape[1])
    fit_landmark_classifier(head.landmarks, torch.from_numpy(fold["train_rows"]), torch.from_numpy(fold["train_y"]),
                            torch.from_numpy(fold["train_w"]), row.endswith("pose"), fold["seed"])
    with torch.no_grad():
        return head.landmarks(torch.from_numpy(fold["rows"])).numpy()


def letters_sample(y, per_letter=20, seed=0):
    rng = np.random.default_rng(seed)
    keep = [rng.choice(np.flatnonzero(y == c), min(per_letter, int((y == c).sum())), replace=False)
            for c in range(26) if (y == c).any()]
    return np.sort(np.concatenate(keep))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--fold", "folds", multiple=True, required=True, type=click.Path(exists=True, file_okay=False),
              help="An asl-train --landmarks --val-source K run folder (repeat).")
@click.option("--threshold", "thresholds", multiple=True, type=float, default=(0.5, 0.7, 0.9), show_default=True)
@click.option("--landmark-weight", "weights", multiple=True, type=click.FloatRange(0), help="Also sweep this weight "
              "of the landmark term (repeat; 1 is the shipped sum).")
@click.option("--flip", is_flag=True, help="Also the image classifier averaged over each crop and its mirror image.")
@cli_errors
def main(folds, thresholds, weights, flip):
    """Left-out top-1 and calibration of a landmark model's landmark classifier, trained three ways."""
    from asl_edge.benchmarks.studies.calibrate import ece, fit_temperature, log_softmax, speller_view

    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    data = [fold_data(Path(f), log, flip) for f in folds]
    names = [Path(f).name for f in folds]
    print("| landmark classifier | " + " | ".join(names) + " | mean left-out | letters top-1 | T | ECE before -> after | "
          + " | ".join(f"precision / coverage at {t:g}" for t in thresholds) + " |")
    print("|---|" + "---|" * (len(names) + 4 + len(thresholds)))
    gated = []  # the speller when it also needs the two classifiers to agree (ModelContract.agreement)
    for row in ROWS:
        accs, letters, labels, agreeing = left_out_scores([(d, landmark_logits(d, row)) for d in data])
        z, y, agree = np.concatenate(letters), np.concatenate(labels), np.concatenate(agreeing)
        t = fit_temperature(z, y)
        before, after = np.exp(log_softmax(z, 1.0)), np.exp(log_softmax(z, t))
        views = [speller_view(after, y, th) for th in thresholds]
        gated.append((row, float(agree.mean()), [speller_view(after[agree], y[agree], th) for th in thresholds],
                      len(y)))
        print(f"| {row} | " + " | ".join(f"{100 * a:.1f}%" for a in accs) + f" | {100 * np.mean(accs):.1f}% | "
              f"{100 * (z.argmax(1) == y).mean():.1f}% | {t:.2f} | {100 * ece(before, y):.1f}% -> {100 * ece(after, y):.1f}% | "
              + " | ".join("—" if p is None else f"{100 * p:.1f}% / {100 * c:.1f}%" for p, c in views) + " |")
        per_fold = [fit_temperature(np.concatenate(letters[:k] + letters[k + 1:]), np.concatenate(labels[:k] + labels[k + 1:]))
                    for k in range(len(letters))] if len(letters) > 1 else []
        if per_fold:
            log(f"{row}: T fitted on the other folds: " + ", ".join(f"{n} {v:.2f}" for n, v in zip(names, per_fold)))
        last = (letters, labels)
    print("\nThe speller accepting only frames whose image and landmark classifiers agree (or no hand), same "
          "letters and temperature; coverage of all letters:\n")
    print("| landmark classifier | frames agreeing | " + " | ".join(f"precision / coverage at {t:g}" for t in thresholds)
          + " |")
    print("|---|---|" + "---|" * len(thresholds))
    for row, share, views, n in gated:
        print(f"| {row} | {100 * share:.1f}% | " + " | ".join(
            "—" if p is None else f"{100 * p:.1f}% / {100 * c * share:.1f}%" for p, c in views) + " |")
    _per_letter(*last, names)
    if weights:
        _weight_sweep(data, names, weights)
    if flip:
        _flip_rows(data, names, thresholds)


def left_out_scores(folds) -> tuple:
    """[(fold, its landmark logits)] -> per fold: fused top-1 on all its left-out rows, and on the
    speller's letter sample (letters_sample) the fused letter scores, labels, and whether the two
    classifiers agree (or no hand was found)."""
    accs, letters, labels, agreeing = [], [], [], []
    for d, lm in folds:
        fused = fused_scores(d, lm)
        accs.append(float((fused.argmax(1) == d["y"]).mean()))
        keep = letters_sample(d["y"])
        letters.append(fused[keep][:, :26])
        labels.append(d["y"][keep])
        agreeing.append(((d["image"].argmax(1) == lm.argmax(1)) | (d["rows"][:, PRESENCE] == 0))[keep])
    return accs, letters, labels, agreeing


def fused_scores(fold: dict, landmark_logits: np.ndarray, weight: float = 1.0) -> np.ndarray:
    """FusionHead's output on the fold's left-out rows: log p_image + weight x log p_landmarks where a hand was found."""
    from asl_edge.benchmarks.studies.calibrate import log_softmax

    present = fold["rows"][:, PRESENCE:PRESENCE + 1]
    return log_softmax(fold["image"], 1.0) + weight * present * log_softmax(landmark_logits, 1.0)


def fused_accuracy(fold: dict, weight: float) -> float:
    """Top-1 of the fold's own two classifiers on its left-out rows, landmark term times `weight`."""
    return float((fused_scores(fold, fold["own"], weight).argmax(1) == fold["y"]).mean())


def nested_weights(acc: np.ndarray, weights) -> list:
    """acc (weights, folds) -> per fold the weight with the best mean over the *other* folds."""
    return [weights[int(np.argmax(np.delete(acc, k, axis=1).mean(1)))] for k in range(acc.shape[1])]


def _weight_sweep(data, names, weights):
    weights = sorted(set(weights) | {1.0})
    acc = np.array([[fused_accuracy(d, w) for d in data] for w in weights])
    print("\nThe fold's own classifiers, landmark term weighted (left-out top-1, all classes):\n")
    print("| landmark weight | " + " | ".join(names) + " | mean left-out |")
    print("|---|" + "---|" * (len(names) + 1))
    for w, row in zip(weights, acc):
        print(f"| {w:g} | " + " | ".join(f"{100 * a:.1f}%" for a in row) + f" | {100 * row.mean():.1f}% |")
    if len(data) > 1:
        chosen = nested_weights(acc, weights)
        cells = [acc[weights.index(w), k] for k, w in enumerate(chosen)]
        print("| **chosen on the other folds** | " + " | ".join(f"{100 * a:.1f}% (w {w:g})" for a, w in zip(cells, chosen))
              + f" | **{100 * np.mean(cells):.1f}%** |")


def mirror_averaged(fold: dict) -> dict:
    """The fold with its image logits replaced by the mean log-probabilities of each crop and its mirror."""
    from asl_edge.benchmarks.studies.calibrate import log_softmax

    return {**fold, "image": (log_softmax(fold["image"], 1.0) + log_softmax(fold["image_flip"], 1.0)) / 2}


def _flip_rows(data, names, thresholds):
    """Left-out top-1 (all classes) and the gated speller on letters, the fold's own classifiers, with the
    image classifier on the crop alone and averaged with its mirror image (temperature refitted for each)."""
    from asl_edge.benchmarks.studies.calibrate import fit_temperature, log_softmax, speller_view

    print("\nThe fold's own classifiers, the image classifier on the crop and on the crop + its mirror image:\n")
    print("| image classifier | " + " | ".join(names) + " | mean left-out | T | "
          + " | ".join(f"gated precision / coverage at {t:g}" for t in thresholds) + " |")
    print("|---|" + "---|" * (len(names) + 2 + len(thresholds)))
    for name, folds in (("crop", data), ("crop + mirror", [mirror_averaged(d) for d in data])):
        accs, z, y, agree = left_out_scores([(d, d["own"]) for d in folds])
        z, y, agree = np.concatenate(z), np.concatenate(y), np.concatenate(agree)
        t = fit_temperature(z, y)
        p = np.exp(log_softmax(z, t))
        views = [speller_view(p[agree], y[agree], th) for th in thresholds]
        print(f"| {name} | " + " | ".join(f"{100 * a:.1f}%" for a in accs) + f" | {100 * np.mean(accs):.1f}% | {t:.2f} | "
              + " | ".join("—" if pr is None else f"{100 * pr:.1f}% / {100 * c * agree.mean():.1f}%" for pr, c in views)
              + " |")


def _per_letter(letters, labels, names):
    """Top-1 per letter and fold of the last row (the recipe asl-train uses)."""
    from asl_edge.runtime.contract import KAGGLE_CLASSES

    print(f"\nPer letter, {ROWS[-1]} (20 per letter and left-out source):\n")
    print("| letter | " + " | ".join(names) + " | mean |")
    print("|---|" + "---|" * (len(names) + 1))
    for c in range(26):
        cells = [float((z.argmax(1)[y == c] == c).mean()) if (y == c).any() else float("nan") for z, y in zip(letters, labels)]
        print(f"| {KAGGLE_CLASSES[c]} | " + " | ".join(f"{100 * v:.0f}%" for v in cells) + f" | {100 * np.nanmean(cells):.0f}% |")


if __name__ == "__main__":
    main()
