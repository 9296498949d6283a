"""Held-out folders from a training run's split.csv, for asl-bench / asl-run:
OUT/source<k>/<CLASS>/<links to the val images> (+ the source's boxes.csv), one per source.

    python -m asl_edge.benchmarks.heldout runs/default/split.csv --out runs/heldout
    asl-bench --onnx runs/default/best.int8.onnx --data runs/heldout/source1
"""
from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import click

from asl_edge.common.errors import command, say


@command()
@click.argument("split_csv", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False))
def main(split_csv, out):
    out = Path(out)
    rows = [r for r in csv.DictReader(open(split_csv)) if r["split"] == "val"]
    for r in rows:
        src = Path(r["path"])
        d = out / f"source{r['source']}" / r["class"]
        d.mkdir(parents=True, exist_ok=True)
        link = d / src.name
        if not link.exists():
            os.symlink(src.resolve(), link)
        boxes = src.parent.parent / "boxes.csv"  # beside the class folders
        if boxes.is_file() and not (out / f"source{r['source']}" / "boxes.csv").exists():
            shutil.copy(boxes, out / f"source{r['source']}" / "boxes.csv")
    for d in sorted(out.iterdir()):
        say(f"{d}: {sum(1 for _ in d.rglob('*') if _.is_symlink())} images")


if __name__ == "__main__":
    main()
