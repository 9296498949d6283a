"""Real images for parity checks and INT8 calibration, stratified over classes."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from asl_edge.common.errors import UserError
from asl_edge.train import data as D

log = logging.getLogger(__name__)


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


def folder_samples(path, classes):
    samples, _ = D.scan_source(path, classes)
    return samples


def checkpoint_val_samples(ckpt) -> list:
    """The held-out images named in the checkpoint's split (only those still on disk)."""
    split = ckpt.get("split", {})
    files, labels = split.get("val_files") or [], split.get("val_labels") or []
    return [D.Sample(f, int(l)) for f, l in zip(files, labels) if Path(f).is_file()]


def checkpoint_train_samples(ckpt, classes) -> list:
    """Training images of the checkpoint's run (its --data minus its val files), if on disk."""
    cfg = ckpt.get("config", {})
    val = set(ckpt.get("split", {}).get("val_files") or [])
    out = []
    for src in cfg.get("data", []):
        try:
            found, _ = D.scan_source(src, classes, check_images=False)
        except UserError:
            continue
        out += [s for s in found if s.path not in val]
    return out


def with_hands(samples, ckpt) -> list:
    """For a model trained on the hand finder's crops (or its landmarks): the samples with the
    finder's box and landmark row, as training and asl-run see them (cached per source folder)."""
    from asl_edge.runtime.contract import ModelContract

    landmarks = bool(ModelContract.from_dict(ckpt["contract"]).landmarks)
    if not samples or not (landmarks or ckpt.get("config", {}).get("hand_boxes")):
        return samples
    from asl_edge.train.hand_boxes import fill_hand_boxes

    groups = {}
    for i, s in enumerate(samples):  # one cache file per class root, as asl-train keeps them
        groups.setdefault(str(Path(s.path).parent.parent), []).append(i)
    out = list(samples)
    for root, idx in groups.items():
        found, _ = fill_hand_boxes([samples[i] for i in idx], D.CACHE_ROOT / "hand_boxes")
        for i, s in zip(idx, found):
            out[i] = s
    log.info(f"hand finder: {sum(s.hand is not None for s in out)} of {len(out)} images with a hand")
    return out


def model_inputs(samples, contract) -> dict:
    """The feeds of a model with this contract: {"image": batch} plus {"landmarks": (N, width)} when
    it takes landmarks (rows of samples with no hand are all zeros)."""
    from asl_edge.runtime.landmarks import stack

    from .feeds import INPUT_NAME, LANDMARKS_NAME

    feeds = {INPUT_NAME: load_input_batch(samples, contract)}
    if contract.landmarks:
        feeds[LANDMARKS_NAME] = stack([s.hand for s in samples], len(samples), contract.landmarks)
    return feeds


def load_input_batch(samples, contract):
    """Decode (cropped to the hand box where the sample has one) and preprocess into the batch a
    model with this contract takes: float32 NCHW, or uint8 NHWC when its input_format is uint8."""
    return contract.preprocess_batch([D.load_image(s, contract.crop_margin) for s in samples])


def load_batch(samples, contract):
    """Normalised float32 NCHW, whatever the contract's input_format."""
    return load_input_batch(samples, contract.with_input_format("float"))


def load_uint8_batch(samples, contract):
    """Cropped and resized uint8 NHWC RGB: the input of an input_format="uint8" model."""
    return load_input_batch(samples, contract.with_input_format("uint8"))
