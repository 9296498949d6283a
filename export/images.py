"""Real images for parity checks and INT8 calibration, stratified over classes."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from asl_edge.runtime.errors import UserError
from asl_edge.train import data as D


def stratified(samples, count, seed=0):
    """Up to `count` samples spread evenly over classes (round-robin over shuffled classes)."""
    rng = np.random.default_rng(seed)
    by_class = {}
    for s in samples:
        by_class.setdefault(s.label, []).append(s)
    for v in by_class.values():
        rng.shuffle(v)
    out, i = [], 0
    while len(out) < count and any(i < len(v) for v in by_class.values()):
        out += [v[i] for v in by_class.values() if i < len(v)]
        i += 1
    return out[:count]


def folder_samples(path, classes, log=print):
    samples, _ = D.scan_source(path, classes, log=log)
    return samples


def checkpoint_val_samples(ckpt) -> list:
    """The held-out images named in the checkpoint's split (only those still on disk)."""
    split = ckpt.get("split", {})
    files, labels = split.get("val_files") or [], split.get("val_labels") or []
    return [D.Sample(f, int(l)) for f, l in zip(files, labels) if Path(f).is_file()]


def checkpoint_train_samples(ckpt, classes, log=print) -> list:
    """Training images of the checkpoint's run (its --data minus its val files), if on disk."""
    cfg = ckpt.get("config", {})
    val = set(ckpt.get("split", {}).get("val_files") or [])
    out = []
    for src in cfg.get("data", []):
        try:
            found, _ = D.scan_source(src, classes, check_images=False, log=lambda *_: None)
        except UserError:
            continue
        out += [s for s in found if s.path not in val]
    return out


def load_input_batch(samples, contract):
    """Decode (cropped to the hand box where the sample has one) and preprocess into the batch a
    model with this contract takes: float32 NCHW, or uint8 NHWC when its input_format is uint8."""
    return contract.preprocess_batch([D.load_image(s) for s in samples])


def load_batch(samples, contract):
    """Normalised float32 NCHW, whatever the contract's input_format."""
    return load_input_batch(samples, contract.with_input_format("float"))


def load_uint8_batch(samples, contract):
    """Cropped and resized uint8 NHWC RGB: the input of an input_format="uint8" model."""
    return load_input_batch(samples, contract.with_input_format("uint8"))
