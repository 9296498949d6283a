"""Checkpoints: torch.save of tensors and plain types only, written atomically,
loaded with weights_only=True so a stranger's file cannot run code."""
from __future__ import annotations

from pathlib import Path

import torch

from asl_edge.runtime.contract import ModelContract
from asl_edge.runtime.errors import UserError
from asl_edge.runtime.fileio import atomic_write, file_sha256  # noqa: F401 (re-exported)

FORMAT = "asl-edge-checkpoint/1"
REQUIRED = ("epoch", "model_state_dict", "optimizer_state_dict", "train_loss", "arch", "contract")


def save_checkpoint(state: dict, path) -> Path:
    state = dict(state, format=FORMAT)
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def safe_torch_load(path, what: str, hint: str):
    """torch.load with weights_only=True (a stranger's file cannot run code); a missing or
    unreadable file becomes one line naming `what` and `hint`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}{hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        lines = [l.strip() for l in str(e).splitlines() if l.strip()]
        # torch's own text wraps the cause in advice; keep the line that says what was wrong
        at = next((i for i, l in enumerate(lines) if "Unpickler error" in l), None)
        if at is not None and lines[at].endswith("error:") and at + 1 < len(lines):
            at += 1
        why = (lines[at].split("Unpickler error:")[-1].strip() if at is not None else
               lines[0] if lines else type(e).__name__)[:200]
        raise UserError(f"cannot load {what} {path}: not a readable torch file, or it holds more than "
                        f"tensors and plain types ({why}){hint}") from None


def load_checkpoint(path) -> dict:
    ckpt = safe_torch_load(path, "checkpoint", "")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or any(k not in ckpt for k in REQUIRED):
        raise UserError(f"{path} is not an asl-edge checkpoint (made by asl-train)")
    return ckpt


def checkpoint_contract(ckpt: dict) -> ModelContract:
    return ModelContract.from_dict(ckpt["contract"])


def model_from_checkpoint(ckpt: dict):
    """Rebuild the network of a checkpoint (no pretrained download: weights come from the file)."""
    from .models import build_model

    contract = checkpoint_contract(ckpt)
    model = build_model(ckpt["arch"], contract.num_classes, weights="none", input_size=contract.input_size)
    try:
        model.load_state_dict(ckpt["model_state_dict"])
    except RuntimeError as e:
        raise UserError(f"checkpoint weights do not fit arch {ckpt['arch']}: {str(e).splitlines()[0]}") from None
    return model.eval(), contract
