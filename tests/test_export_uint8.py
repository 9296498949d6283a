"""asl-export --input-format uint8: every variant takes uint8 NHWC RGB and normalises inside the
graph; it classifies real images as the float export does; asl-bench feeds it uint8."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from asl_edge.export.images import checkpoint_val_samples, load_batch
from asl_edge.export.onnx_export import torch_logits
from asl_edge.runtime.contract import CONTRACT_KEY
from asl_edge.runtime.model import OnnxClassifier
from asl_edge.train import data as D
from asl_edge.train.checkpoint import load_checkpoint, model_from_checkpoint

from conftest import KAGGLE_TEST, need, run_cli

PREPROCESSING_OPS = {"Transpose", "Cast", "Mul", "Sub", "Div"}


@pytest.fixture(scope="module")
def exported_uint8(small_run, tmp_path_factory):
    """The small run exported again with --input-format uint8: FP32, INT8 and FP16."""
    out = tmp_path_factory.mktemp("uint8-export") / "best.onnx"
    proc = run_cli("asl_edge.export.cli", small_run[0] / "best.ckpt", "-o", out, "--input-format", "uint8",
                   "--quantize", "int8", "--quantize", "fp16", "--calib-count", "120", check=True)
    return out, out.with_suffix(".int8.onnx"), out.with_suffix(".fp16.onnx"), proc


@pytest.fixture(scope="module")
def held_out(small_run):
    """Real held-out frames of the small run: decoded RGB images and their labels."""
    samples = checkpoint_val_samples(load_checkpoint(small_run[0] / "best.ckpt"))
    assert len(samples) >= 50
    return samples, [D.load_image(s) for s in samples], np.array([s.label for s in samples])


def _input(path):
    t = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type
    return onnx.TensorProto.DataType.Name(t.elem_type), [d.dim_param or d.dim_value for d in t.shape.dim]


def _before_first_conv(graph):
    """The nodes on the path from the graph input to the first Conv's data input."""
    producer = {o: n for n in graph.node for o in n.output}
    conv = next(n for n in graph.node if n.op_type == "Conv")
    chain, name = [], conv.input[0]
    while name in producer:
        node = producer[name]
        chain.append(node)
        name = node.input[0]
    return chain[::-1]


def test_every_variant_takes_uint8_nhwc_and_says_so(small_run, exported, exported_uint8):
    fp32_float, _ = exported
    float_contract = OnnxClassifier(fp32_float, provider="cpu").contract
    s = float_contract.input_size
    for path in exported_uint8[:3]:
        dtype, shape = _input(path)
        assert dtype == "UINT8" and shape[1:] == [s, s, 3] and isinstance(shape[0], str), (path.name, dtype, shape)
        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        contract = json.loads(meta[CONTRACT_KEY])
        assert contract["input_format"] == "uint8"
        assert dict(contract, input_format="float") == float_contract.to_dict()
        assert json.loads(meta["asl_edge.export"])["input"].startswith("uint8 NHWC")
    assert _input(fp32_float)[0] == "FLOAT"

    fp32, int8, fp16, _ = exported_uint8
    # FP32: the normalisation sits in front of the network, in float
    assert [n.op_type for n in _before_first_conv(onnx.load(str(fp32)).graph)] == \
        ["Transpose", "Cast", "Mul", "Sub", "Div"]
    # INT8: the quantizer left the normalisation and the first conv in float (no Q/DQ on that path)
    g8 = onnx.load(str(int8)).graph
    assert any(n.op_type == "QuantizeLinear" for n in g8.node)
    assert [n.op_type for n in _before_first_conv(g8)] == ["Transpose", "Cast", "Mul", "Sub", "Div"]
    assert "input normalisation" in json.loads(
        {p.key: p.value for p in onnx.load(str(int8)).metadata_props}["asl_edge.export"])["float_layers"]
    # FP16: normalisation in float32, cast to float16 just before the first conv
    chain16 = _before_first_conv(onnx.load(str(fp16)).graph)
    assert {n.op_type for n in chain16[:-1]} <= PREPROCESSING_OPS
    last = chain16[-1]
    assert last.op_type == "Cast" and last.attribute[0].i == onnx.TensorProto.FLOAT16


def test_uint8_fp32_matches_float_export_and_pytorch(small_run, exported, exported_uint8, held_out):
    samples, images, labels = held_out
    f = OnnxClassifier(exported[0], provider="cpu").logits(images)
    u = OnnxClassifier(exported_uint8[0], provider="cpu").logits(images)
    scale = max(1.0, float(np.abs(f).max()))
    assert (f.argmax(1) == u.argmax(1)).all()
    assert np.abs(f - u).max() < 1e-4 * scale
    # and both match PyTorch on the float tensors the contract makes of the same images
    model, contract = model_from_checkpoint(load_checkpoint(small_run[0] / "best.ckpt"))
    ref = torch_logits(model.eval(), load_batch(samples, contract))
    assert (ref.argmax(1) == u.argmax(1)).all()
    assert np.abs(ref - u).max() < 1e-3 * scale
    assert "fp32" in exported_uint8[3].stdout and "top-1 agree 100.00%" in exported_uint8[3].stdout


def test_uint8_int8_agrees_with_float_int8(exported, exported_uint8, held_out):
    _, images, labels = held_out
    f = OnnxClassifier(exported[1], provider="cpu").logits(images)
    u = OnnxClassifier(exported_uint8[1], provider="cpu").logits(images)
    agree = float((f.argmax(1) == u.argmax(1)).mean())
    assert agree >= 0.90, agree
    # and it still classifies: no worse than the float-input INT8 beyond a few images
    acc_f, acc_u = (f.argmax(1) == labels).mean(), (u.argmax(1) == labels).mean()
    assert acc_u >= acc_f - 0.05, (acc_f, acc_u)


def test_bad_input_format_is_one_line(small_run, tmp_path):
    out = tmp_path / "m.onnx"
    proc = run_cli("asl_edge.export.cli", small_run[0] / "best.ckpt", "-o", out, "--input-format", "rgb")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = [l for l in proc.stderr.splitlines() if "error" in l.lower()]
    assert len(errors) == 1 and "--input-format" in errors[0] and "'rgb'" in errors[0], proc.stderr
    assert "float" in errors[0] and "uint8" in errors[0]
    assert not list(tmp_path.iterdir())


def test_bench_feeds_uint8_models_their_own_batch(exported, exported_uint8, tmp_path):
    """asl-bench: the float reference and the uint8 models see the same images, each in its format."""
    need(KAGGLE_TEST)
    out = tmp_path / "bench"
    proc = run_cli("asl_edge.benchmarks.cli", "--onnx", exported[0], "--onnx", exported_uint8[0],
                   "--onnx", exported_uint8[1], "--data", KAGGLE_TEST, "--runs", 3, "--warmup", 1, "--batch", 4,
                   "--threads", 2, "--no-plots", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bench = json.loads((out / "bench.json").read_text())
    rows = {m["path"]: m for m in bench["models"]}
    assert [rows[str(p.resolve())]["input_format"] for p in (exported[0], exported_uint8[0], exported_uint8[1])] \
        == ["float", "uint8", "uint8"]
    assert all(m["status"] == "ok" for m in bench["models"]), bench["models"]
    res = bench["datasets"][0]["results"]
    u32 = res[rows[str(exported_uint8[0].resolve())]["id"]]
    assert u32["agreement"]["top1_pct"] == 100.0 and u32["agreement"]["max_abs_logit_diff"] < 1e-3
    u8 = res[rows[str(exported_uint8[1].resolve())]["id"]]
    assert u8["agreement"]["top1_pct"] >= 75.0, u8["agreement"]


def test_input_format_benchmark_script(exported, exported_uint8):
    """benchmarks/studies/input_format.py: one row per model, identical predictions; swapped files are one line."""
    from conftest import KAGGLE_TRAIN

    need(KAGGLE_TRAIN)
    args = ["--float", exported[0], "--uint8", exported_uint8[0], "--float", exported[1], "--uint8", exported_uint8[1],
            "--data", KAGGLE_TRAIN, "--count", 6, "--rounds", 1, "--warmup", 1, "--threads", 1]
    proc = run_cli("asl_edge.benchmarks.studies.input_format", *args, check=True)
    rows = [l for l in proc.stdout.splitlines() if l.startswith("| ") and ".onnx" in l]
    assert [r.split("|")[2].strip() for r in rows] == ["float", "uint8", "float", "uint8"], proc.stdout
    assert all(r.split("|")[8].strip() == "100.0%" for r in rows[:2]), proc.stdout  # FP32 pair
    bad = run_cli("asl_edge.benchmarks.studies.input_format", "--float", exported_uint8[0], "--uint8", exported[0],
                  "--data", KAGGLE_TRAIN, "--count", 2)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()] and "expected float" in bad.stderr, bad.stderr
