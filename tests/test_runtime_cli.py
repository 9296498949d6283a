"""asl-run files mode and its one-line errors, run as a subprocess on tiny ONNX models."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from asl_edge.runtime.model import DEFAULT_MODEL
from onnx_fixtures import (BLACK, BLUE, GREEN, RED, assert_one_line_error, make_tiny_onnx, run_cli,
                           write_image, write_video)


@pytest.fixture(scope="module")
def color_model(tmp_path_factory):
    return make_tiny_onnx(tmp_path_factory.mktemp("models") / "color.onnx", kind="color")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Class folders: one solid colour each (classified right), plus a noise image in A/
    (classified "nothing": wrong), and one loose image outside any class folder."""
    root = tmp_path_factory.mktemp("data")
    for rgb, name in ((RED, "A"), (GREEN, "B"), (BLUE, "C"), (BLACK, "nothing")):
        write_image(root / "set" / name / "solid.png", rgb)
    write_image(root / "set" / "A" / "sub" / "noise.jpg")  # recursive; parent "sub" is no class
    write_image(root / "set" / "A" / "noise.jpg")
    write_image(root / "loose.png", RED)
    return root


def stdout_lines(result):
    return result.stdout.strip().splitlines()


def test_files_mode_prints_a_line_per_image_and_accuracy(color_model, dataset):
    r = run_cli("--model", color_model, dataset / "set", dataset / "loose.png", "--top-k", "2")
    assert r.returncode == 0, r.stderr
    lines = stdout_lines(r)
    preds, summary = lines[:-4], lines[-3:]
    assert lines[-4].startswith(f"model {color_model}: 6 classes, 64px float input")
    assert len(preds) == 7
    # no hand in these plain images: each is classified whole, and says so
    assert any("A/solid.png  A 1.000  top2: A 1.000" in p and p.endswith("no hand (whole image)  true A ok")
               for p in preds)
    assert any(p.startswith(str(dataset / "loose.png") + "  A ") and "true" not in p for p in preds)
    assert summary[0].startswith("summary: 7 images in ") and "skipped 0 unreadable" in summary[0]
    assert summary[1].startswith("hands: found in 0/7 images by hand landmarks (ONNX, full, zoomed search)")
    assert summary[2].startswith("accuracy: 0.8000 (4/5 ")
    assert "Traceback" not in r.stderr


def test_json_lines_and_batching(color_model, dataset):
    runs = [run_cli("--model", color_model, dataset / "set", "--json", "--batch-size", bs) for bs in (16, 2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in stdout_lines(runs[0])]
    assert len(records) == 6
    for rec in records:
        assert set(rec) >= {"file", "label", "prob", "top_k"}
        assert len(rec["top_k"]) == 3 and rec["top_k"][0] == [rec["label"], rec["prob"]]
        assert ("true" in rec) == ("/sub/" not in rec["file"])
    assert {rec["true"]: rec["label"] for rec in records if rec["file"].endswith("solid.png")} == \
        {"A": "A", "B": "B", "C": "C", "nothing": "nothing"}
    assert "accuracy: 0.8000" in runs[0].stderr  # the summary stays out of the JSON stream
    assert [json.loads(line) for line in stdout_lines(runs[1])] == records  # batches of 2 agree


def test_video_input_every_nth_frame(color_model, tmp_path):
    video = write_video(tmp_path / "clip.avi", [RED] * 10 + [GREEN] * 10, size=96)
    r = run_cli("--model", color_model, video, "--every", "5", "--json")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in stdout_lines(r)]
    assert [(rec["frame"], rec["label"]) for rec in records] == [(0, "A"), (5, "A"), (10, "B"), (15, "B")]
    assert "4 images (4 of them video frames)" in r.stderr


def test_uint8_input_model(tmp_path, dataset):
    from asl_edge.runtime.contract import ModelContract
    from onnx_fixtures import COLOR_CLASSES

    model = make_tiny_onnx(tmp_path / "u8.onnx", kind="color",
                           contract=ModelContract(classes=COLOR_CLASSES, input_size=48, input_format="uint8"))
    r = run_cli("--model", model, dataset / "set")
    assert r.returncode == 0, r.stderr
    assert "accuracy: 0.8000 (4/5 " in r.stdout and "48px uint8 input" in r.stdout


def test_runtime_never_imports_torch_or_onnx(color_model, dataset):
    code = ("import sys\n"
            "from asl_edge.runtime import cli\n"
            "try:\n"
            f"    cli.main(['--model', {str(color_model)!r}, '--threads', '1', {str(dataset / 'set')!r}])\n"
            "except SystemExit as e:\n"
            "    assert not e.code, e.code\n"
            "print('LOADED', sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'torchvision', 'onnx'}))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "LOADED []"


def test_entry_points_answer_help():
    r = subprocess.run([sys.executable, "-m", "asl_edge.runtime.cli", "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--camera" in r.stdout and "--threshold" in r.stdout
    script = shutil.which("asl-run")
    if script:
        assert subprocess.run([script, "--help"], capture_output=True, timeout=60).returncode == 0


# --- bad inputs: one line on stderr, exit 2 --------------------------------------------

def test_missing_model(dataset, tmp_path):
    assert_one_line_error(run_cli("--model", tmp_path / "nope.onnx", dataset / "loose.png"),
                          "model file not found")


def test_corrupt_model(dataset, tmp_path):
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(os.urandom(4096))
    assert_one_line_error(run_cli("--model", bad, dataset / "loose.png"), "cannot load ONNX model")


def test_onnx_without_contract(dataset, tmp_path):
    model = make_tiny_onnx(tmp_path / "plain.onnx", with_contract=False)
    assert_one_line_error(run_cli("--model", model, dataset / "loose.png"), "not an asl-edge model")


@pytest.mark.skipif(DEFAULT_MODEL.is_file(), reason="a default model is shipped")
def test_no_model_and_no_default(dataset):
    assert_one_line_error(run_cli(dataset / "loose.png"), "--model")


def test_missing_input(color_model, tmp_path):
    assert_one_line_error(run_cli("--model", color_model, tmp_path / "missing.png"), "input not found")


def test_unsupported_file_type(color_model, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert_one_line_error(run_cli("--model", color_model, notes), "unsupported file type .txt")


def test_corrupt_image_named_directly(color_model, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(os.urandom(700))
    assert_one_line_error(run_cli("--model", color_model, bad), "cannot decode image")


def test_corrupt_image_in_folder_is_skipped(color_model, tmp_path):
    write_image(tmp_path / "B" / "ok.png", GREEN)
    (tmp_path / "B" / "bad.jpg").write_bytes(os.urandom(700))
    r = run_cli("--model", color_model, tmp_path / "B")
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "bad.jpg" in warnings[0] and "Traceback" not in r.stderr
    assert "summary: 1 images" in r.stdout and "skipped 1 unreadable" in r.stdout
    assert "accuracy: 1.0000 (1/1 " in r.stdout


def test_camera_that_will_not_open(color_model):
    line = assert_one_line_error(run_cli("--model", color_model, "--camera", "99", "--no-display"),
                                 "camera 99", "--camera")
    assert "video file" in line


def test_camera_and_inputs_together(color_model, dataset):
    assert_one_line_error(run_cli("--model", color_model, "--camera", "0", dataset / "loose.png"), "not both")
