"""asl-bench: accuracy, agreement, latency, throughput, size and memory of a checkpoint and its ONNX files."""
from __future__ import annotations

import os
import shlex
import sys

import click

from asl_edge.common.errors import UserError, cli_errors, command, say
from asl_edge.common.limits import cap_threads
from asl_edge.runtime.options import FiniteFloat

DEFAULT_RUNS = 100


@command()
@click.option("--ckpt", default=None, metavar="CKPT", help="PyTorch checkpoint from asl-train (the reference when given).")
@click.option("--onnx", "onnx", multiple=True, metavar="MODEL.onnx", help="ONNX model from asl-export; repeatable.")
@click.option("--data", "data", multiple=True, metavar="DIR",
              help="Labelled images, one subfolder per class; repeatable, each reported separately.")
@click.option("--loop", "loop_video", default=None, type=click.Path(dir_okay=False), metavar="VIDEO",
              help="Instead of --data: the whole camera loop on VIDEO (asl-run --camera VIDEO), its time per "
                   "frame stage by stage, at --loop-threads; the model is the first --onnx (default: the shipped one).")
@click.option("--loop-threads", default="1,2", show_default=True, metavar="N,N",
              help="--loop: the loop's onnxruntime threads (asl-run --threads), one run each.")
@click.option("--hand-threads", default=None, type=click.IntRange(1, 64),
              help="--loop: the hand finder on N threads, the classifier on --loop-threads, each pool spinning "
                   "as onnxruntime's do [default: as asl-run --threads plans them].")
@click.option("--max-frames", default=None, type=click.IntRange(1), help="--loop: stop after N frames.")
@click.option("--loop-overlap", is_flag=True,
              help="--loop: each run also with asl-run's --overlap (the hand finder of the next frame on its own "
                   "thread while this one is classified; the stages then overlap and no longer add up to the time).")
@click.option("--loop-hands", default=None, metavar="MODEL,MODEL",
              help="--loop: hand landmark models (full, lite, full-int8), one run each, and the "
                   "others' parity against the first [default: asl-run's for the model].")
@click.option("--threads", default=None, show_default="all cores", type=click.IntRange(1),
              help="torch.set_num_threads / onnxruntime intra_op_num_threads (capped at 4 per core).")
@click.option("--providers", default="auto", show_default=True, metavar="auto|cpu,cuda",
              help="Where to run: auto = CPU, plus CUDA where torch / onnxruntime have it.")
@click.option("--runs", default=None, type=click.IntRange(1, 10_000_000), help=f"Timed batch-1 runs [default: {DEFAULT_RUNS}].")
@click.option("--time-budget", default=None, type=FiniteFloat(0, min_open=True), metavar="SECONDS",
              help="Instead of --runs: time batch-1 runs for this long (and throughput for half as long).")
@click.option("--warmup", default=10, show_default=True, type=click.IntRange(0, 100_000), help="Untimed runs first.")
@click.option("--batch", default=16, show_default=True, type=click.IntRange(1, 4096), help="Batch size for throughput.")
@click.option("--max-images", default=300, show_default=True, type=click.IntRange(0),
              help="Images per data set, spread over classes; 0 = all.")
@click.option("--out", default="runs/bench", show_default=True, type=click.Path(file_okay=False),
              help="Writes bench.json, bench.md and plots/ here.")
@click.option("--min-agreement", default=None, type=FiniteFloat(0, 100), metavar="PCT",
              help="Fail (exit 1) when a model's top-1 agreement with the reference is below PCT.")
@click.option("--max-drop", default=None, type=FiniteFloat(0), metavar="PCT",
              help="Fail (exit 1) when a model's top-1 accuracy is more than PCT points below the reference's.")
@click.option("--hands/--no-hands", default=None, show_default="on for a model that takes landmarks",
              help="Crop each image to the hand the runtime's hand finder finds (whole image where none), as "
                   "asl-run --roi hand does; a landmark model also gets the landmarks.")
@click.option("--plots/--no-plots", default=True, show_default=True, help="PNG plots (needs matplotlib).")
@cli_errors
def main(ckpt, onnx, data, loop_video, loop_threads, hand_threads, max_frames, loop_overlap, loop_hands, threads, providers, runs, time_budget, warmup, batch,
         max_images, out, min_agreement, max_drop, hands, plots):
    """Benchmark a checkpoint and/or ONNX models on the same images, each model in its own process;
    or with --loop VIDEO, the camera loop's cost per stage.

    The reference for agreement and accuracy drop is --ckpt, or else the first --onnx."""
    from .bench import BenchConfig, run_bench

    if loop_video is not None:
        run_loop(loop_video, onnx[0] if onnx else None, loop_threads, max_frames, out, bool(data or ckpt), hand_threads,
                 loop_hands, loop_overlap)
        return
    if not data:
        raise UserError("give --data DIR (labelled images), or --loop VIDEO")

    if runs is not None and time_budget is not None:
        raise UserError("give --runs or --time-budget, not both")
    if time_budget is None and runs is None:
        runs = DEFAULT_RUNS
    threads = cap_threads(threads) or os.cpu_count() or 1
    cfg = BenchConfig(ckpt=ckpt, onnx=list(onnx), data=list(data), threads=threads, providers=providers, runs=runs,
                      time_budget=time_budget, warmup=warmup, batch=batch, max_images=max_images, out=out,
                      min_agreement=min_agreement, max_drop=max_drop, plots=plots, hands=hands,
                      command=shlex.join(["asl-bench", *sys.argv[1:]]))
    raise SystemExit(run_bench(cfg))


def run_loop(video, model, threads_text, max_frames, out, other_options, hand_threads=None, hands_text=None,
             overlap=False):
    from asl_edge.runtime.hands import LANDMARK_MODELS

    from .loop import loop_report, write_loop

    if other_options:
        raise UserError("--loop measures the camera loop on a video: give it without --data or --ckpt")
    try:
        threads_list = [int(t) for t in threads_text.split(",") if t.strip()]
    except ValueError:
        threads_list = []
    if not threads_list or any(not 1 <= t <= 64 for t in threads_list):
        raise UserError(f"--loop-threads {threads_text!r}: give thread counts from 1 to 64, like 1,2")
    hand_models = [h.strip() for h in hands_text.split(",") if h.strip()] if hands_text else [None]
    unknown = [h for h in hand_models if h is not None and h not in LANDMARK_MODELS]
    if not hand_models or unknown:
        raise UserError(f"--loop-hands {hands_text!r}: give hand models from {', '.join(LANDMARK_MODELS)}, like full,full-int8")
    report = loop_report(model, video, threads_list, max_frames, hand_models,
                         hand_threads=hand_threads, overlaps=(False, True) if overlap else (False,))
    for line in write_loop(out, report).splitlines():
        say(line)


if __name__ == "__main__":
    main()
