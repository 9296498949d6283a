"""Checkpoints: torch.save of tensors and plain types only, written atomically,
loaded with weights_only=True so a stranger's file cannot run code."""
from __future__ import annotations

from pathlib import Path

import torch

from asl_edge.runtime.contract import ModelContract
from asl_edge.common.errors import UserError, first_line
from asl_edge.common.fileio import atomic_write, file_sha256  # noqa: F401 (re-exported)

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
        raise UserError(f"cannot load {what} {path}: not a readable torch file, or it holds more than "
                        f"tensors and plain types ({refusal_reason(e)}); refused without running it{hint}") from None


# torch's refusal text wraps the reason in advice to load with weights_only=False, which would run
# the file's code: the one thing never to suggest. Keep only the sentence that says what was wrong.
_ADVICE = ("weights_only", "weights only load failed", "check the documentation", "trusted source",
           "add_safe_globals", "safe_globals")


def refusal_reason(e: BaseException) -> str:
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    for line in lines:
        line = line.split("Unpickler error:")[-1].strip()
        line = line.split(" Please use")[0].split(" You can use")[0]
        if line and not any(a in line.lower() for a in _ADVICE):
            return line[:200]
    return type(e).__name__


def load_checkpoint(path) -> dict:
    ckpt = safe_torch_load(path, "checkpoint", "")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or any(k not in ckpt for k in REQUIRED):
        raise UserError(f"{path} is not an asl-edge checkpoint (made by asl-train)")
    try:  # a checkpoint of another version fails here in one line, not later in a traceback
        checkpoint_contract(ckpt)
        if not isinstance(ckpt.get("config", {}), dict) or not isinstance(ckpt["model_state_dict"], dict):
            raise UserError("its config or weights are not mappings")
        int(ckpt["epoch"])
    except (UserError, TypeError, ValueError) as e:
        raise UserError(f"{path}: unreadable asl-edge checkpoint, from another version? ({e}); "
                        "retrain it, or use the asl-edge version that wrote it") from None
    return ckpt


def checkpoint_contract(ckpt: dict) -> ModelContract:
    return ModelContract.from_dict(ckpt["contract"])


def model_from_checkpoint(ckpt: dict):
    """Rebuild the network of a checkpoint (no pretrained download: weights come from the file)."""
    from .models import build_model

    contract = checkpoint_contract(ckpt)
    model = build_model(ckpt["arch"], contract.num_classes, weights="none", input_size=contract.input_size,
                        landmarks=contract.landmarks)
    try:
        model.load_state_dict(ckpt["model_state_dict"])
    except RuntimeError as e:
        raise UserError(f"checkpoint weights do not fit arch {ckpt['arch']}: {first_line(e)}") from None
    return model.eval(), contract
