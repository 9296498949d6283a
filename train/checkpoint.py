"""Checkpoints: torch.save of tensors and plain types only, written atomically,
loaded with weights_only=True so a stranger's file cannot run code."""
from __future__ import annotations

import logging

from pathlib import Path

import torch

from asl_edge.runtime.contract import ModelContract
from asl_edge.common.errors import UserError, first_line
from asl_edge.common.fileio import atomic_write

from .models import build_model
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
        checkpoint_contract(ckpt)
        if not isinstance(ckpt.get("config", {}), dict) or not isinstance(ckpt["model_state_dict"], dict):
            raise UserError("its config or weights are not mappings")
        int(ckpt["epoch"])
        check_fields(ckpt)
    except (UserError, TypeError, ValueError) as e:
        raise UserError(f"{path}: unreadable asl-edge checkpoint, from another version? ({e}); "
                        "retrain it, or use the asl-edge version that wrote it") from None
    return ckpt


def _is_list_of(value, kind) -> bool:
    return isinstance(value, list) and all(isinstance(v, kind) and not isinstance(v, bool) for v in value)


def check_fields(ckpt: dict) -> None:
    """The fields that resume, export and the benchmarks read, checked for their shapes (a checkpoint
    edited by hand or written by another tool fails here, in one line, not later in a traceback)."""
    config, split = ckpt.get("config", {}), ckpt.get("split", {})
    if not isinstance(split, dict):
        raise UserError("its split is not a mapping")
    for key, kind in (("val_files", str), ("val_labels", int)):
        if split.get(key) is not None and not _is_list_of(split[key], kind):
            raise UserError(f"split.{key} is not a list of {kind.__name__}")
    if split.get("val_files") is not None and split.get("val_labels") is not None \
            and len(split["val_files"]) != len(split["val_labels"]):
        raise UserError("split.val_files and split.val_labels differ in length")
    for key in ("data", "val_data"):
        if config.get(key) is not None and not _is_list_of(config[key], str):
            raise UserError(f"config.{key} is not a list of paths")
    for key in ("epochs", "batch_size", "seed"):
        value = config.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise UserError(f"config.{key} is not a whole number >= 0")
    if int(ckpt["epoch"]) < 0:
        raise UserError("its epoch is negative")


def checkpoint_contract(ckpt: dict) -> ModelContract:
    return ModelContract.from_dict(ckpt["contract"])


def model_from_checkpoint(ckpt: dict):
    """Rebuild the network of a checkpoint (no pretrained download: weights come from the file)."""
    contract = checkpoint_contract(ckpt)
    model = build_model(ckpt["arch"], contract.num_classes, weights="none", input_size=contract.input_size,
                        landmarks=contract.landmarks)
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
