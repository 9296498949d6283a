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
from asl_edge.runtime.errors import UserError, has_control, printable
from asl_edge.runtime.safeio import decode_rgb, header_size
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
    from asl_edge.runtime import limits
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

    from asl_edge.runtime.errors import cli_errors
    from asl_edge.runtime.safeio import quiet_native_stderr

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
