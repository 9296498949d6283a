"""A run's images: every --data source scanned, subsampled and given its hand boxes, then split into
train and val (frame blocks, a left-out source, --val-data, or a resumed run's own split)."""
from __future__ import annotations

import collections
import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asl_edge.common.fileio import atomic_write
from asl_edge.runtime.contract import KAGGLE_CLASSES

from . import data as D
from .hand_boxes import fill_hand_boxes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunData:
    train: list
    val: list
    split_method: str


def subsample(samples, max_per_class):
    """Evenly spaced picks per (source, class): a bounded subset that still spans each video."""
    if not max_per_class:
        return samples
    groups = {}
    for s in samples:
        groups.setdefault((s.source, s.label), []).append(s)
    out = []
    for key in sorted(groups):
        g = groups[key]
        idx = np.linspace(0, len(g) - 1, min(max_per_class, len(g))).round().astype(int)
        out += [g[i] for i in sorted(set(idx))]
    return out


def _hand_boxes(cfg, samples, label):
    if not cfg.hand_boxes:
        return samples
    cache = Path(cfg.cache_dir) if cfg.cache_dir else D.CACHE_ROOT
    return fill_hand_boxes(samples, cache / "hand_boxes", label=label)[0]


def load_run_data(cfg, classes, resume_ckpt) -> RunData:
    samples = []
    for i, src in enumerate(cfg.data):
        found, report = D.scan_source(src, classes, source_index=i)
        found = _hand_boxes(cfg, subsample(found, cfg.max_per_class), f"source {i}: ")
        counts = D.class_counts(found, range(len(found)), classes)
        log.info(f"source {i}: {report.root}: {len(found)} images, {sum(1 for v in counts.values() if v)} classes")
        samples += found
    val_samples = []
    for j, src in enumerate(cfg.val_data):
        found, _ = D.scan_source(src, classes, source_index=len(cfg.data) + j)
        val_samples += _hand_boxes(cfg, subsample(found, cfg.max_per_class), f"val source {j}: ")
    if resume_ckpt is not None and resume_ckpt.get("split", {}).get("val_files") is not None:
        val_set = set(resume_ckpt["split"]["val_files"])
        train = [s for s in samples if s.path not in val_set]
        val = [s for s in samples if s.path in val_set] + val_samples
        method = resume_ckpt["split"].get("method", "resumed")
    elif val_samples:
        train, val, method = samples, val_samples, "val-data"
    else:
        left_out = [s for s in samples if s.source == cfg.val_source]
        samples = [s for s in samples if s.source != cfg.val_source]
        if cfg.val_fraction > 0:
            tr, va = D.split_samples(samples, cfg.val_fraction, cfg.seed, random_split=cfg.random_split)
            train, val = [samples[i] for i in tr], [samples[i] for i in va]
            method = "random" if cfg.random_split else "frame-blocks"
        else:
            train, val, method = samples, [], "none"
        if cfg.val_source is not None:
            val += left_out
            method = f"val-source {cfg.val_source} + {method} of the others"
    present = {s.label for s in train}
    missing = [c for k, c in enumerate(classes) if k not in present]
    if missing:
        log.warning(f"warning: no training images for class(es) {', '.join(missing)}; the model will never predict them")
    log.info(f"split ({method}): {len(train)} train, {len(val)} val")
    return RunData(train, val, method)


def write_manifest(path: Path, classes, data: RunData):
    """split.csv: every image of the run, its split, class and source."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["split", "class", "source", "path"])
    for name, ss in (("train", data.train), ("val", data.val)):
        for s in ss:
            w.writerow([name, classes[s.label], s.source, s.path])
    atomic_write(path, lambda tmp: Path(tmp).write_text(buf.getvalue(), encoding="utf-8", errors="surrogateescape"))


def in_source_vs_left_out(by_source: dict, val_samples, val_source) -> dict:
    """With --val-source: val accuracy pooled over the trained sources, and on the left-out one."""
    if val_source is None or val_source not in by_source:
        return {}
    counts = collections.Counter(s.source for s in val_samples)
    seen = sum(counts[k] for k in by_source if k != val_source)
    inside = sum(acc * counts[k] for k, acc in by_source.items() if k != val_source) / seen if seen else float("nan")
    return {"val_acc_in_source": inside, "val_acc_left_out": by_source[val_source]}


def source_with_hands(path, index: int, max_per_class: int, check_images: bool = False) -> tuple[list, dict]:
    """One source as asl-train draws it (any classes of the Kaggle layout, up to max_per_class images per
    class, 0 = all), with the hand finder's boxes and landmarks -> (samples, counts). For the studies."""
    samples, _ = D.scan_source(path, KAGGLE_CLASSES, source_index=index, check_images=check_images,
                               strict_classes=False)
    return fill_hand_boxes(subsample(samples, max_per_class), D.CACHE_ROOT / "hand_boxes", label=f"{path}: ")
