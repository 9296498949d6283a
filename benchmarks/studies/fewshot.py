"""Few-shot personal calibration curve: how much do k images per sign of one person help on
other photos of that same person, and what does it cost on everyone else?

Protocol (all seeded):
1. base model: trained on --base-data (other people), split by source photo; its held-out
   photos measure "everyone else".
2. the person: --person (one signer's frames, e.g. Kaggle's). Split by frame blocks; the
   held-out blocks (and --person-test, e.g. Kaggle's official test images) measure the person.
   Calibration images come from the other blocks: by default k *consecutive* frames per sign,
   like one burst of asl-capture (--pick spread: k frames spread over the whole pool instead).
3. for each k: "adapt" = asl-train --init BASE --data my_hand (head only, seconds);
   "retrain" = the base recipe on base train photos + my_hand (my_hand weighted).

    python -m asl_edge.benchmarks.studies.fewshot --base-data roboflow_asl_letters/train \\
        --person asl_alphabet/train --person-test asl_alphabet/test --shots 0,5,20 --out runs/fewshot
"""
from __future__ import annotations

import csv
import json
import os
import random
import shlex
import shutil
import time
from pathlib import Path

import click
import numpy as np
import torch

from asl_edge.runtime.contract import KAGGLE_CLASSES
from asl_edge.common.fileio import atomic_write



def _link_folder(root: Path, samples, classes, boxes_from: Path | None = None):
    """A Kaggle-layout folder of symlinks to the chosen samples (no image copies)."""
    if root.exists():
        shutil.rmtree(root)
    for s in samples:
        d = root / classes[s.label]
        d.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.abspath(s.path), d / Path(s.path).name)
    if boxes_from is not None and (boxes_from / "boxes.csv").is_file():
        shutil.copy(boxes_from / "boxes.csv", root / "boxes.csv")
    return root


@torch.no_grad()
def evaluate(ckpt_path, folder, cache_dir, letters_only=False) -> dict:
    """Top-1 of a checkpoint on a folder: frozen prefix features from the shared cache, then the
    checkpoint's own trainable stages and head."""
    from asl_edge.train import data as D
    from asl_edge.train.checkpoint import load_checkpoint, model_from_checkpoint
    from asl_edge.train.features import FeatureStore
    from asl_edge.train.models import set_trainable, split_frozen

    ckpt = load_checkpoint(ckpt_path)
    model, contract = model_from_checkpoint(ckpt)
    set_trainable(model, int(ckpt["config"].get("unfreeze", 0)))
    prefix, suffix = split_frozen(model)
    samples, _ = D.scan_source(folder, contract.classes, check_images=False)
    if letters_only:
        samples = [s for s in samples if len(contract.classes[s.label]) == 1]
    store = FeatureStore(prefix, ckpt["arch"], contract, torch.device("cpu"), cache_dir, workers=2)
    feats = store.eval_features(samples)[0]
    suffix.eval()
    pred = torch.cat([suffix(feats[i:i + 64].float()).argmax(1) for i in range(0, len(feats), 64)])
    labels = torch.tensor([s.label for s in samples])
    return {"n": len(samples), "top1": float((pred == labels).float().mean())}


def _train(*args):
    """One asl-train run in this process, its options parsed by asl-train itself."""
    from asl_edge.train.cli import config_from_args
    from asl_edge.train.engine import Trainer

    return Trainer(config_from_args(args)).fit()


@click.command()
@click.option("--base-data", required=True, help="Other people's photos (the base model's training source).")
@click.option("--person", required=True, help="One person's frames, Kaggle layout.")
@click.option("--person-test", default=None, help="More images of the same person (evaluation only).")
@click.option("--shots", default="0,5,20", show_default=True)
@click.option("--recipe", default="--arch efficientnet_lite0 --epochs 15", show_default=True,
              help="asl-train options of the base model and the retrain.")
@click.option("--pick", type=click.Choice(["burst", "spread"]), default="burst", show_default=True,
              help="burst: k consecutive frames per sign (one asl-capture burst); spread: k frames evenly over the pool.")
@click.option("--adapt-epochs", default=20, show_default=True, type=int)
@click.option("--mine-weight", default=4.0, show_default=True, type=float, help="Loss weight of my_hand in the retrain.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--cache-dir", default=None)
@click.option("--out", default="runs/fewshot", type=click.Path(file_okay=False))
def main(base_data, person, person_test, shots, recipe, pick, adapt_epochs, mine_weight, seed, cache_dir, out):
    from asl_edge.train import data as D

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    classes = list(KAGGLE_CLASSES)
    rec = ["--arch", "efficientnet_lite0", *shlex.split(recipe)]  # a later --arch in the recipe wins
    common = ["--workers", "2", "--seed", seed] + (["--cache-dir", cache_dir] if cache_dir else [])

    # 1. base model on other people, held-out photos kept aside
    t0 = time.perf_counter()
    previous = out / "fewshot.json"
    if (out / "base" / "best.ckpt").is_file() and previous.is_file() and json.loads(previous.read_text())["recipe"] == recipe:
        base = {"best": str(out / "base" / "best.ckpt")}  # same recipe and seed: reuse the base model
        base_s = json.loads(previous.read_text())["base_seconds"]
        print(f"fewshot: reusing {base['best']}")
    else:
        base = _train("--data", base_data, "--out", out / "base", "--val-fraction", 0.2, *rec, *common)
        base_s = time.perf_counter() - t0
    rows = list(csv.DictReader(open(out / "base" / "split.csv")))
    base_root = D.find_class_root(base_data, classes)
    base_samples, _ = D.scan_source(base_data, classes, check_images=False)
    by_path = {s.path: s for s in base_samples}
    others_train = _link_folder(out / "others_train", [by_path[r["path"]] for r in rows if r["split"] == "train"],
                                classes, base_root)
    others_test = _link_folder(out / "others_test", [by_path[r["path"]] for r in rows if r["split"] == "val"],
                               classes, base_root)

    # 2. the person: held-out frame blocks for testing, the rest is the calibration pool
    person_samples, _ = D.scan_source(person, classes, check_images=False)
    tr, va = D.split_samples(person_samples, 0.2, seed)
    person_heldout = _link_folder(out / "person_test", [person_samples[i] for i in va], classes)
    pool = {}
    for i in tr:
        pool.setdefault(person_samples[i].label, []).append(person_samples[i])
    for lab in pool:
        pool[lab].sort(key=lambda s: D.group_key(s.path))
    rng = random.Random(seed)

    def measure(ckpt):
        r = {"person_heldout": evaluate(ckpt, person_heldout, cache_dir),
             "person_heldout_letters": evaluate(ckpt, person_heldout, cache_dir, letters_only=True),
             "others_heldout": evaluate(ckpt, others_test, cache_dir)}
        if person_test:
            r["person_test"] = evaluate(ckpt, person_test, cache_dir)
        return r

    results = {"recipe": recipe, "pick": pick, "base_seconds": base_s, "runs": []}
    for k in [int(x) for x in shots.split(",")]:
        if k == 0:
            results["runs"].append({"shots": 0, "method": "base", "seconds": base_s, **measure(base["best"])})
            continue
        burst = []
        for lab, frames in sorted(pool.items()):
            if pick == "spread":
                burst += [frames[i] for i in np.linspace(0, len(frames) - 1, min(k, len(frames))).round().astype(int)]
                continue
            start = rng.randrange(0, max(1, len(frames) - k + 1))
            burst += frames[start:start + k]
        mine = _link_folder(out / f"my_hand_{k}", burst, classes)
        t0 = time.perf_counter()
        adapted = _train("--data", mine, "--init", base["best"], "--out", out / f"adapt_{k}", "--val-fraction", 0,
                         "--epochs", adapt_epochs, *common)
        results["runs"].append({"shots": k, "method": "adapt (--init base, head only)",
                                "seconds": time.perf_counter() - t0, **measure(adapted["best"])})
        t0 = time.perf_counter()
        retrained = _train("--data", others_train, "--data", mine, "--source-weights", f"1,{mine_weight:g}",
                           "--out", out / f"retrain_{k}", "--val-fraction", 0, *rec, *common)
        results["runs"].append({"shots": k, "method": f"retrain (others + mine x{mine_weight:g})",
                                "seconds": time.perf_counter() - t0, **measure(retrained["best"])})
        print(f"fewshot: {k} shots done")

    text = json.dumps(results, indent=1)
    atomic_write(out / "fewshot.json", lambda tmp: Path(tmp).write_text(text))
    cols = ["person_heldout", "person_heldout_letters"] + (["person_test"] if person_test else []) + ["others_heldout"]
    lines = ["| images per sign | method | " + " | ".join(cols) + " | train s |", "|---" * (len(cols) + 3) + "|"]
    for r in results["runs"]:
        lines.append(f"| {r['shots']} | {r['method']} | "
                     + " | ".join(f"{100 * r[c]['top1']:.1f}% ({r[c]['n']})" for c in cols) + f" | {r['seconds']:.0f} |")
    md = "\n".join(lines) + "\n"
    atomic_write(out / "fewshot.md", lambda tmp: Path(tmp).write_text(md))
    print(md)


if __name__ == "__main__":
    main()
