"""asl-export: checkpoint -> verified FP32 ONNX, plus INT8 and FP16 variants."""
from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import click

from asl_edge.common.errors import UserError, cli_errors, command, show_logs
from asl_edge.common.fileio import ensure_dir, write_error, replace_set, sweep_temps, temp_dir

from .quantize import DEFAULT_FLOAT_CONVS, WEIGHT_RANGES

log = logging.getLogger(__spec__.name)  # its package name also when run with python -m


def _mb(path):
    return os.path.getsize(path) / 1e6


def _pct(x):
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _held_out(ckpt, classes, eval_data, limit):
    """Labelled images the model did not train on: --eval-data, else the checkpoint's val split."""
    from .images import checkpoint_val_samples, folder_samples, stratified

    if eval_data:
        return stratified(folder_samples(eval_data, classes), limit), f"{eval_data}"
    val = checkpoint_val_samples(ckpt)
    if val:
        return stratified(val, limit), "the checkpoint's val split"
    return [], None


def _check_saturation(int8_path, batches, weight_range):
    """Count, in numpy, the int16 pair sums that would overflow on an AVX2-only x86 CPU for these
    images; refuse a file that overflows (only possible with --int8-weights 8bit)."""
    from .feeds import INPUT_NAME, concat_feeds
    from .saturation import overflow_risk

    feeds = concat_feeds(batches)
    s, can = overflow_risk(int8_path, feeds if len(feeds) > 1 else feeds[INPUT_NAME])
    log.info(f"AVX2 overflow check ({len(feeds[INPUT_NAME])} images, {s['layers']} integer layers): "
             f"{s['saturated_pair_sums']} of {s['pair_sums']:,} pair sums overflow; "
             f"{can} output channels could for some input")
    if can and weight_range != "8bit":
        raise UserError(f"--int8-weights {weight_range} left {can} output channels whose int16 pair sums can overflow "
                        "on x86 CPUs without VNNI; this is a bug in asl-export, please report it")
    if s["saturated_pair_sums"]:
        raise UserError(f"--int8-weights {weight_range}: {s['layers_saturated']} layers overflow int16 on x86 CPUs "
                        "without VNNI (AVX2 only), giving wrong answers there; use --int8-weights pair-safe (default)")
    return {"avx2_overflow_pair_sums": 0, "channels_that_could_overflow": can}


def run_export(ckpt_path, out, quantize, calib_data, calib_count, calib_method, opset, eval_data, eval_count,
               weight_range="pair-safe", input_format="float", float_convs=DEFAULT_FLOAT_CONVS):
    import numpy as np

    from asl_edge.common.fileio import file_sha256
    from asl_edge.train.checkpoint import load_checkpoint, model_from_checkpoint

    from . import onnx_export as X
    from .images import checkpoint_train_samples, folder_samples, model_inputs, stratified, with_hands
    from .quantize import MIN_CALIB_IMAGES, convert_fp16, quantize_int8

    ckpt = load_checkpoint(ckpt_path)
    net, train_contract = model_from_checkpoint(ckpt)
    # The module exported (the network, or it behind the uint8 NHWC normalisation) and the
    # contract stored in every file; PyTorch and onnxruntime get the same batches of that format.
    model, contract = X.for_input_format(net.eval(), train_contract.with_input_format("float"), input_format)
    classes = list(contract.classes)
    out = Path(out) if out else Path(ckpt_path).with_suffix(".onnx")
    if out.suffix != ".onnx":
        raise UserError(f"output path must end in .onnx: {out}")
    finals = [out] + [out.with_suffix(f".{q}.onnx") for q in ("int8", "fp16") if q in quantize]
    for f in finals:
        if f.is_dir():
            raise UserError(f"cannot write {f}: it is an existing folder; give a file name with -o")
    ensure_dir(out.parent)
    sweep_temps(out.parent)  # work folders of exports that were killed
    workdir = temp_dir(out.parent, ".asl-export-")  # beside the outputs: the final moves are renames
    settings = {"opset": opset, "exporter": "torch.onnx dynamo", "input": X.INPUT_DESCRIPTION[input_format]}
    try:
        # --- images: held-out for parity/accuracy, training-side for calibration ---
        held, held_name = _held_out(ckpt, classes, eval_data, eval_count)
        held = with_hands(held, ckpt)
        if held:
            eval_batch = model_inputs(held, contract)
            labels = np.array([s.label for s in held])
            log.info(f"parity images: {len(held)} real images from {held_name}")
        else:
            rng = np.random.default_rng(0)
            s = contract.input_size
            eval_batch = rng.integers(0, 256, (16, s, s, 3), dtype=np.uint8)
            if input_format == "float":
                eval_batch = contract.normalize(eval_batch).astype(np.float32)
            eval_batch = {X.INPUT_NAME: eval_batch}
            if contract.landmarks:
                eval_batch[X.LANDMARKS_NAME] = rng.normal(size=(16, contract.landmarks)).astype(np.float32)
            labels = None
            log.info("parity images: no real images found (no --eval-data, val split not on disk); using 16 random images")
        ref = X.torch_logits(model, eval_batch)
        ckpt_sha = file_sha256(ckpt_path)

        # --- FP32 ---
        t0 = time.perf_counter()
        tmp32 = workdir / "model.onnx"
        m = X.export_fp32(model, contract, tmp32, opset)
        # the exporter may raise the opset it was asked for (torch's dynamo exporter writes 18 at least)
        settings["opset"] = max(op.version for op in m.opset_import if op.domain in ("", "ai.onnx"))
        if settings["opset"] != opset:
            log.info(f"note: --opset {opset} asked for; the exporter wrote opset {settings['opset']}")
        X.add_metadata(tmp32, X.build_metadata(ckpt, contract, ckpt_sha, dict(settings, precision="fp32")))
        fp32_logits = X.ort_logits(tmp32, eval_batch)
        stats = X.compare(ref, fp32_logits)
        X.check_fp32_parity(stats, ref)
        results = [("fp32", out, tmp32, time.perf_counter() - t0, stats, X.accuracy(fp32_logits, labels))]
        acc_torch = X.accuracy(ref, labels)

        # --- INT8 ---
        if "int8" in quantize:
            t0 = time.perf_counter()
            if calib_data:
                pool = folder_samples(calib_data, classes)
                calib_name = str(calib_data)
            else:
                pool = checkpoint_train_samples(ckpt, classes)
                calib_name = "the checkpoint's training images"
                if not pool:
                    raise UserError("INT8 needs real calibration images: pass --calib-data DIR (a folder laid out by class)")
            calib = with_hands(stratified(pool, calib_count, seed=1), ckpt)
            if len(calib) < MIN_CALIB_IMAGES:
                log.warning(f"warning: only {len(calib)} calibration images (fewer than {MIN_CALIB_IMAGES}); "
                            "INT8 ranges may be poor, pass --calib-data with more images")
            log.info(f"calibration: {len(calib)} images from {calib_name}, method {calib_method}")
            tmp8 = workdir / "model.int8.onnx"
            calib_batch = model_inputs(calib, contract)
            quantize_int8(tmp32, tmp8, calib_batch, calib_method, weight_range, float_convs)
            overflow = _check_saturation(tmp8, [calib_batch, eval_batch], weight_range)
            X.add_metadata(tmp8, X.build_metadata(ckpt, contract, ckpt_sha, dict(
                settings, precision="int8", quant_format="QDQ", per_channel=True, activation_type="uint8",
                weight_type="int8", float_layers=("input normalisation, " if input_format == "uint8" else "")
                + f"first {float_convs} conv(s), classifier", weight_range=weight_range, calibration_method=calib_method,
                calibration_images=len(calib), **overflow)))
            q_logits = X.ort_logits(tmp8, eval_batch)
            results.append(("int8", out.with_suffix(".int8.onnx"), tmp8, time.perf_counter() - t0,
                            X.compare(fp32_logits, q_logits), X.accuracy(q_logits, labels)))

        # --- FP16 ---
        if "fp16" in quantize:
            t0 = time.perf_counter()
            tmp16 = workdir / "model.fp16.onnx"
            convert_fp16(tmp32, tmp16)
            X.add_metadata(tmp16, X.build_metadata(ckpt, contract, ckpt_sha, dict(settings, precision="fp16")))
            try:
                h_logits = X.ort_logits(tmp16, eval_batch)
                h_stats, h_acc = X.compare(fp32_logits, h_logits), X.accuracy(h_logits, labels)
            except Exception as e:  # CPU kernels for some fp16 ops may be missing; the file is for GPUs
                log.info(f"note: FP16 model could not run on this CPU for parity ({type(e).__name__}); check it on a GPU")
                h_stats, h_acc = None, None
            results.append(("fp16", out.with_suffix(".fp16.onnx"), tmp16, time.perf_counter() - t0, h_stats, h_acc))

        # --- all checks passed: move into place, one line each ---
        if acc_torch is not None:
            log.info(f"held-out accuracy: PyTorch {_pct(acc_torch)} on {len(labels)} images")
        # FP32, INT8 and FP16 replace the old files together or not at all
        replace_set([(tmp, final) for _, final, tmp, *_ in results], workdir)
        for kind, final, tmp, seconds, st, acc in results:
            ref_name = "PyTorch" if kind == "fp32" else "FP32"
            parity = ("parity not checked" if st is None else
                      f"vs {ref_name}: max|diff| {st['max_abs_diff']:.2e}, top-1 agree {_pct(st['top1_agreement'])}")
            log.info(f"{kind:>5}  {final}  {_mb(final):.1f} MB  {seconds:.1f}s  {parity}  accuracy {_pct(acc)}")
        return [r[1] for r in results]
    except OSError as e:  # a full disk or a vanished folder while writing the work files
        raise write_error(out.parent, e) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("-o", "--out", default=None, help="FP32 output path (.onnx); variants get .int8.onnx / .fp16.onnx.")
@click.option("--quantize", multiple=True, type=click.Choice(["none", "int8", "fp16"]), default=["none"],
              show_default=True, help="Extra variants (repeatable). INT8 is static, QDQ, per-channel.")
@click.option("--calib-data", default=None, type=click.Path(), help="Calibration images (by-class folder). "
              "Default: the checkpoint's training images.")
@click.option("--calib-count", default=300, show_default=True, type=click.IntRange(1))
@click.option("--calib-method", type=click.Choice(["minmax", "entropy", "percentile"]), default="minmax",
              show_default=True)
@click.option("--int8-weights", "weight_range", type=click.Choice(WEIGHT_RANGES), default="pair-safe",
              show_default=True, help="INT8 weight ranges. pair-safe: per channel, no AVX2 int16 pair sum can "
              "overflow, near 8-bit resolution; 7bit: all weights in [-64, 64]; 8bit: full range, refused when it "
              "overflows on x86 CPUs without VNNI.")
@click.option("--float-convs", default=DEFAULT_FLOAT_CONVS, show_default=True, type=click.IntRange(0),
              help="INT8: keep the first N convolutions float (the stem and the first high-resolution blocks, "
              "where 8-bit rounding costs most agreement for little speed).")
@click.option("--opset", default=20, show_default=True, type=click.IntRange(18, 23),
              help="ONNX opset (torch's exporter writes 18 or newer).")
@click.option("--eval-data", default=None, type=click.Path(), help="Held-out images for parity and accuracy. "
              "Default: the checkpoint's val split.")
@click.option("--eval-count", default=300, show_default=True, type=click.IntRange(1))
@click.option("--input-format", type=click.Choice(["float", "uint8"]), default="float", show_default=True,
              help="float: the graph takes normalised float32 NCHW. uint8: it takes uint8 NHWC RGB at the "
              "input size and normalises inside (every variant; the runtime then only crops and resizes).")
@cli_errors
def main(checkpoint, out, quantize, calib_data, calib_count, calib_method, weight_range, float_convs, opset, eval_data,
         eval_count, input_format):
    """Export CHECKPOINT (from asl-train) to ONNX, verified against PyTorch on real images.

    INT8 uses onnxruntime.quantization (static QDQ); onnxruntime-tools is a transformer tool
    and dynamic quantization of convolutions (ConvInteger) is slow, so neither is offered."""
    quantize = {q for q in quantize if q != "none"}
    show_logs("stdout")  # the parity table and notes, on stdout as asl-export has always printed them
    run_export(checkpoint, out, quantize, calib_data, calib_count, calib_method, opset, eval_data, eval_count,
               weight_range, input_format, float_convs=float_convs)


if __name__ == "__main__":
    main()
