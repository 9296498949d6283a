"""Issue 27, the causes left after round 2: usage mistakes in one line for every CLI, camera indexes
str.isdigit takes, FIFOs named as input, oversized or deeply nested metadata, capture runs that share a
folder, --classes A,A,A, --views and --float-convs out of range."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from asl_edge.runtime.contract import ModelContract
from asl_edge.common.errors import UserError
from asl_edge.runtime.model import export_settings
from asl_edge.common.safeio import read_image_rgb

from conftest import assert_one_line_error, run_cli
from faults import call, one_error
from onnx_fixtures import make_tiny_onnx

CLIS = ["asl_edge.runtime.cli", "asl_edge.runtime.enroll", "asl_edge.runtime.capture", "asl_edge.train.cli",
        "asl_edge.export.cli", "asl_edge.export.hand_models", "asl_edge.benchmarks.cli", "asl_edge.benchmarks.speller",
        "asl_edge.benchmarks.enroll"]


@pytest.mark.parametrize("module", CLIS)
def test_an_unknown_option_is_one_line_with_the_help_hint(module, capfd):
    import importlib

    main = importlib.import_module(module).main
    main = getattr(main, "__wrapped__", main)  # asl-run's main() calls its click command
    command = main if hasattr(main, "main") else importlib.import_module(module).cli
    res = call(capfd, command, "--no-such-option", prog=module)  # in-process: the same click class as the script
    one_error(res, "No such option", "--help")
    assert "Usage:" not in res.err


def test_an_unknown_option_from_a_console_script_process():
    proc = run_cli("asl_edge.runtime.cli", "--no-such-option")
    assert_one_line_error(proc, "No such option", "(see ")
    assert proc.returncode == 2 and "Usage:" not in proc.stderr


def test_a_value_out_of_range_is_one_line_and_help_still_works():
    assert_one_line_error(run_cli("asl_edge.runtime.cli", "--threshold", "2", "x.jpg"), "--threshold", "asl")
    assert_one_line_error(run_cli("asl_edge.train.cli", "--data", ".", "--views", "1000"), "--views")
    proc = run_cli("asl_edge.runtime.enroll", "--help")
    assert proc.returncode == 0 and "Usage:" in proc.stdout and "--profile" not in proc.stderr


@pytest.mark.parametrize("spec, fragment", [("²", "camera source not found"), ("٣", "camera source not found"),
                                            ("99999999999999999999999", "out of range")])
def test_camera_indexes_that_are_not_plain_digits_or_too_large_are_one_line(spec, fragment):
    assert_one_line_error(run_cli("asl_edge.runtime.cli", "--camera", spec, "--no-display", timeout=60), fragment)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_fifo_named_as_input_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    assert_one_line_error(run_cli("asl_edge.runtime.cli", fifo, timeout=60), "not a regular file")
    with pytest.raises(UserError, match="not a regular file"):
        read_image_rgb(fifo)  # the decode path itself, for a FIFO found inside a folder


def test_an_oversized_contract_or_deeply_nested_settings_are_refused_cheaply():
    with pytest.raises(UserError, match="more than a contract"):
        ModelContract.from_json(json.dumps({"classes": ["A"] * 200_000}))
    assert export_settings({"asl_edge.export": "[" * 50_000 + "]" * 50_000}) == {}
    assert export_settings({"asl_edge.export": json.dumps({"precision": "int8", "pad": "x" * 200_000})}) == {}


def test_float_convs_that_leave_nothing_to_quantize_are_refused(tmp_path):
    from asl_edge.export.quantize import quantize_int8

    model = make_tiny_onnx(tmp_path / "tiny.onnx")
    calib = np.zeros((4, 3, 64, 64), np.float32)
    with pytest.raises(UserError, match="--float-convs 99"):
        quantize_int8(model, tmp_path / "tiny.int8.onnx", calib, float_convs=99)
    assert not (tmp_path / "tiny.int8.onnx").exists()


def _clip(path, frames=30):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    writer.release()
    return path


def test_two_captures_into_one_folder_keep_every_image_and_a_class_named_twice_counts_once(tmp_path):
    video = _clip(tmp_path / "clip.avi")
    out = tmp_path / "mine"
    args = ("--camera", video, "--out", out, "--per-class", "3", "--countdown", "0", "--interval", "0",
            "--no-display", "--roi", "0.6")
    with ThreadPoolExecutor(2) as pool:  # at the same time: both number their images from one folder
        procs = list(pool.map(lambda _: run_cli("asl_edge.runtime.capture", *args, "--classes", "A,A,A"), range(2)))
    for p in procs:
        assert p.returncode == 0, p.stderr
        assert "for 1/1 classes" in p.stdout
    names = sorted(f.name for f in (out / "A").iterdir())
    assert names == [f"A_capture_{i:04d}.jpg" for i in range(1, 7)]  # 3 + 3, none overwritten


def _endless_loop_model(path, classes=("A", "B", "C"), size=32, on_bright=False):
    """A valid asl-edge file whose graph runs a Loop of 2^62 trips before its logits (on_bright: only for an
    image with a bright pixel, so the blank warm-up frame ends and a real frame later does not)."""
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h

    from asl_edge.runtime.contract import CONTRACT_KEY

    body = h.make_graph(
        [h.make_node("Add", ["acc_in", "one"], ["acc_out"]), h.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body", [h.make_tensor_value_info("i", T.INT64, []), h.make_tensor_value_info("cond_in", T.BOOL, []),
                 h.make_tensor_value_info("acc_in", T.FLOAT, [1])],
        [h.make_tensor_value_info("cond_out", T.BOOL, []), h.make_tensor_value_info("acc_out", T.FLOAT, [1])],
        [h.make_tensor("one", T.FLOAT, [1], [1.0])])
    nodes = [h.make_node("ReduceMax", ["image"], ["peak"], keepdims=0),
             h.make_node("Greater", ["peak", "half"], ["bright"]), h.make_node("Cast", ["bright"], ["n"], to=T.INT64),
             h.make_node("Mul", ["n", "many"], ["bright_trips"])] if on_bright else []
    nodes += [h.make_node("Loop", ["bright_trips" if on_bright else "trips", "cond", "acc0"], ["acc"], body=body),
             h.make_node("ReduceMean", ["image"], ["m"], keepdims=0, axes=[1, 2, 3]),
             h.make_node("Unsqueeze", ["m", "ax"], ["m1"]), h.make_node("Mul", ["m1", "w"], ["z"]),
             h.make_node("Add", ["z", "acc"], ["logits"])]
    inits = [h.make_tensor("trips", T.INT64, [], [2 ** 62]), h.make_tensor("cond", T.BOOL, [], [True]),
             h.make_tensor("many", T.INT64, [], [2 ** 62]), h.make_tensor("half", T.FLOAT, [], [0.5]),
             h.make_tensor("acc0", T.FLOAT, [1], [0.0]), h.make_tensor("ax", T.INT64, [1], [1]),
             h.make_tensor("w", T.FLOAT, [1, len(classes)], [1.0] * len(classes))]
    graph = h.make_graph(nodes, "endless", [h.make_tensor_value_info("image", T.FLOAT, ["N", 3, size, size])],
                         [h.make_tensor_value_info("logits", T.FLOAT, ["N", len(classes)])], inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 13)])
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key, entry.value = CONTRACT_KEY, ModelContract(classes=classes, input_size=size).to_json()
    onnx.save(model, str(path))
    return path


def test_a_graph_that_never_ends_stops_at_the_bound_and_on_ctrl_c(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    model = _endless_loop_model(tmp_path / "endless.onnx")
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), np.zeros((40, 40, 3), np.uint8))
    t0 = time.monotonic()
    proc = run_cli("asl_edge.runtime.cli", image, "--model", model, "--roi", "full",
                   env={"ASL_EDGE_RUN_LIMIT_S": "2"}, timeout=60)
    assert_one_line_error(proc, "did not finish one inference in 2 s")
    assert time.monotonic() - t0 < 30 and "terminate called" not in proc.stderr
    # a graph that ends on the blank warm-up frame and never on a real one: every inference is bounded
    bright = tmp_path / "bright.png"
    cv2.imwrite(str(bright), np.full((40, 40, 3), 255, np.uint8))
    later = _endless_loop_model(tmp_path / "later.onnx", on_bright=True)
    for args in ([image], [bright]):
        proc = run_cli("asl_edge.runtime.cli", *args, "--model", later, "--roi", "full",
                       env={"ASL_EDGE_RUN_LIMIT_S": "2"}, timeout=60)
        if args == [image]:
            assert proc.returncode == 0, proc.stderr
        else:
            assert_one_line_error(proc, "did not finish one inference in 2 s")
    # Ctrl-C while it runs: "interrupted", exit 130, no abort from a thread left inside onnxruntime
    p = subprocess.Popen([sys.executable, "-m", "asl_edge.runtime.cli", str(image), "--model", str(model), "--roi",
                          "full"], stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130 and err.strip().splitlines()[-1] == "interrupted", err
    assert "terminate called" not in err and "Traceback" not in err


@pytest.mark.skipif(os.name != "posix", reason="byte file names are a POSIX matter")
def test_file_names_that_are_not_utf8_train_and_export(tmp_path):
    data = tmp_path / "data"
    for c in "AB":
        (data / c).mkdir(parents=True)
        for i in range(5):
            ok, buf = cv2.imencode(".png", np.full((40, 40, 3), 50 * i + (c == "B") * 20, np.uint8))
            with open(os.fsencode(data / c) + b"/img\xff" + str(i).encode() + b".png", "wb") as f:
                f.write(buf.tobytes())
    out = tmp_path / "run"
    proc = run_cli("asl_edge.train.cli", "--data", data, "--arch", "efficientnet_lite0", "--img-size", "64", "--epochs",
                   "1", "--out", out, "--workers", "0", "--cache-dir", tmp_path / "cache")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert b"\xff" in (out / "split.csv").read_bytes()  # the names as they are on disk
    proc = run_cli("asl_edge.runtime.cli", data, "--roi", "full")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr


def test_written_files_follow_the_umask_not_mkstemps_0600(tmp_path):
    from asl_edge.common.fileio import atomic_write

    old = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "out.json", lambda tmp: open(tmp, "w").write("{}"))
        assert path.stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        assert atomic_write(tmp_path / "private.json", lambda tmp: open(tmp, "w").write("{}")).stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_a_left_out_source_that_is_also_trained_on_is_refused(tmp_path, capfd):
    from asl_edge.train.cli import main

    a = tmp_path / "a"
    (a / "A").mkdir(parents=True)
    for data in ([a, a], [tmp_path, a], [a, a / "A"]):
        args = [x for d in data for x in ("--data", str(d))] + ["--val-source", "0", "--out", str(tmp_path / "run")]
        res = call(capfd, main, *args, prog="asl-train")
        one_error(res, "also trained on")
    assert not (tmp_path / "run").exists()


def test_an_empty_cache_variable_means_the_default_cache(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "from asl_edge.train.data import CACHE_ROOT; print(CACHE_ROOT)"],
                          capture_output=True, text=True, env={**os.environ, "ASL_EDGE_CACHE": ""}, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip().endswith(os.path.join(".cache", "asl-edge"))


@pytest.mark.parametrize("code, expected", [(13, "no permission"), (30, "no permission"), (28, "the disk is full")])
def test_a_write_error_names_its_errno_before_guessing_from_free_space(code, expected):
    from asl_edge.common.fileio import write_error

    # /proc reports 0 bytes free: a permission error there is not a full disk
    e = OSError(code, os.strerror(code))
    assert expected in str(write_error("/proc/asl-edge-test/out.onnx", e))


@pytest.mark.parametrize("field, value, says", [
    ("split", "val.csv", "split is not a mapping"),
    ("split", {"val_files": "a.jpg"}, "split.val_files"),
    ("split", {"val_files": ["a.jpg"], "val_labels": ["A"]}, "split.val_labels"),
    ("split", {"val_files": ["a.jpg", "b.jpg"], "val_labels": [0]}, "differ in length"),
    ("config", {"data": "photos"}, "config.data"),
    ("config", {"epochs": "6"}, "config.epochs"),
    ("config", {"batch_size": -3}, "config.batch_size"),
    ("epoch", -1, "epoch is negative"),
])
def test_checkpoint_fields_of_the_wrong_shape_are_refused_in_one_line(tmp_path, field, value, says):
    import torch

    from asl_edge.train.checkpoint import FORMAT, load_checkpoint

    ckpt = {"format": FORMAT, "epoch": 1, "model_state_dict": {}, "optimizer_state_dict": {}, "train_loss": 0.5,
            "arch": "resnet50", "contract": ModelContract().to_dict(), "config": {"epochs": 3}}
    ckpt[field] = value
    path = tmp_path / "edited.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(UserError, match=says):
        load_checkpoint(path)
    ckpt[field] = 2 if field == "epoch" else {}
    torch.save(ckpt, path)
    assert load_checkpoint(path)["format"] == FORMAT


def test_a_full_disk_while_bench_writes_its_arrays_is_an_error_not_sigbus(tmp_path, monkeypatch):
    import errno

    from asl_edge.benchmarks import bench

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    wrote = []
    with pytest.raises(OSError) as got:
        bench._write_npy(tmp_path / "data.npy", list(range(3)), lambda s: wrote.append(s) or np.zeros((len(s), 2)),
                         (2,), np.float32)
    assert got.value.errno == errno.ENOSPC and wrote == []  # refused before any write through the mapping


def test_files_of_other_formats_are_named_not_misreported(tmp_path):
    import struct
    import zipfile

    from asl_edge.train.checkpoint import load_checkpoint

    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    with zipfile.ZipFile(tmp_path / "script.pt", "w") as z:
        z.writestr("script/code/__torch__/model.py", "def forward(self): pass")
        z.writestr("script/constants.pkl", b"")
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07")
    for name, kind in (("m.safetensors", "a safetensors file"), ("script.pt", "TorchScript"),
                       ("model.onnx", "an ONNX file")):
        with pytest.raises(UserError, match=kind) as got:
            load_checkpoint(tmp_path / name)
        assert "pip install" not in str(got.value) and "Could this error message" not in str(got.value)


def test_reports_are_valid_json_whatever_the_numbers():
    """One writer for every report and --json line: NaN and inf (numpy's too) become null, never bare NaN."""
    import json

    import numpy as np

    from asl_edge.common.fileio import json_text

    text = json_text({"a": float("nan"), "b": [np.float32("inf"), np.float64(-np.inf), 1.5],
                      "c": np.array([1.0, np.nan]), "d": (np.int64(3), "x"), "e": {"f": np.bool_(True)}})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == \
        {"a": None, "b": [None, None, 1.5], "c": [1.0, None], "d": [3, "x"], "e": {"f": True}}


def test_a_video_damaged_mid_stream_keeps_ffmpeg_off_the_terminal(tmp_path):
    """FFmpeg's decoder errors (damaged H.264 frames) come from OpenCV's threads: kept off stderr and stdout;
    the frames FFmpeg conceals are classified, and --json stays JSON."""
    import json
    import random

    from conftest import REPO

    data = bytearray((REPO / "scripts" / "demo_clip" / "hello_lolzorus.mp4").read_bytes())
    rng = random.Random(1)
    for _ in range(40):  # the second half of the stream, before the index at its end
        data[rng.randrange(len(data) // 2, len(data) - 4000)] ^= 0x55
    video = tmp_path / "damaged.mp4"
    video.write_bytes(bytes(data))
    proc = run_cli("asl_edge.runtime.cli", video, "--every", "10", "--json", "--roi", "full")
    assert proc.returncode == 0, proc.stderr
    assert "h264" not in proc.stderr and "error while decoding" not in proc.stderr, proc.stderr
    assert len([json.loads(line) for line in proc.stdout.splitlines()]) == 27
    # the damage is real: asked for FFmpeg's errors, OpenCV prints them
    loud = run_cli("asl_edge.runtime.cli", video, "--every", "10", "--roi", "full", env={"OPENCV_FFMPEG_LOGLEVEL": "16"})
    assert "error while decoding" in loud.stdout + loud.stderr
