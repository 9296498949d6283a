"""INT8 on every CPU: each weight-range option, measured side by side in one run.

For each `asl-export --int8-weights` option (and the 8-bit file with onnxruntime's
`session.x64quantprecision=1`, a run-time fix only onnxruntime on x64 honours) this quantizes
the checkpoint's FP32 ONNX with the same calibration images and reports, on the checkpoint's
held-out images: top-1 agreement with FP32 and accuracy per source on this CPU, the numpy count
of AVX2 int16 pair-sum overflows (export/saturation.py), batch-1 latency, and, with
--avx2-emulate, the same agreement computed by onnxruntime's real AVX2 kernels on an emulated
AVX2-only CPU (`qemu-x86_64 -cpu Haswell`, apt package qemu-user), so the numpy count can be
checked against the kernels it models.

    python -m asl_edge.benchmarks.studies.int8_cpus --ckpt runs/default/best.ckpt \
        --fp32 runs/default/best.onnx --out runs/int8_cpus --avx2-emulate 300
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

AVX2_CPU = "Haswell"  # AVX2 and FMA, no AVX-512, no VNNI


def _session(path, threads=2, precise=False):
    from asl_edge.common.sessions import ort_session, session_options

    opts = session_options(threads)
    if precise:
        opts.add_session_config_entry("session.x64quantprecision", "1")
    return ort_session(path, opts=opts)


def logits_of(path, batch, precise=False, chunk=32):
    sess = _session(path, precise=precise)
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: batch[i:i + chunk]})[0] for i in range(0, len(batch), chunk)])


def latency_ms(path, one, precise=False, runs=200):
    sess = _session(path, precise=precise)
    name = sess.get_inputs()[0].name
    for _ in range(10):
        sess.run(None, {name: one})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {name: one})
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def emulated_avx2_logits(path, batch, workdir, precise=False) -> np.ndarray | None:
    """The model's logits computed by onnxruntime's AVX2 kernels under qemu-x86_64 -cpu Haswell."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        print("note: qemu-x86_64 not found (apt install qemu-user); no emulated AVX2 column", file=sys.stderr)
        return None
    inp, out = Path(workdir) / "emu_in.npy", Path(workdir) / "emu_out.npy"
    np.save(inp, batch)
    cmd = [qemu, "-cpu", AVX2_CPU, os.path.realpath(sys.executable), "-m", "asl_edge.benchmarks.studies.int8_cpus", "--logits", str(path),
           str(inp), str(out)] + (["--precise"] if precise else [])
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    return np.load(out)


def _pct(x):
    return f"{100 * x:.1f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt")
    p.add_argument("--fp32", help="the checkpoint's FP32 ONNX (asl-export)")
    p.add_argument("--out", default="runs/int8_cpus")
    p.add_argument("--calib-count", type=int, default=300)
    p.add_argument("--max-eval", type=int, default=0, help="held-out images (0: all)")
    p.add_argument("--avx2-emulate", type=int, default=0, metavar="N",
                   help="also run the first N held-out images on emulated AVX2 kernels (~20 s each for Lite0 224 px)")
    p.add_argument("--options", default="8bit,8bit+x64quantprecision,7bit,pair-safe",
                   help="comma-separated WEIGHT_RANGE[@CALIB_METHOD][/fN: first N convs float][+x64quantprecision]")
    p.add_argument("--logits", nargs=3, metavar=("MODEL", "IN", "OUT"), help=argparse.SUPPRESS)
    p.add_argument("--precise", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.logits:  # the worker side of emulated_avx2_logits
        model, inp, out = a.logits
        np.save(out, logits_of(model, np.load(inp), precise=a.precise))
        return

    from asl_edge.export.images import (checkpoint_train_samples, checkpoint_val_samples, load_input_batch,
                                        stratified)
    from asl_edge.export.quantize import quantize_int8
    from asl_edge.export.saturation import count_saturations, summary
    from asl_edge.common.cpu import int8_isa
    from asl_edge.train.checkpoint import load_checkpoint, model_from_checkpoint

    ckpt = load_checkpoint(a.ckpt)
    _, contract = model_from_checkpoint(ckpt)
    roots = [str(Path(d).resolve()) for d in ckpt["config"]["data"]]
    calib = stratified(checkpoint_train_samples(ckpt, list(contract.classes)), a.calib_count, seed=1)
    held = checkpoint_val_samples(ckpt)
    if a.max_eval:
        held = stratified(held, a.max_eval, seed=2)
    source = np.array([next((i for i, r in enumerate(roots) if str(Path(s.path).resolve()).startswith(r)), -1)
                       for s in held])
    labels = np.array([s.label for s in held])
    contract = contract.with_input_format(_input_format(a.fp32))
    calib_batch, batch = load_input_batch(calib, contract), load_input_batch(held, contract)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    ref = logits_of(a.fp32, batch)
    n_emu = min(a.avx2_emulate, len(batch))
    print(f"CPU: {int8_isa()}; {len(calib)} calibration images; {len(held)} held-out images "
          f"({', '.join(f'source {i}: {(source == i).sum()}' for i in range(len(roots)))}); "
          f"emulated AVX2 on the first {n_emu}", flush=True)
    rows = [{"option": "fp32", "agree": 1.0, "acc": _per_source(ref, labels, source, len(roots)),
             "latency_ms": latency_ms(a.fp32, batch[:1])}]
    for option in a.options.split(","):
        spec, _, flag = option.partition("+")
        spec, _, float_convs = spec.partition("/f")
        weight_range, _, method = spec.partition("@")
        precise = flag == "x64quantprecision"
        path = out / f"int8_{weight_range}_{method or 'minmax'}_f{float_convs or 1}.onnx"
        if not path.exists():
            quantize_int8(a.fp32, path, calib_batch, method=method or "minmax", weight_range=weight_range,
                          float_convs=int(float_convs or 1))  # "pair-safe" alone: the stem only
        q = logits_of(path, batch, precise=precise)
        sat = summary(count_saturations(path, batch[:n_emu or 64]))
        row = {"option": option, "agree": float((q.argmax(1) == ref.argmax(1)).mean()),
               "acc": _per_source(q, labels, source, len(roots)), "latency_ms": latency_ms(path, batch[:1], precise),
               "overflow_fraction": 0.0 if precise else sat["saturated_fraction"],
               "overflow_layers": 0 if precise else sat["layers_saturated"], "size_mb": path.stat().st_size / 1e6}
        if n_emu:
            emu = emulated_avx2_logits(path, batch[:n_emu], out, precise)
            row["avx2_agree"] = float((emu.argmax(1) == ref[:n_emu].argmax(1)).mean())
            row["this_cpu_agree_same_images"] = float((q[:n_emu].argmax(1) == ref[:n_emu].argmax(1)).mean())
            # the same file on both CPUs: 0 when no pair sum overflows (same integers everywhere)
            row["avx2_vs_this_cpu_max_logit_diff"] = float(np.abs(emu - q[:n_emu]).max())
        rows.append(row)
        print(json.dumps(row), flush=True)
    (out / "int8_cpus.json").write_text(json.dumps({"cpu": int8_isa(), "rows": rows}, indent=1))
    head = ["option", f"agree w/ FP32 ({int8_isa().split(' (')[0]})"] + [f"acc source {i}" for i in range(len(roots))]
    head += ["AVX2 overflows (numpy)", f"agree, emulated AVX2 (first {n_emu})", "same images here",
             "max logit diff AVX2 vs here", "batch-1 ms"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join([r["option"], _pct(r["agree"])] + [_pct(x) for x in r["acc"]] + [
            f"{100 * r.get('overflow_fraction', 0):.4f}% ({r.get('overflow_layers', 0)} layers)",
            _pct(r["avx2_agree"]) if "avx2_agree" in r else "-",
            _pct(r.get("this_cpu_agree_same_images", 1.0)),
            f"{r['avx2_vs_this_cpu_max_logit_diff']:.3g}" if "avx2_vs_this_cpu_max_logit_diff" in r else "-",
            f"{r['latency_ms']:.2f}"]) + " |")


def _input_format(path) -> str:
    import onnx

    from asl_edge.runtime.contract import CONTRACT_KEY, ModelContract

    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return ModelContract.from_json(meta[CONTRACT_KEY]).input_format


def _per_source(logits, labels, source, n):
    hit = logits.argmax(1) == labels
    return [float(hit[source == i].mean()) if (source == i).any() else float("nan") for i in range(n)]


if __name__ == "__main__":
    main()
