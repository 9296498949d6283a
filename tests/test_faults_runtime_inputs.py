"""Faults, fourth round (issue 27's audit): hostile text in asl-bench's lines and a file's export settings,
a contract std that divides by almost nothing, onnxruntime's C++ text, float TIFFs, a failed capture's
folder, numbers past any limit, --opset the exporter cannot write, and FP16's warnings."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from asl_edge.benchmarks.models import _onnx_format
from asl_edge.common.errors import UserError, first_line
from asl_edge.common.safeio import read_image_rgb
from asl_edge.runtime.contract import CONTRACT_KEY, MIN_STD, ModelContract

from conftest import assert_one_line_error, run_cli
from faults import call, one_error
from onnx_fixtures import make_tiny_onnx, write_image

HOSTILE = "\x1b]0;pwned\x07\x1b[2J\nerror: fake"


def _graph_model(path, node, initializers, classes=("A", "B"), size=16):
    """One-node ONNX file: image (N,3,S,S) -> `node` -> logits (N, classes), with the contract."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(classes)])
    model = helper.make_model(helper.make_graph([node], "g", [x], [y], initializer=initializers),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    model.metadata_props.add(key=CONTRACT_KEY, value=ModelContract(classes=classes, input_size=size).to_json())
    onnx.save(model, str(path))
    return path


def _bad_reshape(path, name=""):
    from onnx import TensorProto, helper

    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 7])  # 768 values do not make rows of 7
    return _graph_model(path, helper.make_node("Reshape", ["input", "shape"], ["logits"], name=name), [shape])


def _images(root, n=2):
    for c in ("A", "B"):
        for i in range(n):
            write_image(root / c / f"{c}{i}.png", seed=i)
    return root


def test_asl_bench_escapes_a_hostile_node_name_in_its_failure_lines(tmp_path):
    model = _bad_reshape(tmp_path / "hostile.onnx", name=HOSTILE)
    proc = run_cli("asl_edge.benchmarks.cli", "--onnx", model, "--data", _images(tmp_path / "data"), "--runs", 2,
                   "--warmup", 0, "--no-plots", "--out", tmp_path / "bench", timeout=300)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "FAIL:" in proc.stderr, text
    assert "\x1b" not in text and "\x07" not in text and "\\x1b" in text  # shown, escaped
    assert "Traceback" not in text


@pytest.mark.parametrize("settings, shown", [("[" * 50_000 + "]" * 50_000, "ONNX"), ('{"precision": 5}', "ONNX"),
                                             ('{"precision": "int8"}', "ONNX INT8"),
                                             ('{"precision": "\\u001b[2J"}', "ONNX \\X1B[2J")])
def test_asl_bench_reads_a_files_export_settings_as_the_runtime_does(settings, shown):
    assert _onnx_format({"asl_edge.export": settings}) == shown


@pytest.mark.parametrize("std", [(1e-300,) * 3, (0.2, 0.2, 1e-4), (0.0, 0.2, 0.2)])
def test_a_contract_std_that_divides_by_almost_nothing_is_refused(std):
    with pytest.raises(UserError, match=f"std must be 3 finite numbers of at least {MIN_STD:g}"):
        ModelContract(std=std)
    assert ModelContract(std=(MIN_STD,) * 3).std == (MIN_STD,) * 3


def test_onnxruntime_failures_read_as_the_reason_without_cxx_locations(tmp_path, capfd):
    from asl_edge.runtime import cli

    image = write_image(tmp_path / "a.png")
    line = one_error(call(capfd, cli.main, "--model", _bad_reshape(tmp_path / "m.onnx"), image, "--roi", "full"),
                     "Reshape node: The input tensor cannot be reshaped to the requested shape")
    assert ".h:" not in line and "::" not in line and "was false" not in line
    assert first_line(ValueError("plain\nsecond")) == "plain"


def test_a_float_tiff_is_an_image_not_a_corrupt_file(tmp_path, capfd):
    from asl_edge.runtime import cli

    bgr = np.zeros((64, 64, 3), np.float32)
    bgr[..., 2], bgr[..., 0] = 1.0, 0.5  # red full, blue half
    cv2.imwrite(str(tmp_path / "colour.tiff"), bgr)
    cv2.imwrite(str(tmp_path / "grey.tiff"), np.full((64, 64), 0.25))  # float64, one channel
    assert read_image_rgb(tmp_path / "colour.tiff")[0, 0].tolist() == [255, 0, 128]
    assert read_image_rgb(tmp_path / "grey.tiff")[0, 0].tolist() == [64, 64, 64]
    res = call(capfd, cli.main, "--model", make_tiny_onnx(tmp_path / "m.onnx"), tmp_path / "colour.tiff",
               "--roi", "full")
    assert res.code == 0 and "skipped 0 unreadable" in res.out, res.out + res.err


def test_a_capture_that_cannot_open_its_camera_leaves_no_new_folder(tmp_path, capfd):
    from asl_edge.runtime import capture

    out = tmp_path / "mine"
    one_error(call(capfd, capture.main, "--camera", tmp_path / "none.mp4", "--out", out, "--no-display",
                   "--roi", "full", "--classes", "A"), "camera source not found")
    assert not out.exists()
    (tmp_path / "kept").mkdir()  # a folder the user made stays
    call(capfd, capture.main, "--camera", tmp_path / "none.mp4", "--out", tmp_path / "kept", "--no-display")
    assert (tmp_path / "kept").is_dir()


@pytest.mark.parametrize("module, args, fragment", [
    ("asl_edge.runtime.cli", ("--max-megapixels", "1e300", "x.png"), "--max-megapixels"),
    ("asl_edge.benchmarks.cli", ("--batch", "99999999999999999999999", "--onnx", "m.onnx"), "--batch"),
    ("asl_edge.export.cli", ("m.ckpt", "--opset", "13"), "--opset"),
])
def test_numbers_past_any_limit_are_usage_errors_naming_the_option(module, args, fragment):
    proc = run_cli(module, *args)
    assert_one_line_error(proc, fragment)
    assert "ASL_EDGE_" not in proc.stderr  # the option, not an environment variable


def test_fp16_conversion_reports_clipped_weights_as_one_line_not_a_warning_each(tmp_path, logged, recwarn):
    import onnx
    from onnx import numpy_helper

    from asl_edge.export.quantize import convert_fp16

    src = make_tiny_onnx(tmp_path / "m.onnx")
    model = onnx.load(str(src))
    weights = [t for t in model.graph.initializer if numpy_helper.to_array(t).size > 8]
    for t in weights[:3]:  # values under float16's smallest: the converter warns once per tensor
        t.CopyFrom(numpy_helper.from_array(np.full(numpy_helper.to_array(t).shape, 1e-9, np.float32), t.name))
    onnx.save(model, str(src))
    convert_fp16(src, tmp_path / "m16.onnx")
    assert not [w for w in recwarn if "truncated" in str(w.message)]
    assert [line for line in logged if line.startswith("FP16: ")] == [
        "FP16: 3 weight value(s) outside float16's range were clipped to it"]
