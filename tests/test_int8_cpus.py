"""INT8 that is right on every CPU: the AVX2 pair-sum overflow model, pair-safe weights, the CPU name."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from asl_edge.export.quantize import pair_safe_absmax, quantize_int8
from asl_edge.export.saturation import (INT16_MAX, INT16_MIN, activation_model, count_saturations,
                                        quantized_layers, unsafe_channels)
from asl_edge.common.cpu import int8_isa, int8_isa_from

from conftest import assert_one_line_error, run_cli


# --- the CPU name ------------------------------------------------------------------------------

@pytest.mark.parametrize("machine,flags,expected", [
    ("x86_64", {"avx2", "avx512f", "avx512_vnni"}, "x86-64 AVX-512 VNNI"),
    ("x86_64", {"avx2", "avx_vnni"}, "x86-64 AVX-VNNI"),
    ("x86_64", {"avx2", "fma"}, "x86-64 AVX2 (no VNNI: saturating int16 pair sums)"),
    ("x86_64", {"sse4_2"}, "x86-64 SSE (no AVX2)"),
    ("aarch64", {"asimd", "asimddp"}, "ARM64 NEON with dot product"),
    ("aarch64", {"asimd"}, "ARM64 NEON (no dot product)"),
    ("riscv64", set(), "riscv64 (INT8 instruction set unknown)"),
])
def test_int8_isa_names(machine, flags, expected):
    assert int8_isa_from(machine, flags) == expected


def test_this_cpu_is_named_from_its_flags():
    text = open("/proc/cpuinfo").read() if sys.platform == "linux" else ""
    isa = int8_isa()
    if "avx512_vnni" in text:
        assert isa == "x86-64 AVX-512 VNNI"
    elif " avx2" in text:
        assert isa.startswith("x86-64 AVX")


# --- pair-safe weight ranges -------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 33)),
              elements=st.floats(-10, 10, allow_nan=False, allow_subnormal=False)))
def test_pair_safe_ranges_never_overflow_and_keep_the_largest_weight(rows):
    absmax = pair_safe_absmax(rows)
    scale = (absmax / 127).astype(np.float32)[:, None]
    q = np.clip(np.round(rows / scale), -127, 127).astype(np.int32)
    assert np.all(np.abs(np.round(rows / scale)) <= 127)  # nothing clipped: the range holds every weight
    if q.shape[1] % 2:
        q = np.concatenate([q, np.zeros((len(q), 1), np.int32)], axis=1)
    e, o = q[:, 0::2], q[:, 1::2]
    assert np.all(np.where(e * o > 0, np.abs(e) + np.abs(o), 0) <= 128)
    # never coarser than 7-bit weights (which put the largest weight at 64)
    assert np.all(absmax <= 2 * np.abs(rows).max(axis=1) + 1e-12)


# --- the overflow model, on a small graph with crafted weights ----------------------------------

def _float_model(path, rng, c_in=8, c_mid=12, c_out=10, size=7):
    """stem conv (kept float) -> relu -> 1x1 conv -> relu -> 3x3 conv (stride 2, pad 1) -> pool -> gemm."""
    w0 = rng.normal(0, 0.5, (c_in, 3, 3, 3)).astype(np.float32)
    w1 = rng.normal(0, 0.5, (c_mid, c_in, 1, 1)).astype(np.float32)
    w2 = rng.normal(0, 0.2, (c_out, c_mid, 3, 3)).astype(np.float32)
    # the overflow case: input channels 0-3 of each integer conv are equal and large, and every
    # output channel weighs them with large same-signed weights
    w0[:4] = np.abs(w0[0]) + 0.5
    w1[:, :4] = np.abs(w1[:, :4]) + 2.0
    w1[1:4] = w1[0]
    w2[:, :4] = np.abs(w2[:, :4]) + 1.0
    inits = [nh.from_array(w, f"w{i}") for i, w in enumerate((w0, w1, w2))]
    inits.append(nh.from_array(rng.normal(0, 0.5, (4, c_out)).astype(np.float32), "w3"))

    nodes = [h.make_node("Conv", ["x", "w0"], ["a0"], pads=[1, 1, 1, 1]), h.make_node("Relu", ["a0"], ["r0"]),
             h.make_node("Conv", ["r0", "w1"], ["a1"]), h.make_node("Relu", ["a1"], ["r1"]),
             h.make_node("Conv", ["r1", "w2"], ["a2"], strides=[2, 2], pads=[1, 1, 1, 1]),
             h.make_node("Relu", ["a2"], ["r2"]), h.make_node("GlobalAveragePool", ["r2"], ["p"]),
             h.make_node("Flatten", ["p"], ["f"]), h.make_node("Gemm", ["f", "w3"], ["y"], transB=1)]
    for i, node in enumerate(nodes):
        node.name = f"{node.op_type.lower()}_{i}"
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, ["n", 3, size, size])],
                     [h.make_tensor_value_info("y", T.FLOAT, ["n", 4])], inits)
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 17)]), str(path))


def _brute_force_saturations(model, x) -> dict:
    """Direct loops over every output pixel, channel and pair (channels-last patches): the count
    the vectorised emulation must reproduce."""
    import onnxruntime as ort

    layers = quantized_layers(model)
    # The same exact (unfused) activations the emulation reads: with fusion, an AVX2 CPU's own
    # saturating kernels would change the second layer's input and the two counts would differ there.
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(activation_model(model, layers).SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    values = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"x": x})))
    counts = {}
    for layer in layers:
        a = values[layer.activation].astype(np.int64)
        w = onnx.numpy_helper.to_array(next(t for t in model.graph.initializer
                                            if t.name == layer.weight_name + "_quantized")).astype(np.int64)
        kh, kw = w.shape[2:]
        (sh, sw), (pt, pl) = layer.strides, layer.pads[:2]
        a = np.pad(a, ((0, 0), (0, 0), (pt, layer.pads[2]), (pl, layer.pads[3])), constant_values=layer.pad_value)
        oh, ow = (a.shape[2] - kh) // sh + 1, (a.shape[3] - kw) // sw + 1
        n_sat = 0
        for n in range(a.shape[0]):
            for i in range(oh):
                for j in range(ow):
                    patch = a[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw].transpose(1, 2, 0).ravel()
                    for o in range(w.shape[0]):
                        wk = w[o].transpose(1, 2, 0).ravel()
                        for k in range(0, len(wk), 2):
                            s = patch[k] * wk[k] + (patch[k + 1] * wk[k + 1] if k + 1 < len(wk) else 0)
                            n_sat += s > INT16_MAX or s < INT16_MIN
        counts[layer.node] = n_sat
    return counts


def test_emulated_overflows_match_a_brute_force_count(tmp_path):
    rng = np.random.default_rng(0)
    _float_model(tmp_path / "f.onnx", rng)
    calib = rng.uniform(-2, 2, (32, 3, 7, 7)).astype(np.float32)
    quantize_int8(tmp_path / "f.onnx", tmp_path / "q8.onnx", calib, weight_range="8bit", float_convs=1)
    model = onnx.load(str(tmp_path / "q8.onnx"))
    layers = quantized_layers(model)
    # the stem conv and the classifier stay float: the 1x1 and the strided 3x3 are integer
    assert [lay.kernel for lay in layers] == [(1, 1), (3, 3)] and layers[1].strides == (2, 2)
    x = calib[:3]
    counted = {lay.node: lay.saturated for lay in count_saturations(tmp_path / "q8.onnx", x)}
    assert counted == _brute_force_saturations(model, x)
    assert sum(counted.values()) > 0 and all(unsafe_channels(lay).any() for lay in layers)


@pytest.mark.parametrize("weight_range", ["pair-safe", "7bit"])
def test_safe_weight_ranges_cannot_overflow(tmp_path, weight_range):
    rng = np.random.default_rng(1)
    _float_model(tmp_path / "f.onnx", rng)
    calib = rng.uniform(-2, 2, (32, 3, 7, 7)).astype(np.float32)
    quantize_int8(tmp_path / "f.onnx", tmp_path / "q.onnx", calib, weight_range=weight_range, float_convs=1)
    layers = count_saturations(tmp_path / "q.onnx", calib)
    assert len(layers) == 2
    assert not any(unsafe_channels(lay).any() for lay in layers)
    assert sum(lay.saturated for lay in layers) == 0
    limit = 64 if weight_range == "7bit" else 127
    assert max(int(np.abs(lay.weight).max()) for lay in layers) <= limit


# --- the emulation against onnxruntime's real AVX2 kernels ---------------------------------------

PROBE = r'''
import sys, numpy as np, onnxruntime as ort
m, x = sys.argv[1], np.load(sys.argv[2])
s = ort.InferenceSession(m, providers=["CPUExecutionProvider"])
np.save(sys.argv[3], s.run(None, {"x": x})[0])
'''


def _qlinear_conv(w):
    c_out, c_in = w.shape
    inits = [nh.from_array(w.reshape(c_out, c_in, 1, 1), "w"), nh.from_array(np.array(1.0, np.float32), "xs"),
             nh.from_array(np.array(0, np.uint8), "xz"), nh.from_array(np.ones(c_out, np.float32), "ws"),
             nh.from_array(np.zeros(c_out, np.int8), "wz"), nh.from_array(np.array(2000.0, np.float32), "ys"),
             nh.from_array(np.array(0, np.uint8), "yz")]
    node = h.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"])
    g = h.make_graph([node], "g", [h.make_tensor_value_info("x", T.UINT8, [1, c_in, 4, 4])],
                     [h.make_tensor_value_info("y", T.UINT8, None)], inits)
    return h.make_model(g, opset_imports=[h.make_opsetid("", 13)])


def test_overflow_model_matches_onnxruntime_avx2_kernels(tmp_path):
    """Under qemu-x86_64 -cpu Haswell (AVX2, no VNNI) onnxruntime's own U8S8 kernels run with
    VPMADDUBSW: their outputs must equal the saturating pair-sum model, and differ from exact
    int32 sums; this machine's own run must match its instruction set."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        pytest.skip("qemu-x86_64 not installed (apt install qemu-user; .ci/run installs it)")
    rng = np.random.default_rng(0)
    c_in, c_out = 32, 6
    w = rng.integers(-127, 128, (c_out, c_in)).astype(np.int8)
    x = rng.integers(0, 256, (1, c_in, 4, 4)).astype(np.uint8)
    (tmp_path / "probe.py").write_text(PROBE)
    onnx.save(_qlinear_conv(w), str(tmp_path / "m.onnx"))
    np.save(tmp_path / "x.npy", x)
    rows = x[0].reshape(c_in, -1).T.astype(np.int32)                     # (pixels, K)
    pairs = rows[:, None, 0::2] * w[None, :, 0::2] + rows[:, None, 1::2] * w[None, :, 1::2]
    exact = pairs.sum(-1)
    saturating = np.clip(pairs, INT16_MIN, INT16_MAX).sum(-1)
    assert (exact != saturating).any()

    def requantize(acc):
        return np.clip(np.round(acc / 2000.0), 0, 255).T.reshape(1, c_out, 4, 4)

    def run(prefix):
        subprocess.run(prefix + [sys.executable, str(tmp_path / "probe.py"), str(tmp_path / "m.onnx"),
                                 str(tmp_path / "x.npy"), str(tmp_path / "y.npy")], check=True, capture_output=True)
        return np.load(tmp_path / "y.npy").astype(int)

    avx2 = run([qemu, "-cpu", "Haswell"])
    assert np.abs(avx2 - requantize(saturating)).max() <= 1
    assert np.abs(avx2 - requantize(exact)).max() > 1
    native = run([])
    expected = requantize(saturating if "no VNNI" in int8_isa() else exact)
    assert np.abs(native - expected).max() <= 1


# --- asl-export on a small real model ----------------------------------------------------------

def test_export_refuses_8bit_weights_that_overflow_and_ships_pair_safe(small_run, exported, tmp_path):
    run_dir, _ = small_run
    _, int8 = exported
    meta = json.loads({p.key: p.value for p in onnx.load(str(int8)).metadata_props}["asl_edge.export"])
    assert meta["weight_range"] == "pair-safe"
    assert meta["avx2_overflow_pair_sums"] == 0 and meta["channels_that_could_overflow"] == 0
    assert not any(unsafe_channels(lay).any() for lay in quantized_layers(onnx.load(str(int8))))
    out = tmp_path / "m.onnx"
    proc = run_cli("asl_edge.export.cli", run_dir / "best.ckpt", "-o", out, "--quantize", "int8",
                   "--calib-count", "60", "--int8-weights", "8bit")
    assert_one_line_error(proc, "overflow int16", "--int8-weights pair-safe")
    assert not out.exists() and not out.with_suffix(".int8.onnx").exists()


@pytest.mark.parametrize("export,isa,expected", [
    ({"precision": "int8"}, "x86-64 AVX2 (no VNNI: saturating int16 pair sums)", True),   # older file
    ({"precision": "int8", "weight_range": "8bit"}, "x86-64 AVX2 (no VNNI: saturating int16 pair sums)", True),
    ({"precision": "int8", "weight_range": "pair-safe"}, "x86-64 AVX2 (no VNNI: saturating int16 pair sums)", False),
    ({"precision": "int8"}, "x86-64 AVX-512 VNNI", False),
    ({"precision": "int8"}, "ARM64 NEON with dot product", False),
    ({"precision": "fp32"}, "x86-64 AVX2 (no VNNI: saturating int16 pair sums)", False),
])
def test_runtime_uses_exact_int8_kernels_only_for_old_files_on_avx2(export, isa, expected):
    from asl_edge.runtime.model import needs_precise_int8

    assert needs_precise_int8({"asl_edge.export": json.dumps(export)}, isa) is expected
    assert needs_precise_int8({"asl_edge.export": "not json"}, isa) is False


def test_arm64_features_from_the_auxiliary_vector():
    from asl_edge.common.cpu import _flags_arm64_auxv

    def auxv(*pairs):
        return np.array([v for pair in pairs + ((0, 0),) for v in pair], np.uint64).tobytes()

    assert _flags_arm64_auxv(auxv((6, 4096), (16, (1 << 20) | (1 << 1) | 1))) == {"asimd", "asimddp"}
    assert _flags_arm64_auxv(auxv((16, 0b11))) == {"asimd"}
    assert _flags_arm64_auxv(auxv((6, 4096))) == set()
    assert _flags_arm64_auxv(b"\x01\x02") == set()
