"""Reading torch files a stranger may have made: weights_only=True (the file cannot run code), and
formats torch would misreport (safetensors, TorchScript, ONNX) named in one line."""
from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import torch

from asl_edge.common.errors import UserError


def safe_torch_load(path, what: str, hint: str):
    """torch.load with weights_only=True (a stranger's file cannot run code); a missing or
    unreadable file becomes one line naming `what` and `hint`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}{hint}")
    kind = foreign_format(path)
    if kind:
        raise UserError(f"cannot load {what} {path}: it is {kind}, not a file torch.save wrote "
                        f"(asl-edge reads the .ckpt files asl-train writes){hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"cannot load {what} {path}: not a readable torch file, or it holds more than "
                        f"tensors and plain types ({refusal_reason(e)}); refused without running it{hint}") from None


def foreign_format(path) -> str | None:
    """What a file is when it is a known format torch.load would misreport (its errors then name a missing
    package or a C++ check): safetensors, a TorchScript archive, ONNX. None otherwise."""

    with open(path, "rb") as f:
        head = f.read(4096)
    size = Path(path).stat().st_size
    if len(head) >= 10 and head[8:9] == b"{":
        n = struct.unpack("<Q", head[:8])[0]
        if 8 + n <= size:
            try:
                with open(path, "rb") as f:
                    f.seek(8)
                    json.loads(f.read(min(n, 100_000_000)))
                return "a safetensors file"
            except ValueError:
                pass
    if zipfile.is_zipfile(path):
        try:
            names = zipfile.ZipFile(path).namelist()
        except (zipfile.BadZipFile, OSError):
            return None
        if any("/code/" in n or n.endswith("constants.pkl") for n in names):
            return "a TorchScript archive (torch.jit.save)"
    if path.suffix.lower() == ".onnx":
        return "an ONNX file"
    return None


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
