"""The fault catalogue of issue 13, asl-run's rows (streams, flags, images, the model contract): each
ends in one `error:` line (exit 2, 130 for Ctrl-C) or a counted skip, with no traceback or lost result."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from asl_edge.runtime import cli as run_cli_module
from asl_edge.runtime.camera import LatestFrameSource
from asl_edge.runtime.contract import ModelContract
from faults import call, catalogue, contract_json, one_error, png_header_only, set_contract
from onnx_fixtures import RED, TORCH_FREE_RUNNER, make_tiny_onnx, write_image, write_video

asl_run = run_cli_module.main
CASES, case = catalogue()

# --- asl-run: streams, threads, flags ------------------------------------------------------

@case
def stalled_stream_keeps_summary_and_text(tmp_path, capfd, monkeypatch, model, ckpt):
    release = threading.Event()
    state = {"in_grab": False, "released_in_grab": False, "n": 0}
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[:] = RED[::-1]

    def grab():  # 12 red frames, then a stream that stops answering (like a dead RTSP server)
        state["n"] += 1
        if state["n"] > 12:
            state["in_grab"] = True
            release.wait(5)
            state["in_grab"] = False
            return False, None
        time.sleep(0.01)
        return True, frame.copy()

    def fake_release():
        state["released_in_grab"] = state["in_grab"]

    monkeypatch.setattr(run_cli_module, "open_source",
                        lambda spec, timeout: LatestFrameSource("stream test", grab, fake_release, timeout))
    res = call(capfd, asl_run, "--camera", "rtsp://x", "--model", model, "--no-display", "--timeout", "0.5",
               "--hold", "3")
    release.set()
    one_error(res, "delivered no frame", "--timeout")
    assert "summary:" in res.out and "text: 'A'" in res.out, res.out
    time.sleep(0.1)
    assert not state["released_in_grab"]  # the capture was never released under a blocked read


@case
def threads_capped(tmp_path, capfd, monkeypatch, model, ckpt):
    img = write_image(tmp_path / "A" / "a.png", RED)
    res = call(capfd, asl_run, img, "--model", model, "--threads", "100000")
    assert res.code == 0, res.err
    assert "capped at" in res.err


@case
def hold_nan_rejected(tmp_path, capfd, monkeypatch, model, ckpt):
    video = write_video(tmp_path / "v.avi", [RED] * 3, size=64)
    one_error(call(capfd, asl_run, "--camera", video, "--model", model, "--no-display", "--hold", "nans"), "hold")


@case
def roi_typo_rejected_in_files_mode(tmp_path, capfd, monkeypatch, model, ckpt):
    img = write_image(tmp_path / "a.png", RED)
    one_error(call(capfd, asl_run, img, "--model", model, "--roi", "abc"), "--roi")


@case
def zero_frame_video_camera_mode(tmp_path, capfd, monkeypatch, model, ckpt):
    video = write_video(tmp_path / "empty.avi", [], size=64)
    one_error(call(capfd, asl_run, "--camera", video, "--model", model, "--no-display"))


@case
def zero_frame_video_files_mode(tmp_path, capfd, monkeypatch, model, ckpt):
    video = write_video(tmp_path / "empty.avi", [], size=64)
    one_error(call(capfd, asl_run, video, "--model", model))


@case
def ctrl_c_while_a_stream_opens(tmp_path, capfd, monkeypatch, model, ckpt):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)  # accepts, never answers: FFmpeg's open would block for its whole timeout
    port = srv.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", TORCH_FREE_RUNNER, "--camera", f"http://127.0.0.1:{port}/v.mjpg",
                             "--model", model, "--no-display", "--timeout", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.5)  # interpreter start, then inside the open
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        waited = time.perf_counter() - t0
    finally:
        proc.kill()
        srv.close()
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Aborted" not in err and "Traceback" not in err and waited < 3, (err, waited)


# --- images ------------------------------------------------------------------------------

@case
def huge_png_named_directly(tmp_path, capfd, monkeypatch, model, ckpt):
    t0 = time.perf_counter()
    big = png_header_only(tmp_path / "big.png", 60000, 60000)
    one_error(call(capfd, asl_run, big, "--model", model), "3600 MP", "limit")
    assert time.perf_counter() - t0 < 10  # refused from the header, never decoded


@case
def huge_png_in_folder_skipped_and_counted(tmp_path, capfd, monkeypatch, model, ckpt):
    png_header_only(tmp_path / "d" / "A" / "big.png", 30000, 30000)
    write_image(tmp_path / "d" / "A" / "ok.png", RED)
    res = call(capfd, asl_run, tmp_path / "d", "--model", model)
    assert res.code == 0 and "skipped 1 unreadable" in res.out, res.out + res.err


@case
def pixel_limit_can_be_raised(tmp_path, capfd, monkeypatch, model, ckpt):
    img = write_image(tmp_path / "A" / "a.png", RED, size=(400, 300))  # 0.12 MP
    one_error(call(capfd, asl_run, img, "--model", model, "--max-megapixels", "0.1"), "0.1 MP limit")
    assert call(capfd, asl_run, img, "--model", model, "--max-megapixels", "1").code == 0
    assert "ASL_EDGE_MAX_MEGAPIXELS" not in os.environ  # call() restores the environment


@case
def truncated_jpeg_in_folder_is_quiet(tmp_path, capfd, monkeypatch, model, ckpt):
    good = write_image(tmp_path / "d" / "A" / "ok.jpg", size=(200, 200))
    data = good.read_bytes()
    (tmp_path / "d" / "A" / "cut.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / "d" / "A" / "junk.jpg").write_bytes(os.urandom(500))
    res = call(capfd, asl_run, tmp_path / "d", "--model", model)
    assert res.code == 0, res.err
    assert "Corrupt JPEG" not in res.err and "Premature end" not in res.err, res.err  # libjpeg kept off
    m = [l for l in res.out.splitlines() if l.startswith("summary:")]
    skipped = int(m[0].split("skipped ")[1].split()[0])
    images = int(m[0].split("summary: ")[1].split()[0])
    assert skipped + images == 3 and skipped >= 1


@case
def tiny_image_named_directly(tmp_path, capfd, monkeypatch, model, ckpt):
    img = write_image(tmp_path / "t.png", RED, size=(4, 4))
    one_error(call(capfd, asl_run, img, "--model", model), "smaller than 8 px")


@case
def random_bytes_named_directly(tmp_path, capfd, monkeypatch, model, ckpt):
    p = tmp_path / "x.jpg"
    p.write_bytes(os.urandom(3000))
    one_error(call(capfd, asl_run, p, "--model", model), "cannot decode")


@case
def sparse_6gb_file_is_not_read(tmp_path, capfd, monkeypatch, model, ckpt):
    p = tmp_path / "huge.jpg"
    with open(p, "wb") as f:
        f.truncate(6 << 30)  # sparse: no disk used
    one_error(call(capfd, asl_run, p, "--model", model), "MB limit")


@case
def training_scan_and_load_agree_on_bad_images(tmp_path, capfd, monkeypatch, model, ckpt):
    from asl_edge.train import data as D

    for c in "AB":
        write_image(tmp_path / c / f"{c}1.jpg", size=(64, 64))
    good = (tmp_path / "A" / "A1.jpg").read_bytes()
    (tmp_path / "A" / "A2.jpg").write_bytes(good[: len(good) // 2])
    write_image(tmp_path / "B" / "B2.png", size=(5, 5))
    png_header_only(tmp_path / "B" / "B3.png", 20000, 20000)
    samples, report = D.scan_source(tmp_path, ["A", "B"])
    for s in samples:
        D.load_image(s)  # whatever the scan kept decodes in training
    assert len(samples) + len(report.unreadable) == 5 and len(report.unreadable) >= 2


# --- the model contract --------------------------------------------------------------------

@case
def contract_with_40_classes_on_6_way_graph(tmp_path, capfd, monkeypatch, model, ckpt):
    bad = set_contract(model, tmp_path / "m.onnx", contract_json(classes=tuple(f"c{i}" for i in range(40))))
    one_error(call(capfd, asl_run, write_image(tmp_path / "a.png", RED), "--model", bad), "does not match", "40 classes")


@case
def contract_with_5_classes_on_6_way_graph(tmp_path, capfd, monkeypatch, model, ckpt):
    bad = set_contract(model, tmp_path / "m.onnx", contract_json(classes=("A", "B", "C", "D", "E")))
    one_error(call(capfd, asl_run, write_image(tmp_path / "a.png", RED), "--model", bad), "does not match")


@case
def contract_input_size_wrong_for_graph(tmp_path, capfd, monkeypatch, model, ckpt):
    # the colour model averages any size, so use a fixed-size conv graph
    fixed = make_tiny_onnx(tmp_path / "r.onnx", ModelContract(classes=("A", "B"), input_size=32))
    import onnx

    m = onnx.load(str(fixed))
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 32
    m.graph.input[0].type.tensor_type.shape.dim[3].dim_value = 32
    onnx.save(m, str(fixed))
    bad = set_contract(fixed, tmp_path / "m.onnx", ModelContract(classes=("A", "B"), input_size=64).to_json())
    one_error(call(capfd, asl_run, write_image(tmp_path / "a.png", RED), "--model", bad), "input shape")


@case
def contract_input_size_not_a_number(tmp_path, capfd, monkeypatch, model, ckpt):
    bad = set_contract(model, tmp_path / "m.onnx", contract_json().replace('"input_size": 64', '"input_size": "big"'))
    one_error(call(capfd, asl_run, write_image(tmp_path / "a.png", RED), "--model", bad), "input_size")


@case
def contract_is_a_string(tmp_path, capfd, monkeypatch, model, ckpt):
    bad = set_contract(model, tmp_path / "m.onnx", '"just text"')
    one_error(call(capfd, asl_run, write_image(tmp_path / "a.png", RED), "--model", bad), "malformed model contract")


@case
def contract_says_uint8_on_float_graph(tmp_path, capfd, monkeypatch, model, ckpt):
    bad = set_contract(model, tmp_path / "m.onnx", contract_json(input_format="uint8"))
    one_error(call(capfd, asl_run, write_image(tmp_path / "a.png", RED), "--model", bad), "input type")


@pytest.mark.parametrize("name", list(CASES))
def test_fault(name, tmp_path, capfd, monkeypatch, model, ckpt):
    CASES[name](tmp_path, capfd, monkeypatch, model, ckpt)
