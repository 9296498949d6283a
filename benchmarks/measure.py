"""Timing and memory helpers for the worker processes (numpy only: ONNX workers must not need torch)."""
from __future__ import annotations

import resource
import sys
import time

import numpy as np


def peak_rss_mb() -> float:
    """This process's peak resident set size so far. On Linux it is VmHWM: ru_maxrss survives
    fork+exec, so a worker would report at least its parent's size (asl-bench's parent holds
    torch and the images). Elsewhere ru_maxrss (KiB on Linux, bytes on macOS)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class Feeds:
    """Images with their landmark rows (a landmark model's two inputs), sliced together like an array."""

    def __init__(self, images, landmarks):
        self.images, self.landmarks = images, landmarks

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return Feeds(self.images[index], self.landmarks[index])


def tile(inputs, n: int):
    """The first n of inputs repeated (an array, or Feeds)."""
    if isinstance(inputs, Feeds):
        return Feeds(tile(inputs.images, n), tile(inputs.landmarks, n))
    reps = -(-n // len(inputs))
    return np.ascontiguousarray(np.concatenate([inputs] * reps)[:n])


def iter_chunks(npy_path, chunk: int):
    """Read a saved batch chunk by chunk; a fresh memmap each time and copy out, so the whole
    file never stays mapped and the image array does not inflate the model's peak RSS."""
    n = len(np.load(npy_path, mmap_mode="r"))
    for i in range(0, n, chunk):
        m = np.load(npy_path, mmap_mode="r")
        x = np.array(m[i:i + chunk])
        del m
        yield x


def summarize_ms(samples_s) -> dict:
    """Seconds per run -> milliseconds: percentiles (numpy's linear interpolation, so monotone), mean, spread."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1000.0
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"runs": int(ms.size), "p50": float(p50), "p90": float(p90), "p99": float(p99),
            "mean": float(ms.mean()), "std": float(ms.std()), "min": float(ms.min()), "max": float(ms.max())}


def time_runs(fn, inputs, warmup: int, runs: int | None, time_budget: float | None, min_runs: int = 5) -> list:
    """Call fn(inputs[i % len]) `warmup` times untimed, then `runs` times (or until `time_budget`
    seconds have passed, at least min_runs); returns the seconds of each timed call."""
    for i in range(warmup):
        fn(inputs[i % len(inputs)])
    times, start, i = [], time.perf_counter(), 0
    while True:
        if runs is not None and i >= runs:
            break
        if runs is None and i >= min_runs and time.perf_counter() - start >= time_budget:
            break
        x = inputs[i % len(inputs)]
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
        i += 1
    return times


def latency(fn, images: np.ndarray, warmup: int, runs: int | None, time_budget: float | None) -> dict:
    """Batch-1 latency over real images (cycled), warm-up excluded."""
    singles = [images[i:i + 1] for i in range(len(images))]
    times = time_runs(fn, singles, warmup, runs, time_budget)
    return dict(summarize_ms(times), warmup=warmup, samples=[round(t * 1000.0, 4) for t in times])


def throughput(fn, images: np.ndarray, batch: int, runs: int | None, time_budget: float | None) -> dict:
    """Images per second at a fixed batch size (images tiled up to `batch`); one warm-up batch.
    With --runs N it times about as many images as the latency test (at least 3 batches);
    with a time budget it spends half the budget."""
    x = tile(images, batch)
    n_batches = max(3, -(-runs // batch)) if runs is not None else None
    budget = None if time_budget is None else time_budget / 2
    times = time_runs(fn, [x], 1, n_batches, budget, min_runs=2)
    total = float(sum(times))
    return {"batch": batch, "batches": len(times), "seconds": total,
            "img_per_s": batch * len(times) / total if total > 0 else None}
