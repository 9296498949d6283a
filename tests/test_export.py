"""asl-export: self-contained ONNX with the contract inside, parity with PyTorch, INT8, errors."""
from __future__ import annotations

import json

import numpy as np
import onnx
import torch

from asl_edge.export.images import checkpoint_val_samples, load_batch
from asl_edge.export.onnx_export import compare, ort_logits, torch_logits
from asl_edge.runtime.contract import CONTRACT_KEY, ModelContract
from asl_edge.train.checkpoint import load_checkpoint, model_from_checkpoint

from conftest import assert_one_line_error, run_cli


def _held_out(run_dir):
    ckpt = load_checkpoint(run_dir / "best.ckpt")
    model, contract = model_from_checkpoint(ckpt)
    samples = checkpoint_val_samples(ckpt)
    return ckpt, model, contract, load_batch(samples, contract), np.array([s.label for s in samples])


def test_fp32_matches_pytorch_and_carries_the_contract(small_run, exported):
    fp32, _ = exported
    ckpt, model, contract, batch, _ = _held_out(small_run[0])
    m = onnx.load(str(fp32), load_external_data=False)
    meta = {p.key: p.value for p in m.metadata_props}
    # the checkpoint's contract, plus the embedding output the export adds (pooled image features)
    assert ModelContract.from_json(meta[CONTRACT_KEY]) == contract.with_embedding((("image", 1280),))
    assert [o.name for o in m.graph.output] == ["logits", "embedding"]
    assert meta["asl_edge.arch"] == "efficientnet_lite0"
    assert json.loads(meta["asl_edge.export"])["precision"] == "fp32"
    # self-contained: every weight inside the file, no side files
    assert all(not t.external_data for t in m.graph.initializer)
    assert sorted(p.name for p in fp32.parent.glob("*.onnx*")) == ["best.int8.onnx", "best.onnx"]
    assert len(batch) >= 50  # real held-out frames
    ref = torch_logits(model, batch)
    stats = compare(ref, ort_logits(fp32, batch))
    assert stats["top1_agreement"] == 1.0
    assert stats["max_abs_diff"] < 1e-3 * max(1.0, np.abs(ref).max())
    # dynamic batch axis
    assert ort_logits(fp32, batch[:1]).shape == (1, 29) and ort_logits(fp32, batch[:7], chunk=7).shape == (7, 29)


def test_int8_agrees_with_fp32_on_real_images(small_run, exported):
    fp32, int8 = exported
    _, _, _, batch, labels = _held_out(small_run[0])
    meta = {p.key: p.value for p in onnx.load(str(int8)).metadata_props}
    settings = json.loads(meta["asl_edge.export"])
    assert settings["precision"] == "int8" and settings["quant_format"] == "QDQ"
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(str(int8)).graph.node)
    f, q = ort_logits(fp32, batch), ort_logits(int8, batch)
    stats = compare(f, q)
    # A small model has small logit margins, which INT8 flips most easily; 85% agreement and at
    # most 8 points of accuracy lost is a floor a broken quantization (wrong ranges, saturation,
    # swapped activations) falls far below.
    assert stats["top1_agreement"] >= 0.85, stats
    acc_f = (f.argmax(1) == labels).mean()
    acc_q = (q.argmax(1) == labels).mean()
    assert acc_q >= acc_f - 0.08, (acc_f, acc_q)
    assert int8.stat().st_size < 0.45 * fp32.stat().st_size


def test_corrupt_and_foreign_checkpoints(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"\x00garbage" * 10)
    assert_one_line_error(run_cli("asl_edge.export.cli", bad), "cannot load checkpoint")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state": torch.zeros(2)}, foreign)
    assert_one_line_error(run_cli("asl_edge.export.cli", foreign), "not an asl-edge checkpoint")
    assert_one_line_error(run_cli("asl_edge.export.cli", tmp_path / "missing.ckpt"), "not found")
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob(".asl-export-*"))


def test_unwritable_output_and_empty_calibration(small_run, tmp_path):
    run_dir, _ = small_run
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(run_cli("asl_edge.export.cli", run_dir / "best.ckpt", "-o", blocker / "m.onnx"),
                          "cannot write")
    empty = tmp_path / "calib"
    (empty / "A").mkdir(parents=True)
    out = tmp_path / "out" / "m.onnx"
    proc = run_cli("asl_edge.export.cli", run_dir / "best.ckpt", "-o", out, "--quantize", "int8", "--calib-data", empty)
    assert_one_line_error(proc, "no readable images")
    assert not out.parent.exists() or not any(out.parent.iterdir())
