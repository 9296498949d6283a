"""Preprocessing inside the graph: batch-1 end-to-end time of OnnxClassifier.predict (the
contract's crop/resize, plus normalise and transpose in numpy for a float-input model, then the
onnxruntime session and softmax) for float-input vs uint8-input exports of one checkpoint.

    python -m asl_edge.benchmarks.studies.input_format --float best.onnx --uint8 u8/best.onnx \\
        --float best.int8.onnx --uint8 u8/best.int8.onnx --data asl_alphabet/train --threads 2

--float and --uint8 pair up in order (FP32 with FP32, INT8 with INT8). Images are decoded once,
up front; every timed call sees one already-decoded image. The models take turns image by image
(in a rotating order), so a load that comes and goes on the machine hits all of them alike.
torch-free: onnxruntime, numpy and OpenCV only.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import click
import numpy as np

from asl_edge.runtime.contract import IMAGE_EXTENSIONS, read_rgb
from asl_edge.common.errors import UserError, cli_errors

from ..measure import summarize_ms


def sample_images(root, count: int) -> list:
    """Up to `count` image files under root, spread round-robin over its sub-folders (classes)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"data folder not found: {root}")
    groups = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
            groups.setdefault(p.parent, []).append(p)
    if not groups:
        raise UserError(f"no images under {root}")
    out, i = [], 0
    while len(out) < count and any(i < len(v) for v in groups.values()):
        out += [v[i] for v in groups.values() if i < len(v)]
        i += 1
    return out[:count]


def _precision(clf) -> str:
    try:
        return json.loads(clf.metadata.get("asl_edge.export", "{}")).get("precision", "?").upper()
    except ValueError:
        return "?"


def load_pairs(floats, uint8s, threads):
    from asl_edge.runtime.model import OnnxClassifier

    if not floats or len(floats) != len(uint8s):
        raise UserError("give --float and --uint8 in pairs (FP32 with FP32, INT8 with INT8)")
    pairs = []
    for f, u in zip(floats, uint8s):
        a = OnnxClassifier(f, provider="cpu", threads=threads, )
        b = OnnxClassifier(u, provider="cpu", threads=threads, )
        for clf, want in ((a, "float"), (b, "uint8")):
            if clf.contract.input_format != want:
                raise UserError(f"{clf.path} has input_format {clf.contract.input_format}, expected {want} "
                                f"(export it with asl-export --input-format {want})")
        if a.contract.with_input_format("uint8") != b.contract:
            raise UserError(f"{a.path} and {b.path} do not share a contract (classes, size, normalisation)")
        pairs.append((a, b))
    return pairs


def measure(pairs, images, rounds: int, warmup: int) -> dict:
    models = [clf for pair in pairs for clf in pair]
    for clf in models:
        for im in images[:warmup]:
            clf.predict([im])
    total = {id(c): [] for c in models}
    pre = {id(c): [] for c in models}
    probs = {id(c): [] for c in models}
    k = 0
    for r in range(rounds):
        for im in images:
            k += 1
            for j in range(len(models)):
                clf = models[(j + k) % len(models)]
                t0 = time.perf_counter()
                p = clf.predict([im])
                t1 = time.perf_counter()
                clf.contract.preprocess_batch([im])
                t2 = time.perf_counter()
                total[id(clf)].append(t1 - t0)
                pre[id(clf)].append(t2 - t1)
                if r == 0:
                    probs[id(clf)].append(p[0])
    return {id(c): {"predict": summarize_ms(total[id(c)]), "preprocess": summarize_ms(pre[id(c)]),
                    "probs": np.stack(probs[id(c)])} for c in models}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--float", "floats", multiple=True, required=True, metavar="MODEL.onnx",
              help="Float-input export (asl-export default); repeatable, pairs with --uint8 in order.")
@click.option("--uint8", "uint8s", multiple=True, required=True, metavar="MODEL.onnx",
              help="The same checkpoint exported with --input-format uint8; repeatable.")
@click.option("--data", required=True, metavar="DIR", help="Images (any layout; class sub-folders are sampled evenly).")
@click.option("--count", default=100, show_default=True, type=click.IntRange(1), help="Images.")
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1), help="intra_op_num_threads.")
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(1), help="Timed passes over the images.")
@click.option("--warmup", default=5, show_default=True, type=click.IntRange(0), help="Untimed images per model first.")
@cli_errors
def main(floats, uint8s, data, count, threads, rounds, warmup):
    """Batch-1 OnnxClassifier.predict time, float-input vs uint8-input exports, side by side."""
    import onnxruntime as ort

    from ..report import _cpuinfo, cpu_model

    pairs = load_pairs(floats, uint8s, threads)
    files = sample_images(data, count)
    images = [read_rgb(p) for p in files]
    shapes = sorted({im.shape[:2] for im in images})
    res = measure(pairs, images, rounds, warmup)
    print(f"# {len(images)} images from {data} (sizes {', '.join(f'{w}x{h}' for h, w in shapes[:3])}"
          f"{', ...' if len(shapes) > 3 else ''}), batch 1, {rounds} rounds, {threads} threads, "
          f"onnxruntime {ort.__version__}, {cpu_model(_cpuinfo())}, "
          f"python {platform.python_version()}")
    print(f"# {' '.join(['python -m asl_edge.benchmarks.studies.input_format', *sys.argv[1:]])}")
    print()
    print("| model | input | precision | predict p50 ms | p90 ms | preprocess p50 ms | model+softmax p50 ms "
          "| top-1 agree with float | max prob diff |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for a, b in pairs:
        for clf in (a, b):
            r = res[id(clf)]
            pa, pc = res[id(a)]["probs"], r["probs"]
            agree = 100 * float((pa.argmax(1) == pc.argmax(1)).mean())
            pdiff = float(np.abs(pa - pc).max())
            print(f"| {clf.path.parent.name}/{clf.path.name} | {clf.contract.input_format} | {_precision(clf)} "
                  f"| {r['predict']['p50']:.2f} | {r['predict']['p90']:.2f} | {r['preprocess']['p50']:.3f} "
                  f"| {r['predict']['p50'] - r['preprocess']['p50']:.2f} | {agree:.1f}% | {pdiff:.2g} |")


if __name__ == "__main__":
    main()
