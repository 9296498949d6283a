"""Checkpoints: torch.save of tensors and plain types only, written atomically,
loaded with weights_only=True so a stranger's file cannot run code."""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from asl_edge.runtime.contract import ModelContract
from asl_edge.common.errors import UserError, first_line, printable
from asl_edge.common.fileio import atomic_write

from .config import NUMBERS, is_number, number_problem, source_weights_problem
from .models import ARCHS, build_model
from .torch_files import safe_torch_load

log = logging.getLogger(__name__)

FORMAT = "asl-edge-checkpoint/1"
REQUIRED = ("epoch", "model_state_dict", "optimizer_state_dict", "train_loss", "arch", "contract")


def save_checkpoint(state: dict, path) -> Path:
    state = dict(state, format=FORMAT)
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path) -> dict:
    ckpt = safe_torch_load(path, "checkpoint", "")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or any(k not in ckpt for k in REQUIRED):
        raise UserError(f"{path} is not an asl-edge checkpoint (made by asl-train)")
    try:  # a checkpoint of another version fails here in one line, not later in a traceback
        check_fields(ckpt)
    except UserError as e:
        raise UserError(f"{path}: unreadable asl-edge checkpoint, from another version? ({e}); "
                        "retrain it, or use the asl-edge version that wrote it") from None
    # a diverged training's weights export to a model that answers nan, and resume to more nan
    if not all(torch.isfinite(t).all() for t in ckpt["model_state_dict"].values() if t.is_floating_point()):
        raise UserError(f"{path}: its model weights are not all finite numbers (nan or inf: the training that "
                        "wrote it diverged); retrain it, e.g. with a lower --lr")
    return ckpt


def _is_list_of(value, kind) -> bool:
    return isinstance(value, list) and all(isinstance(v, kind) and not isinstance(v, bool) for v in value)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_plain(value, depth=2) -> bool:
    """A mapping of plain values (numbers, text, None, such mappings): what an epoch's history entry holds,
    and what export writes into the model's metadata as JSON."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and (v is None or isinstance(v, (str, int, float)) or (depth > 1 and _is_plain(v, depth - 1)))
        for k, v in value.items())


def check_fields(ckpt: dict) -> None:
    """The fields that resume, export and the benchmarks read, checked for their shapes (a checkpoint
    edited by hand or written by another tool fails here, in one line, not later in a traceback)."""
    config, split, weights = ckpt.get("config", {}), ckpt.get("split", {}), ckpt.get("model_state_dict")
    if not isinstance(split, dict):
        raise UserError("its split is not a mapping")
    if not all(isinstance(v, dict) for v in (config, weights, ckpt.get("optimizer_state_dict"))):
        raise UserError("its config, weights or optimizer state are not mappings")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
        raise UserError("its weights are not named tensors")
    if not isinstance(ckpt.get("arch"), str) or ckpt["arch"] not in ARCHS:
        raise UserError(f"its arch {printable(repr(ckpt.get('arch'))[:60])} is not one this asl-edge builds "
                        f"({', '.join(ARCHS)})")
    checkpoint_contract(ckpt)
    epoch = ckpt.get("epoch")
    if is_number(epoch) and epoch < 0:
        raise UserError("its epoch is negative")
    if not _is_count(epoch):
        raise UserError("its epoch is not a whole number")
    if not is_number(ckpt.get("train_loss")):
        raise UserError("its train_loss is not a number")
    # what a resumed run carries on with, optional (older runs lack them)
    if not _is_count(ckpt.get("best_epoch", 0)) or ckpt.get("best_epoch", 0) > epoch:
        raise UserError(f"its best_epoch is not a whole number from 0 to its epoch {epoch}")
    best = ckpt.get("best_val_acc", 0.0)
    if not is_number(best) or best != best:  # nan: no later epoch would ever beat it
        raise UserError("its best_val_acc is not a number")
    history = ckpt.get("history", [])
    if not isinstance(history, list) or not all(_is_plain(h) and is_number(h.get("seconds")) for h in history):
        raise UserError("its history is not a list of epochs (mappings of numbers, with their seconds)")
    for key, kind in (("val_files", str), ("val_labels", int)):
        if split.get(key) is not None and not _is_list_of(split[key], kind):
            raise UserError(f"split.{key} is not a list of {kind.__name__}")
    if split.get("val_files") is not None and split.get("val_labels") is not None \
            and len(split["val_files"]) != len(split["val_labels"]):
        raise UserError("split.val_files and split.val_labels differ in length")
    for key in ("data", "val_data"):
        if config.get(key) is not None and not _is_list_of(config[key], str):
            raise UserError(f"config.{key} is not a list of paths")
    for key in NUMBERS:  # within asl-train's own bounds: a run it accepted resumes and exports
        why = number_problem(key, config[key]) if key in config else None
        if why:
            raise UserError(f"config.{key} is not what --{key.replace('_', '-')} takes: {why}")
    if config.get("arch") is not None and (not isinstance(config["arch"], str) or config["arch"] not in ARCHS):
        raise UserError(f"config.arch {printable(repr(config['arch'])[:60])} is not one this asl-edge builds")
    sw = config.get("source_weights", [])
    if not isinstance(sw, (list, tuple)) or source_weights_problem(sw):
        raise UserError("config.source_weights is not a list of positive numbers")


def checkpoint_contract(ckpt: dict) -> ModelContract:
    return ModelContract.from_dict(ckpt["contract"])


def landmark_geometry(ckpt: dict) -> bool:
    """Whether the checkpoint's landmark classifier reads the hand's geometry (train/hand_geometry.py);
    checkpoints from before it have no such key."""
    return bool(ckpt.get("config", {}).get("landmark_geometry", False))


def model_from_checkpoint(ckpt: dict):
    """Rebuild the network of a checkpoint (no pretrained download: weights come from the file)."""
    contract = checkpoint_contract(ckpt)
    model = build_model(ckpt["arch"], contract.num_classes, weights="none", input_size=contract.input_size,
                        landmarks=contract.landmarks, landmark_geometry=landmark_geometry(ckpt))
    try:
        model.load_state_dict(ckpt["model_state_dict"])
    except RuntimeError as e:
        raise UserError(f"checkpoint weights do not fit arch {ckpt['arch']}: {first_line(e)}") from None
    return model.eval(), contract


def saved_epoch(path) -> int | None:
    """The epoch a checkpoint on disk holds, or None (missing or unreadable)."""
    try:
        return int(load_checkpoint(path)["epoch"]) if Path(path).is_file() else None
    except UserError:
        return None


def carry_best(ckpt: dict, best: Path, resume) -> None:
    """Make `best` (OUT/best.ckpt) the epoch the resumed checkpoint calls best: repairs a best.ckpt left
    stale by a kill (older versions wrote last first) and fills a new --out."""
    import shutil

    best_epoch, epoch = int(ckpt.get("best_epoch", 0)), int(ckpt["epoch"])
    if best_epoch <= 0 or saved_epoch(best) == best_epoch:
        return
    if best_epoch == epoch:
        save_checkpoint(ckpt, best)
        log.info(f"note: {best} did not hold best epoch {best_epoch}; rewrote it from {resume}")
        return
    src = Path(resume).parent / "best.ckpt"
    if saved_epoch(src) == best_epoch and src.resolve() != best.resolve():
        atomic_write(best, lambda tmp: shutil.copyfile(src, tmp))
