"""The found hand at work: the camera region's smoothing and fallback, the overlay, and asl-run and
asl-capture cropping the hand (tests/test_hands.py: finding it)."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from asl_edge.runtime.camera import GuideBox
from asl_edge.runtime.hands import HandFinder, HandRoi
from asl_edge.runtime.overlay import CYAN, draw_overlay
from conftest import clear_photo, iou, paste, photos
from onnx_fixtures import assert_one_line_error, make_tiny_onnx, run_cli

# --- the camera region: smoothing and fallback ----------------------------------------------

class ScriptedFinder(HandFinder):
    """Returns the given square boxes (or None) one per call."""

    name = "scripted"

    def __init__(self, boxes):
        self.boxes, self.hand, self.margin = list(boxes), None, 0.25

    def locate(self, rgb):
        from asl_edge.runtime.hands.roi import FoundHand

        square = self.boxes.pop(0)
        return None if square is None else FoundHand(None, square, square)


def test_hand_roi_smooths_keeps_and_falls_back():
    frame = np.zeros((480, 640, 3), np.uint8)
    guide = GuideBox().box(640, 480)
    boxes = [(100, 100, 100, 100), (120, 100, 100, 100), None, None, (300, 300, 100, 100)] + [None] * 4
    roi = HandRoi(ScriptedFinder(boxes), GuideBox(), alpha=0.5, keep=2)
    assert roi.box(frame) == (100, 100, 200, 200) and roi.found           # first sight: no smoothing
    assert roi.box(frame) == (110, 100, 210, 200)                          # halfway to the new box
    assert roi.box(frame) == (110, 100, 210, 200) and roi.found            # missed: keep the last box
    assert roi.box(frame) == (110, 100, 210, 200) and roi.found
    assert roi.box(frame) == (300, 300, 400, 400)                          # a far jump is taken at once
    assert [roi.box(frame) for _ in range(2)] == [(300, 300, 400, 400)] * 2
    assert roi.box(frame) == guide and not roi.found                       # lost: the guide box
    assert roi.box(frame) == guide and not roi.found


# --- overlay ----------------------------------------------------------------------------------

def test_overlay_marks_the_found_hand_and_its_landmarks():
    box = (100, 100, 200, 200)
    top = [("A", 0.9), ("B", 0.05)]
    pts = np.stack([np.linspace(120, 180, 21), np.linspace(110, 190, 21)], 1)
    frames = {}
    for key, hand, lm in (("none", None, None), ("box", True, None), ("points", True, pts), ("guide", False, None)):
        frames[key] = draw_overlay(np.full((480, 640, 3), 90, np.uint8), box, top, fps=10, text="",
                                   threshold=0.7, hand=hand, landmarks=lm)
    cyan = lambda f: int(np.all(f == CYAN, axis=-1).sum())  # noqa: E731
    assert cyan(frames["none"]) == 0 and cyan(frames["box"]) > 300
    assert cyan(frames["points"]) > cyan(frames["box"]) + 100
    assert (frames["guide"] != frames["none"]).any() and cyan(frames["guide"]) == 0  # "no hand" label only


# --- the CLI ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def color_model(tmp_path_factory):
    return make_tiny_onnx(tmp_path_factory.mktemp("models") / "color.onnx", kind="color")


def test_cli_files_mode_crops_the_hand_by_default(color_model, tmp_path):
    rgb, true = photos(1)[0]
    cv2.imwrite(str(tmp_path / "hand.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "plain.png"), np.full((200, 300, 3), 90, np.uint8))
    cv2.imwrite(str(tmp_path / "dot.png"), np.full((1, 1, 3), 90, np.uint8))
    cv2.imwrite(str(tmp_path / "gray.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    r = run_cli("--model", color_model, tmp_path, "--json")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    recs = {Path(rec["file"]).name: rec for rec in map(json.loads, r.stdout.splitlines())}
    assert recs["plain.png"]["hand"] is None and "gray.png" in recs
    # a 1x1 image is too small to classify: skipped and counted, like an unreadable file
    assert "dot.png" not in recs and "skipped 1 unreadable" in r.stderr
    x, y, w, h = recs["hand.png"]["hand"]
    assert w == h and iou((x, y, w, h), true) > 0.3
    found = 1 + (recs["gray.png"]["hand"] is not None)
    assert f"hands: found in {found}/3 images" in r.stderr
    r = run_cli("--model", color_model, tmp_path, "--json", "--roi", "full")
    assert r.returncode == 0 and all("hand" not in json.loads(line) for line in r.stdout.splitlines())


def test_cli_no_zoom_searches_only_the_whole_frame(color_model, tmp_path):
    plain, zoomed = HandFinder(video=False, zoom=False), HandFinder(video=False)
    for rgb, _ in photos(12, step=97):  # the first small pasted hand the whole frame misses and zoom finds
        frame = paste(rgb, (500, 30), side=120)
        if plain.find(frame) is None and zoomed.find(frame) is not None:
            break
    else:
        pytest.fail("no small hand that only the zoomed search finds")
    cv2.imwrite(str(tmp_path / "far.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    recs = {}
    for flag in ("--zoom", "--no-zoom"):
        r = run_cli("--model", color_model, tmp_path / "far.png", "--json", flag)
        assert r.returncode == 0, r.stderr
        recs[flag] = json.loads(r.stdout.splitlines()[0])
    assert recs["--zoom"]["hand"] == list(zoomed.find(frame)) and recs["--no-zoom"]["hand"] is None
    assert "(ONNX, full, zoomed search)" not in r.stderr and "(ONNX, full)" in r.stderr


@pytest.fixture(scope="module")
def hand_video(tmp_path_factory):
    """12 frames, 10 fps, 640x480: a real hand photo drifting right for 8 frames, then 4 empty frames."""
    rgb, _ = clear_photo()
    path = tmp_path_factory.mktemp("video") / "hand.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    for i in range(12):
        frame = paste(rgb, (120 + 4 * i, 80), side=300) if i < 8 else np.full((480, 640, 3), 90, np.uint8)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_cli_camera_finds_the_hand_by_default(color_model, hand_video):
    r = run_cli("--model", color_model, "--camera", hand_video, "--no-display", "--json")
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    # the hand in 8 frames; its box kept for 5 frames after it goes: 4 empty frames all 'kept'
    assert [rec["hand"] for rec in recs] == [True] * 12
    x0, y0, x1, y1 = recs[3]["box"]
    assert x1 - x0 == y1 - y0 and 120 <= x1 and x0 <= 420 and 80 <= y1 and y0 <= 380
    assert "finding the hand with hand landmarks (ONNX, lite, zoomed search)" in r.stderr
    assert "hand found in 12/12 frames" in r.stderr and "Traceback" not in r.stderr


def test_cli_camera_falls_back_to_the_guide_box(color_model, tmp_path):
    path = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    for _ in range(3):
        writer.write(np.full((240, 320, 3), 90, np.uint8))
    writer.release()
    r = run_cli("--model", color_model, "--camera", path, "--no-display", "--json")
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 0 and [rec["hand"] for rec in recs] == [False] * 3
    assert recs[0]["box"] == list(GuideBox().box(320, 240)) and "hand found in 0/3 frames" in r.stderr


@pytest.mark.parametrize("roi", ["hands", "skin"])
def test_cli_bad_roi_names_the_hand_choice(color_model, roi, tmp_path):
    assert_one_line_error(run_cli("--model", color_model, "--camera", "nope.avi", "--roi", roi),
                          "bad --roi", "'hand'")
    cv2.imwrite(str(tmp_path / "x.png"), np.full((20, 20, 3), 90, np.uint8))
    assert_one_line_error(run_cli("--model", color_model, tmp_path / "x.png", "--roi", roi), "bad --roi", "'hand'")


def test_capture_saves_the_found_hand_square(hand_video, tmp_path):
    from conftest import run_cli as run_module

    out = tmp_path / "me"
    r = run_module("asl_edge.runtime.capture", "--camera", hand_video, "--out", out, "--classes", "A,B",
                   "--per-class", "3", "--countdown", "0", "--interval", "0", "--no-display")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    saved = sorted((out / "A").glob("*.jpg"))
    assert len(saved) == 3 and len(list((out / "B").glob("*.jpg"))) == 3  # 6 of the 8 frames with a hand
    crop = cv2.imread(str(saved[0]))
    assert crop.shape[0] == crop.shape[1] and 100 <= crop.shape[0] <= 400  # the hand's square, not the guide box
    r = run_module("asl_edge.runtime.capture", "--camera", hand_video, "--out", tmp_path / "more", "--classes", "A",
                   "--per-class", "9", "--countdown", "0", "--interval", "0", "--no-display")
    assert len(list((tmp_path / "more" / "A").glob("*.jpg"))) == 8  # the 4 empty frames are not saved
    assert "only frames where a hand was found are saved" in r.stderr
