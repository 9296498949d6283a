"""Soak test of camera mode: `asl-run --camera VIDEO --no-display` over a long video, sampling the
process's resident memory and thread count from /proc (Linux) as it goes.

    python -m asl_edge.benchmarks.studies.soak --frames 10000 [--model M.onnx] [--threads 1]

Reports RSS growth after warm-up (first --warmup frames) and the thread-count range; exits 1 when
the growth is over --max-growth-mb or the thread count moved after warm-up."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np


def write_video(path: Path, frames: int, size=(160, 120), fps=30.0) -> Path:
    """Colour blocks and noise, so predictions (and spelling) keep changing."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise SystemExit("this OpenCV cannot write MJPG .avi")
    rng = np.random.default_rng(0)
    colours = [(40, 40, 220), (40, 220, 40), (220, 40, 40), (20, 20, 20)]
    for i in range(frames):
        frame = np.empty((size[1], size[0], 3), np.uint8)
        frame[:] = colours[(i // 20) % len(colours)]
        frame[::4] = rng.integers(0, 256, frame[::4].shape, dtype=np.uint8)
        writer.write(frame)
    writer.release()
    return path


def proc_status(pid: int) -> tuple[float, int] | None:
    """(RSS in MB, threads) of a live process, from /proc/PID/status."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


def soak(video: Path, model: str | None, threads: int, warmup: int, interval: float) -> dict:
    cmd = [sys.executable, "-m", "asl_edge.runtime.cli", "--camera", str(video), "--no-display", "--json",
           "--threads", str(threads)] + (["--model", model] if model else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    frame = {"n": -1}

    def follow():  # the newest frame number, from the JSON lines
        for line in proc.stdout:
            if line.startswith("{"):
                frame["n"] = json.loads(line)["frame"]

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    samples = []
    t0 = time.perf_counter()
    while proc.poll() is None:
        st = proc_status(proc.pid)
        if st is not None and frame["n"] >= 0:
            samples.append((frame["n"], *st))
        time.sleep(interval)
    reader.join(5)
    err = proc.stderr.read()
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"asl-run failed ({proc.returncode}): {err.strip()[-500:]}")
    after = [s for s in samples if s[0] >= warmup]
    if len(after) < 2:
        raise SystemExit("too few samples after warm-up: use a longer video or a smaller --warmup")
    rss = [s[1] for s in after]
    thr = [s[2] for s in after]
    return {"frames": frame["n"] + 1, "seconds": round(seconds, 1), "samples": len(after), "warmup_frames": warmup,
            "rss_mb_after_warmup": round(rss[0], 1), "rss_mb_end": round(rss[-1], 1),
            "rss_growth_mb": round(rss[-1] - rss[0], 2), "rss_mb_min_max": [round(min(rss), 1), round(max(rss), 1)],
            "threads_min_max": [min(thr), max(thr)],
            "summary": next((l for l in err.splitlines() if l.startswith("summary:")), "")}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m asl_edge.benchmarks.studies.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=10_000)
    p.add_argument("--video", default=None, help="Use this video instead of writing one.")
    p.add_argument("--model", default=None, help="ONNX model (default: the shipped one).")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1000, help="Frames before RSS is tracked.")
    p.add_argument("--interval", type=float, default=0.25, help="Seconds between samples.")
    p.add_argument("--max-growth-mb", type=float, default=5.0)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="asl-soak-") as tmp:
        video = Path(args.video) if args.video else write_video(Path(tmp) / "soak.avi", args.frames)
        res = soak(video, args.model, args.threads, args.warmup, args.interval)
    print(json.dumps(res, indent=1))
    ok = res["rss_growth_mb"] <= args.max_growth_mb and res["threads_min_max"][0] == res["threads_min_max"][1]
    print(("PASS" if ok else "FAIL") + f": RSS growth {res['rss_growth_mb']} MB after {args.warmup} frames "
          f"(limit {args.max_growth_mb}), threads {res['threads_min_max']}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
