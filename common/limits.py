"""Resource limits shared by every command: how many threads, how big an image or a zip may be.

Each limit has a default that real data never reaches and an environment variable (or option)
to raise it, so a hostile or broken file fails in one line instead of eating the machine."""
from __future__ import annotations

import logging
import math
import os

from .errors import UserError

log = logging.getLogger(__name__)

# onnxruntime / torch threads beyond a few per core only add memory and contention
# (--threads 100000 took 16 GB and was OOM-killed).
THREADS_PER_CORE = 4
# Decoded pixels per image: 50 MP is 150 MB as RGB; Kaggle frames are 0.04 MP.
MAX_PIXELS_ENV = "ASL_EDGE_MAX_MEGAPIXELS"
DEFAULT_MAX_MEGAPIXELS = 50.0
MIN_IMAGE_SIDE = 8  # smaller images carry no sign (and broke resizing)
# Zip extraction: total bytes and the expansion ratio of any member (a zip bomb expands 1000x).
MAX_UNZIP_ENV = "ASL_EDGE_MAX_UNZIP_GB"
DEFAULT_MAX_UNZIP_GB = 20.0
MAX_ZIP_RATIO = 100.0
# No limit (megapixels, gigabytes, seconds) needs more: past it a number is a typo or a probe.
LIMIT_CEILING = 1e9


def max_threads() -> int:
    return THREADS_PER_CORE * (os.cpu_count() or 1)


def cap_threads(threads) -> int | None:
    """--threads above THREADS_PER_CORE x cores is capped, with a note."""
    if threads is None:
        return None
    cap = max_threads()
    if threads > cap:
        log.info(f"note: --threads {threads} capped at {cap} ({THREADS_PER_CORE} per core on {os.cpu_count()} cores)")
        return cap
    return threads


def env_number(name: str, default: float) -> float:
    """A positive, finite number from the environment; the default when unset, and a one-line
    error when it is set to anything else (nan, inf, 0, -1, text), not a silent fallback."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return float(default)
    try:
        v = float(raw)
    except ValueError:
        v = float("nan")
    if not (math.isfinite(v) and 0 < v <= LIMIT_CEILING):
        raise UserError(f"${name}={raw!r}: must be a positive, finite number (unset it for the default {default:g})")
    return v


def max_pixels() -> int:
    return int(env_number(MAX_PIXELS_ENV, DEFAULT_MAX_MEGAPIXELS) * 1e6)


def set_max_megapixels(mp):
    """Set by --max-megapixels; kept in the environment so DataLoader workers see it too."""
    if mp is not None:
        os.environ[MAX_PIXELS_ENV] = repr(float(mp))


def max_file_bytes() -> int:
    """An encoded image never needs more than an uncompressed 4-channel 16-bit copy of itself."""
    return max(64 << 20, 8 * max_pixels())


def max_unzip_bytes() -> int:
    return int(env_number(MAX_UNZIP_ENV, DEFAULT_MAX_UNZIP_GB) * (1 << 30))
