"""Torch-free file helpers: atomic writes (no half-written outputs) and hashes."""
import hashlib
import os
import tempfile
from pathlib import Path

from .errors import UserError


def atomic_write(path, write_fn) -> Path:
    """write_fn(tmp_path) writes the file; it then replaces `path` in one rename."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise UserError(f"cannot write to {path.parent}: {e.strerror}") from None
    os.close(fd)
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def file_sha256(path, chunk=1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
