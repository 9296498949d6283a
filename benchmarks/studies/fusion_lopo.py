"""Image, landmarks or both, leave-one-source-out: which recipe recognises signers it never saw?

    python -m asl_edge.benchmarks.studies.fusion_lopo \\
        --data ../shared/data/asl_alphabet/train --data ../shared/data/roboflow_asl_letters/train \\
        --data ../shared/data/t32rahman_closeup --data ../shared/data/longhongvo23_handcrops

Every image goes through the runtime's hand finder once (train/hand_boxes.py: the box asl-run
would crop and the 21 landmarks; cached). Image features: EfficientNet-Lite0's ImageNet backbone
(frozen) on the hand crop, one pooled 1280-vector per image, through asl-train's own feature cache.
Landmark features: runtime/landmarks.py. Each recipe trains only a head on these (full batch, Adam,
fixed epochs and weight decay chosen before looking at any left-out score, seed 0), on all sources but
one, with every source given the same total weight, and is scored on the one left out (its own
classes). In-source accuracy: the same head on a frame-block 20% split of the training sources.

Recipes (rows):
- image, 2 sources: the shipped model's data (Kaggle + Roboflow) on hand crops;
- image: all sources but the left-out one;
- landmarks: the landmark MLP alone (images with no hand found count as wrong);
- concat fusion: a landmark MLP's features concatenated to the image features before one linear
  layer, trained jointly on one loss, landmarks dropped on 25% of training rows so it also works
  without a hand;
- late fusion: asl-train's FusionHead: an image classifier and a landmark classifier, each on its
  own loss, log-probabilities summed (the landmark term only where a hand was found);
- "+ pose": the same, with asl-train's pose augmentation of the landmark rows every epoch
  (train/augment.py: the hand turned, re-estimated and normalised again).
A fine-tuned backbone (the shipped recipe) is better than these frozen features on every row; this
study compares recipes cheaply and fairly, it does not measure the shipped model.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

from asl_edge.common.errors import UserError, cli_errors
from asl_edge.runtime.landmarks import LANDMARK_FEATURES, PRESENCE

EPOCHS, LR, WEIGHT_DECAY, DROP_LANDMARKS = 300, 3e-3, 1e-4, 0.25


def load_sources(paths, per_class, log):
    """-> list of dicts: name, samples (with box and hand), image features (N, 1280), landmarks (N, 66)."""
    import torch

    from asl_edge.runtime.contract import KAGGLE_CLASSES, ModelContract
    from asl_edge.runtime.landmarks import stack
    from asl_edge.train.features import FeatureStore
    from asl_edge.train.run_data import source_with_hands
    from asl_edge.train.models import NORMALIZATION, build_model, set_trainable, split_frozen

    mean, std = NORMALIZATION["efficientnet_lite0"]
    contract = ModelContract(mean=mean, std=std)
    model = build_model("efficientnet_lite0", len(KAGGLE_CLASSES), "imagenet")
    set_trainable(model, 0)
    prefix, _ = split_frozen(model)
    store = FeatureStore(prefix, "efficientnet_lite0", contract, torch.device("cpu"))
    out = []
    for i, path in enumerate(paths):
        samples, counts = source_with_hands(path, i, per_class, check_images=True)
        feats = store.eval_features(samples)[0].float().numpy()
        name = Path(path).parent.name if Path(path).name == "train" else Path(path).name
        out.append({"name": name, "samples": samples, "x": feats,
                    "lm": stack([s.hand for s in samples], len(samples)),
                    "y": np.array([s.label for s in samples]), "found": counts["found"]})
    return out


def ConcatHead(feature_dim, classes, hidden=128):  # noqa: N802 (a module factory)
    """The rejected design: landmark MLP features concatenated to the image features, one layer."""
    import torch
    from torch import nn

    class Concat(nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = nn.Sequential(nn.Linear(LANDMARK_FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
            self.linear = nn.Linear(feature_dim + hidden, classes)

        def forward(self, x, lm):
            return self.linear(torch.cat([x, self.mlp(lm) * lm[:, PRESENCE:PRESENCE + 1]], 1))

    return Concat()


def fit(kind, x, lm, y, w, classes, seed=0, poses=False):
    """Train one head; returns predict(x, lm) -> log-probabilities (N, classes)."""
    import torch

    from asl_edge.train.augment import pose
    from asl_edge.train.models import FusionHead

    torch.manual_seed(seed)
    nn = torch.nn
    if kind == "image":
        net = nn.Linear(x.shape[1], classes)
        call = lambda n, a, b: n(a)  # noqa: E731
    elif kind == "landmarks":
        net = FusionHead(x.shape[1], classes).landmarks  # the shipped landmark MLP alone
        call = lambda n, a, b: n(b)  # noqa: E731
    elif kind == "concat":
        net = ConcatHead(x.shape[1], classes)
        call = lambda n, a, b: n(a, b)  # noqa: E731
    else:
        net = FusionHead(x.shape[1], classes)
        call = lambda n, a, b: n(a, b)  # noqa: E731
    xt, lt, yt, wt = (torch.from_numpy(np.ascontiguousarray(v)) for v in (x, lm, y, w.astype(np.float32)))
    if kind == "landmarks":  # no hand, nothing to learn from
        keep = lt[:, PRESENCE] > 0
        xt, lt, yt, wt = xt[keep], lt[keep], yt[keep], wt[keep]
    opt = torch.optim.Adam(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    g = torch.Generator().manual_seed(seed)
    turn = np.random.default_rng(seed)
    net.train()
    for _ in range(EPOCHS):
        b = torch.from_numpy(pose(lt.numpy(), turn)) if poses else lt
        if kind == "concat":
            b = lt * (torch.rand(len(lt), 1, generator=g) >= DROP_LANDMARKS)
        opt.zero_grad()
        if kind == "fusion":
            per_row = net.losses(xt, b, yt)
        else:
            per_row = torch.nn.functional.cross_entropy(call(net, xt, b), yt, reduction="none")
        loss = (per_row * wt).sum() / wt.sum()
        loss.backward()
        opt.step()

    net.eval()

    def predict(a, b):
        with torch.no_grad():
            out = torch.log_softmax(call(net, torch.from_numpy(a), torch.from_numpy(b)), 1).numpy()
        if kind == "landmarks":
            out[b[:, PRESENCE] == 0] = -np.log(classes)  # no hand: no answer (uniform), scored wrong below
        return out
    return predict


def balanced_weights(parts):
    """Each source's rows share the same total weight."""
    return np.concatenate([np.full(len(p["y"]), 1.0 / len(p["y"])) for p in parts]) * len(parts)


def score(logp, part, classes_of):
    """Top-1 over the source's own classes (Roboflow & co. have no del/nothing/space)."""
    allowed = np.full(logp.shape[1], -np.inf)
    allowed[classes_of] = 0
    pred = (logp + allowed).argmax(1)
    right = pred == part["y"]
    if part.get("no_hand_wrong") is not None:
        right &= part["no_hand_wrong"]
    return float(right.mean())


def split_in_source(part, seed=0):
    from asl_edge.train.data import split_samples

    tr, va = split_samples(part["samples"], 0.2, seed)
    return [_take(part, tr), _take(part, va)]


def _take(part, idx):
    idx = np.asarray(idx, int)
    return {**part, "samples": [part["samples"][i] for i in idx], "x": part["x"][idx], "lm": part["lm"][idx],
            "y": part["y"][idx]}


TWO = ("asl_alphabet", "roboflow_asl_letters")  # the shipped model's sources
RECIPES = ("image, 2 sources", "image", "landmarks", "landmarks + pose", "concat fusion", "late fusion",
           "late fusion + pose")


def run_recipe(recipe, train_parts, test_parts, classes):
    """Train the recipe's head(s) once; top-1 on each test part (None when the recipe has no data)."""
    kind = {"image, 2 sources": "image", "image": "image", "landmarks": "landmarks", "concat fusion": "concat",
            "late fusion": "fusion"}[recipe.removesuffix(" + pose")]
    if recipe == "image, 2 sources":
        train_parts = [p for p in train_parts if p["name"] in TWO]
        if not train_parts:
            return [None] * len(test_parts)
    x = np.concatenate([p["x"] for p in train_parts])
    lm = np.concatenate([p["lm"] for p in train_parts])
    y = np.concatenate([p["y"] for p in train_parts])
    w = balanced_weights(train_parts)
    predict = fit(kind, x, lm, y, w, classes, poses=recipe.endswith(" + pose"))
    return [_accuracy(recipe, predict(t["x"], t["lm"]), t, y) for t in test_parts]


def _accuracy(recipe, logp, test_part, y):
    own = sorted(set(test_part["y"].tolist()) & set(y.tolist()))  # classes it could have learnt
    keep = np.isin(test_part["y"], own)
    test_part, logp = _take(test_part, np.flatnonzero(keep)), logp[keep]
    part = dict(test_part, no_hand_wrong=(test_part["lm"][:, PRESENCE] > 0) if recipe.startswith("landmarks") else None)
    return score(logp, part, own)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", "sources", multiple=True, required=True, type=click.Path(), help="A source (repeat, >= 2).")
@click.option("--per-class", default=0, show_default=True, type=click.IntRange(0), help="At most N per class and source (0: all).")
@cli_errors
def main(sources, per_class):
    """Leave-one-source-out top-1 of image-only, landmark-only and fused heads."""
    if len(sources) < 2:
        raise UserError("give at least two --data sources")
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    parts = load_sources(sources, per_class, log)
    classes = 29
    rows = {}
    for recipe in RECIPES:
        for k, held in enumerate(parts):
            rest = [p for j, p in enumerate(parts) if j != k]
            (left,) = run_recipe(recipe, rest, [held], classes)
            # in-source: train on the training blocks of the sources it trains on, score their held-out blocks
            splits = [split_in_source(p) for p in rest if recipe != "image, 2 sources" or p["name"] in TWO]
            tr = [s[0] for s in splits]
            accs = run_recipe(recipe, tr, [s[1] for s in splits], classes)
            accs = [a for a in accs if a is not None]
            n = [len(s[1]["y"]) for s in splits]
            inside = sum(a * m for a, m in zip(accs, n)) / sum(n) if accs else None
            rows[(recipe, held["name"])] = (left, inside)
            log(f"{recipe} / {held['name']}: left-out {left}, in-source {inside}")
    names = [p["name"] for p in parts]
    print("| recipe | " + " | ".join(f"{n} (left out)" for n in names) + " | mean left-out | mean in-source | gap |")
    print("|---|" + "---|" * (len(names) + 3))
    for recipe in RECIPES:
        cells, lefts, insides = [], [], []
        for n in names:
            left, inside = rows[(recipe, n)]
            cells.append("—" if left is None else f"{100 * left:.1f}%")
            if left is not None:
                lefts.append(left)
                insides.append(inside)
        ml, mi = (np.mean(lefts), np.mean(insides)) if lefts else (np.nan, np.nan)
        print(f"| {recipe} | " + " | ".join(cells) + f" | {100 * ml:.1f}% | {100 * mi:.1f}% | {100 * (mi - ml):+.1f} |")
    print("\nhands found: " + ", ".join(f"{p['name']} {p['found']}/{len(p['y'])}" for p in parts))


if __name__ == "__main__":
    main()
