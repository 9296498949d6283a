"""One model, one process: `python -m asl_edge.benchmarks.worker --kind onnx|torch --model PATH
--images A.npy [--images B.npy] --out DIR ...` writes DIR/result.json and DIR/logits_<i>.npy.

asl-bench starts one of these per model and provider so that peak RSS, load time and thread
pools of one model never mix with another's. The ONNX path imports onnxruntime only (no torch)."""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from asl_edge.common.errors import UserError, first_line
from asl_edge.common.fileio import json_text

from .measure import Feeds, iter_chunks, latency, peak_rss_mb, throughput

# Latency cycles through at most this many real images: enough variety, bounded memory.
LATENCY_IMAGES = 64


class Skipped(Exception):
    """The asked-for provider or device is not usable on this machine."""


def load_onnx(path, provider, threads):
    from asl_edge.runtime.model import OnnxClassifier

    want = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}[provider]
    clf = OnnxClassifier(path, provider=provider, threads=threads)
    # onnxruntime silently falls back to CPU when the CUDA provider cannot start (e.g. no cuDNN).
    if clf.providers[0] != want:
        raise Skipped(f"{want} not usable here (the session runs on {clf.providers[0]})")
    def run(x):
        return clf.run(x.images, x.landmarks) if isinstance(x, Feeds) else clf.run(x)

    return run, {"providers": clf.providers, "intra_op_num_threads": threads, "inter_op_num_threads": 1}


def load_torch(path, device, threads):
    import torch

    from asl_edge.train.checkpoint import load_checkpoint, model_from_checkpoint

    if device == "cuda" and not torch.cuda.is_available():
        raise Skipped("torch has no usable CUDA device here")
    from asl_edge.runtime.landmarks import for_width

    model, contract = model_from_checkpoint(load_checkpoint(path))
    model = model.to(device)

    @torch.inference_mode()
    def run(x):
        # .cpu() waits for the GPU, so the timings include the whole forward pass.
        if isinstance(x, Feeds):
            rows = torch.from_numpy(for_width(x.landmarks, contract.landmarks)).to(device)
            return model(torch.from_numpy(x.images).to(device), rows).float().cpu().numpy()
        return model(torch.from_numpy(x).to(device)).float().cpu().numpy()

    info = {"torch_num_threads": torch.get_num_threads(), "torch_num_interop_threads": torch.get_num_interop_threads(),
            "device": device}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return run, info


def import_runtime(kind, threads):
    """Import the inference library (timed apart from model loading)."""
    if kind == "onnx":
        import onnxruntime  # noqa: F401
        return
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)  # like ORT's inter_op_num_threads=1 in OnnxClassifier
    except RuntimeError:
        pass
    import asl_edge.train.checkpoint  # noqa: F401


def measure(args) -> dict:
    res = {"kind": args.kind, "model": args.model, "provider": args.provider, "threads": args.threads,
           "pid": os.getpid()}
    t0 = time.perf_counter()
    import_runtime(args.kind, args.threads)
    res["import_ms"] = 1000 * (time.perf_counter() - t0)
    res["rss_before_load_mb"] = peak_rss_mb()

    if args.landmarks and len(args.landmarks) != len(args.images):
        raise UserError("give one --landmarks file per --images file")

    def inputs(i, x, start=0):  # a chunk of data set i, with its landmark rows when the model takes them
        return Feeds(x, np.array(np.load(args.landmarks[i], mmap_mode="r")[start:start + len(x)])) if args.landmarks else x

    first = inputs(0, np.array(np.load(args.images[0], mmap_mode="r")[:1]))
    t0 = time.perf_counter()
    loader = load_onnx if args.kind == "onnx" else load_torch
    run, info = loader(args.model, args.provider, args.threads)
    t1 = time.perf_counter()
    run(first)
    t2 = time.perf_counter()
    res.update(info, load_ms=1000 * (t1 - t0), first_run_ms=1000 * (t2 - t1), first_inference_ms=1000 * (t2 - t0))

    out = Path(args.out)
    for i, npy in enumerate(args.images):
        logits = np.concatenate([run(inputs(i, x, k * args.batch))
                                 for k, x in enumerate(iter_chunks(npy, args.batch))]).astype(np.float32)
        np.save(out / f"logits_{i}.npy", logits)

    lat_images = inputs(0, np.array(np.load(args.images[0], mmap_mode="r")[:LATENCY_IMAGES]))
    res["latency_ms"] = latency(run, lat_images, args.warmup, args.runs, args.time_budget)
    res["throughput"] = throughput(run, lat_images, args.batch, args.runs, args.time_budget)
    res["peak_rss_mb"] = peak_rss_mb()
    res["torch_imported"] = "torch" in sys.modules
    res["status"] = "ok"
    return res


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m asl_edge.benchmarks.worker", description=__doc__)
    p.add_argument("--kind", choices=["onnx", "torch"], required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--provider", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--images", action="append", required=True, help="float32 (or uint8) batch .npy; repeat per data set")
    p.add_argument("--landmarks", action="append", default=[],
                   help="float32 (N, 66) landmark rows .npy per --images file, for a model that takes them")
    p.add_argument("--runs", type=int, default=None)
    p.add_argument("--time-budget", type=float, default=None)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if (args.runs is None) == (args.time_budget is None):
        p.error("give exactly one of --runs and --time-budget")
    return args


def main(argv=None):
    args = parse(argv)
    try:
        res = measure(args)
    except Skipped as e:
        res = {"status": "skipped", "reason": str(e)}
    except UserError as e:
        res = {"status": "failed", "reason": str(e)}
    except Exception as e:  # report it in the table; the traceback goes to the worker's stderr log
        traceback.print_exc()
        res = {"status": "failed", "reason": f"{type(e).__name__}: {first_line(e)}"}
    res.setdefault("peak_rss_mb", peak_rss_mb())
    path = Path(args.out) / "result.json"
    path.write_text(json_text(res))


if __name__ == "__main__":
    main()
