"""Progress of long work: a tqdm bar on a terminal; where stderr is not one (a log file, CI, nohup), a
logged line every so often with the count, the rate and the time left, so a silent job is never a mystery."""
from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger(__name__)

LOG_EVERY_S = 30.0


class LoggedProgress:
    """The part of tqdm's interface the project uses (iterate, update, set_postfix, close), as log lines."""

    def __init__(self, iterable=None, total=None, desc: str = "", unit: str = "it", every_s: float = LOG_EVERY_S):
        self.iterable, self.desc, self.unit, self.every_s = iterable, desc, unit, every_s
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.n, self.postfix = 0, ""
        self.start = self.last = time.monotonic()

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update()
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_postfix(self, **values):
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def update(self, n: int = 1):
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            log.info(self.line(now))

    def line(self, now: float) -> str:
        elapsed = now - self.start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        left = ""
        if self.total and rate > 0:
            left = f", {tqdm.format_interval((self.total - self.n) / rate)} left"
        extra = f", {self.postfix}" if self.postfix else ""
        return f"{self.desc}: {done} {self.unit} ({rate:.1f} {self.unit}/s{left}{extra})"

    def close(self):
        pass


def progress(iterable=None, *, total=None, desc: str, unit: str = "it"):
    """tqdm on a terminal, LoggedProgress elsewhere."""
    if sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False)
    return LoggedProgress(iterable, total=total, desc=desc, unit=unit)
