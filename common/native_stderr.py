"""C-level stderr (fd 2) silenced around noisy native calls, and given back before a command's last line."""
from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager

_quiet_lock = threading.Lock()
_quiet = {"depth": 0, "saved": None}


@contextmanager
def quiet_native_stderr():
    """Silence C-level stderr (libjpeg's "Corrupt JPEG data", FFmpeg probing) inside the block;
    the caller counts or reports the failure itself. Reference-counted, so overlapping blocks
    on several threads restore the real stderr exactly once, at the last exit."""
    with _quiet_lock:
        if _quiet["depth"] == 0:
            try:
                sys.stderr.flush()
                saved = os.dup(2)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
                _quiet["saved"] = saved
            except (OSError, ValueError, AttributeError):
                _quiet["saved"] = None
        _quiet["depth"] += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet["depth"] -= 1
            if _quiet["depth"] == 0 and _quiet["saved"] is not None:
                os.dup2(_quiet["saved"], 2)
                os.close(_quiet["saved"])
                _quiet["saved"] = None


def restore_native_stderr() -> None:
    """Give fd 2 back now, whatever block still silences it (a helper thread opening a stream):
    the command is about to print its last line and exit, and that line must be seen."""
    with _quiet_lock:
        if _quiet["depth"] > 0 and _quiet["saved"] is not None:
            os.dup2(_quiet["saved"], 2)
            os.close(_quiet["saved"])
            _quiet["saved"] = None  # the block's own exit then has nothing to restore
