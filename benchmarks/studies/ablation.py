"""Cross-source ablation: train the same recipe with one change at a time and report each
source's held-out accuracy (Kaggle: held-out frame blocks; Roboflow: held-out source photos),
measured the same way every time (same split, seed and epochs; figures from the last epoch,
not the best, so no run is picked on its own test set).

    python -m asl_edge.benchmarks.studies.ablation --data KAGGLE --data ROBOFLOW --source-weights 1,4 \\
        --max-per-class 100 --epochs 15 --out runs/ablation \\
        --run "none=" --run "flip=--augment flip" --run "crop=--augment crop" ...

Each --run is NAME=ASL-TRAIN-OPTIONS (options added to the common ones). Writes
OUT/ablation.json and OUT/ablation.md, and adds to them run by run (a rerun skips finished runs).
"""
from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import click

from asl_edge.common.fileio import atomic_write


def _train(common: list, extra: list, out: Path) -> dict:
    """One asl-train run in this process, its options parsed by asl-train itself."""
    from asl_edge.train.cli import config_from_args
    from asl_edge.train.engine import Trainer

    return Trainer(config_from_args(common + extra + ["--out", str(out)])).fit()


@click.command()
@click.option("--data", multiple=True, required=True)
@click.option("--source-weights", default="")
@click.option("--arch", default="efficientnet_lite0")
@click.option("--epochs", default=15, type=int)
@click.option("--max-per-class", default=0, type=int)
@click.option("--seed", default=0, type=int)
@click.option("--cache-dir", default=None)
@click.option("--run", "runs", multiple=True, required=True, metavar="NAME=OPTIONS")
@click.option("--out", default="runs/ablation", type=click.Path(file_okay=False))
def main(data, source_weights, arch, epochs, max_per_class, seed, cache_dir, runs, out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    common = [a for d in data for a in ("--data", d)] + ["--arch", arch, "--epochs", str(epochs), "--seed", str(seed),
                                                          "--max-per-class", str(max_per_class)]
    if source_weights:
        common += ["--source-weights", source_weights]
    if cache_dir:
        common += ["--cache-dir", cache_dir]
    result_file = out / "ablation.json"
    results = json.loads(result_file.read_text()) if result_file.is_file() else {"common": common, "runs": {}}
    for spec in runs:
        name, _, opts = spec.partition("=")
        if name in results["runs"]:
            continue
        t0 = time.perf_counter()
        s = _train(common, shlex.split(opts), out / name)
        wall = time.perf_counter() - t0
        hist = s["history"]
        last = hist[-1]
        info = s["feature_info"] or {}
        results["runs"][name] = {
            "options": opts, "wall_s": wall, "feature_s": info.get("seconds"),
            "epoch_s": sum(h["seconds"] for h in hist) / len(hist),
            "last": {k: last["val_acc_by_source"].get(str(k)) for k in range(len(data))},
            "best_epoch": s["best_epoch"], "val_acc_last": last["val_acc"],
        }
        text = json.dumps(results, indent=1)
        atomic_write(result_file, lambda tmp: Path(tmp).write_text(text))
        print(f"ablation: {name}: " + ", ".join(f"src{k} {v:.3f}" for k, v in results["runs"][name]["last"].items()
                                                 if v is not None) + f"  ({wall:.0f}s)")
    lines = ["| run | options | " + " | ".join(f"source {k} held-out" for k in range(len(data)))
             + " | feature pass s | epoch s | wall s |", "|---" * (len(data) + 5) + "|"]
    for name, r in results["runs"].items():
        accs = " | ".join("" if r["last"].get(str(k), r["last"].get(k)) is None
                          else f"{100 * r['last'].get(str(k), r['last'].get(k)):.1f}%" for k in range(len(data)))
        lines.append(f"| {name} | `{r['options']}` | {accs} | {r['feature_s'] or 0:.0f} | {r['epoch_s']:.1f} | {r['wall_s']:.0f} |")
    md = "\n".join(lines) + "\n"
    atomic_write(out / "ablation.md", lambda tmp: Path(tmp).write_text(md))
    print(md)


if __name__ == "__main__":
    main()
