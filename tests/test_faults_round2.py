"""The second fault catalogue (issue 27): untrusted text on the terminal, the pixel limit on every
decode, non-finite numbers in options, a fresh run over another run's checkpoints."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asl_edge.runtime import cli as run_cli_module
from asl_edge.runtime.contract import ModelContract
from asl_edge.common.errors import UserError, has_control, printable
from asl_edge.common.safeio import decode_rgb, header_size
from faults import call, one_error, set_contract, tiny_checkpoint
from onnx_fixtures import make_tiny_onnx, write_image

asl_run = run_cli_module.main
HOSTILE = "A\x1b]0;pwned\x07\x1b[2J\nerror: fake\r\u202eB"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_tiny_onnx(tmp_path_factory.mktemp("m") / "color.onnx", kind="color")


# --- untrusted text ---------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.text())
def test_printable_has_no_control_characters_and_keeps_the_rest(text):
    shown = printable(text)
    assert not has_control(shown) and "\n" not in shown
    if not has_control(text):
        assert shown == text


def test_a_contract_with_control_characters_in_a_class_name_is_refused(tmp_path, capfd, model):
    bad = json.loads(ModelContract(classes=("A", "B", "C", "nothing")).to_json())
    bad["classes"][0] = HOSTILE
    hostile = set_contract(model, tmp_path / "hostile.onnx", json.dumps(bad))
    write_image(tmp_path / "img" / "x.jpg", size=(40, 40))
    res = call(capfd, asl_run, "--model", hostile, tmp_path / "img", "--roi", "full")
    one_error(res, "class names must be printable")
    assert "\x1b" not in res.err + res.out and "fake" not in res.err
    with pytest.raises(UserError):
        ModelContract(classes=("A", "x" * 65))


def test_file_names_with_escapes_are_shown_escaped(tmp_path, capfd, model):
    name = "a\x1b[2Jb\nerror: fake.jpg"
    write_image(tmp_path / "img" / name, size=(40, 40))
    res = call(capfd, asl_run, "--model", model, tmp_path / "img", "--roi", "full")
    assert res.code == 0, res.err
    assert "\x1b" not in res.out + res.err and "\\x1b[2Jb\\nerror: fake.jpg" in res.out
    assert not [l for l in res.out.splitlines() + res.err.splitlines() if l.startswith("error:")]
    missing = call(capfd, asl_run, "--model", model, tmp_path / "nope\x1b[31m.jpg")
    assert "\x1b" not in one_error(missing, "not found", "\\x1b[31m")


# --- one decode path, one pixel limit --------------------------------------------------------

def _pnm(kind: bytes, w: int, h: int, comment=b"") -> bytes:
    return kind + b"\n" + comment + f"{w} {h}\n255\n".encode() + b"\x00" * 64


@pytest.mark.parametrize("data, size", [
    (_pnm(b"P5", 30000, 40000), (30000, 40000)),
    (_pnm(b"P6", 20000, 20000, b"# a comment 5 5\n"), (20000, 20000)),
    (b"P4 64 48 " + b"\x00" * 400, (64, 48)),
    (b"GIF89a" + (640).to_bytes(2, "little") + (480).to_bytes(2, "little") + b"\x00" * 20, (640, 480)),
])
def test_header_sizes_of_netpbm_and_gif(data, size):
    assert header_size(data) == size


def test_a_stray_byte_before_the_jpeg_frame_header_does_not_skip_the_limit(monkeypatch):
    big = cv2.imencode(".jpg", np.zeros((3000, 4000, 3), np.uint8))[1].tobytes()
    stray = big[:2] + b"\x00" + big[2:]  # libjpeg skips it ("extraneous bytes") and decodes 12 MP
    assert header_size(stray) == (4000, 3000)
    monkeypatch.setenv("ASL_EDGE_MAX_MEGAPIXELS", "5")
    from asl_edge.common import limits
    limits.set_max_megapixels(None)
    with pytest.raises(UserError, match="over the 5 MP limit"):
        decode_rgb(stray, "stray.jpg")
    with pytest.raises(UserError, match="over the 5 MP limit"):
        decode_rgb(_pnm(b"P5", 30000, 40000), "huge.pgm")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_decode_or_give_one_user_error(data):
    try:
        rgb = decode_rgb(data, "x")
    except UserError:
        return
    assert rgb.ndim == 3 and header_size(data) is not None


def test_unrecognised_headers_are_not_decoded():
    sun_raster = b"\x59\xa6\x6a\x95" + b"\x00" * 60
    with pytest.raises(UserError, match="not a JPEG, PNG"):
        decode_rgb(sun_raster, "x.ras")


# --- numbers: finite, in range ----------------------------------------------------------------

@pytest.mark.parametrize("args", [["--threshold", "nan"], ["--threshold", "inf"], ["--timeout", "nan"],
                                  ["--max-megapixels", "inf"], ["--margin", "-inf"]])
def test_non_finite_numbers_are_usage_errors(tmp_path, capfd, model, args):
    res = call(capfd, asl_run, "--model", model, "--camera", tmp_path / "none.mp4", *args)
    assert res.code == 2 and "not a finite number" in res.err or "not in the range" in res.err, res.err
    assert "Traceback" not in res.err


# --- a fresh run over another run ------------------------------------------------------------

def test_a_fresh_run_does_not_overwrite_another_runs_checkpoints(tmp_path, capfd):
    from asl_edge.train import cli as train_cli
    for c in "AB":
        for i in range(2):
            write_image(tmp_path / "data" / c / f"{c}{i}.jpg", size=(40, 40), seed=i)
    ck = tiny_checkpoint(tmp_path / "run" / "last.ckpt", data=[tmp_path / "data"])
    before = ck.read_bytes()
    (tmp_path / "run" / "last.onnx").write_bytes(b"old export")
    res = call(capfd, train_cli.main, "--data", tmp_path / "data", "--out", tmp_path / "run", "--epochs", "1",
               "--no-hand-boxes", "--arch", "efficientnet_lite0", "--weights", "none", "--img-size", "32")
    one_error(res, "already holds a run", "--resume", "--force")
    assert ck.read_bytes() == before and (tmp_path / "run" / "last.onnx").exists()
    res = call(capfd, train_cli.main, "--data", tmp_path / "data", "--out", tmp_path / "run", "--epochs", "1",
               "--no-hand-boxes", "--arch", "efficientnet_lite0", "--weights", "none", "--img-size", "32", "--force")
    assert res.code == 0, res.err
    assert "replacing the run" in res.out and not (tmp_path / "run" / "last.onnx").exists()
    assert ck.read_bytes() != before


# --- the last line is seen even while a helper thread silences native stderr -------------------

def test_error_line_is_seen_while_another_thread_silences_stderr(capfd):
    import threading

    from asl_edge.common.errors import cli_errors
    from asl_edge.common.native_stderr import quiet_native_stderr

    inside, done = threading.Event(), threading.Event()

    def opener():  # like the thread that opens a stream URL
        with quiet_native_stderr():
            inside.set()
            done.wait(10)

    t = threading.Thread(target=opener)
    t.start()
    inside.wait(5)

    @cli_errors
    def command():
        raise UserError("the stream did not open")

    try:
        with pytest.raises(SystemExit) as e:
            command()
    finally:
        done.set()
        t.join()
    assert e.value.code == 2
    assert "error: the stream did not open" in capfd.readouterr().err


# --- environment limits, contract versions, model outputs, zips, boxes.csv, SIGTERM ---------------

@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "lots"])
def test_environment_limits_must_be_positive_finite_numbers(monkeypatch, value):
    from asl_edge.common import limits
    monkeypatch.setenv(limits.MAX_UNZIP_ENV, value)
    with pytest.raises(UserError, match=limits.MAX_UNZIP_ENV):
        limits.max_unzip_bytes()
    monkeypatch.setenv(limits.MAX_PIXELS_ENV, value)
    with pytest.raises(UserError, match=limits.MAX_PIXELS_ENV):
        limits.max_pixels()
    monkeypatch.setenv(limits.MAX_PIXELS_ENV, "")
    assert limits.max_pixels() == int(limits.DEFAULT_MAX_MEGAPIXELS * 1e6)


@pytest.mark.parametrize("version", [0, 99, True, "1", 1.5])
def test_contract_versions_this_asl_edge_cannot_read_are_refused(version):
    d = json.loads(ModelContract().to_json())
    d["version"] = version
    with pytest.raises(UserError, match="version"):
        ModelContract.from_dict(d)


def test_non_finite_model_outputs_are_one_error_not_nan_letters(tmp_path, capfd):
    import onnx
    from onnx import TensorProto, helper

    from asl_edge.runtime.contract import CONTRACT_KEY
    c = ModelContract(classes=("A", "B"), input_size=16)
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 16, 16])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])
    nan = helper.make_tensor("nan", TensorProto.FLOAT, [1, 2], [float("nan"), 0.0])
    pooled = helper.make_node("ReduceMean", ["input"], ["m"], axes=[1, 2, 3], keepdims=0)
    resh = helper.make_node("Reshape", ["m", "shape"], ["m2"])
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 1])
    add = helper.make_node("Add", ["m2", "nan"], ["logits"])
    g = helper.make_graph([pooled, resh, add], "g", [x], [y], initializer=[nan, shape])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    m.metadata_props.add(key=CONTRACT_KEY, value=c.to_json())
    onnx.save(m, str(tmp_path / "nan.onnx"))
    write_image(tmp_path / "img" / "x.jpg", size=(40, 40))
    res = call(capfd, asl_run, "--model", tmp_path / "nan.onnx", tmp_path / "img", "--roi", "full")
    one_error(res, "non-finite scores")
    assert " nan" not in res.out


@pytest.mark.parametrize("row, fragment", [
    ("a.jpg,A,nan,0,10,10", "not a box"), ("a.jpg,A,0,0,inf,10", "not a box"),
    ("a.jpg,A,10,0,5,10", "not a box"), ("a.jpg,A,-3,0,5,10", "not a box"), ("a.jpg,A,x,0,5,10", "expected columns"),
])
def test_boxes_csv_values_are_checked(tmp_path, row, fragment):
    from asl_edge.train.data import load_boxes
    (tmp_path / "boxes.csv").write_text("file,class,x_min,y_min,x_max,y_max\n" + row + "\n")
    with pytest.raises(UserError, match=fragment):
        load_boxes(tmp_path)
    (tmp_path / "boxes.csv").write_bytes(b"file,class,x_min\n\xff\xfe\n")
    with pytest.raises(UserError, match="UTF-8|expected columns"):
        load_boxes(tmp_path)


def test_encrypted_zip_members_are_one_error(tmp_path, monkeypatch):
    import zipfile

    from asl_edge.train import data as D
    monkeypatch.setattr(D, "CACHE_ROOT", tmp_path / "cache")
    z = tmp_path / "data.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("A/a.jpg", b"x" * 100)
    raw = bytearray(z.read_bytes())
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # set the "encrypted" flag in both headers
        i = raw.find(sig)
        off = 6 if sig == b"PK\x03\x04" else 8
        raw[i + off] |= 1
    z.write_bytes(bytes(raw))
    with pytest.raises(UserError, match="cannot extract"):
        D.find_class_root(z, ["A", "B"])
    assert not list((tmp_path / "cache").rglob("*.jpg"))


def test_sigterm_ends_a_command_like_ctrl_c(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    code = ("from asl_edge.common.errors import cli_errors\n"
            "import time\n"
            "@cli_errors\n"
            "def main():\n"
            "    try:\n"
            "        print('ready', flush=True); time.sleep(30)\n"
            "    finally:\n"
            "        open(r'%s', 'w').write('cleaned')\n"
            "main()\n") % (tmp_path / "cleanup")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 130 and err.strip() == "interrupted" and (tmp_path / "cleanup").read_text() == "cleaned"
