"""Hand finding (--roi hand / skin): the finders, the smoothed camera region, the overlay, the CLI."""
import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from asl_edge.runtime.camera import GuideBox
from asl_edge.runtime.errors import UserError
from asl_edge.runtime.hands import (MEDIAPIPE_MISSING, HandFinder, HandRoi, SkinHands, load_mediapipe_hands,
                                    square_box)
from asl_edge.runtime.overlay import CYAN, draw_overlay
from onnx_fixtures import assert_one_line_error, make_tiny_onnx, run_cli

SKIN = (220, 160, 130)        # RGB; YCrCb about (175, 160, 103): inside the skin range
BACKGROUND = (60, 80, 120)    # slate blue: not skin
ROBOFLOW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "roboflow_asl_letters" / "train"


def mediapipe_reason():
    """None when MediaPipe's bundled hand model can be loaded, else why not."""
    try:
        load_mediapipe_hands()
    except UserError as e:
        return str(e)
    return None


MEDIAPIPE_ABSENT = mediapipe_reason()


def scene(blob=(100, 60, 80, 110), size=(320, 240), background=BACKGROUND, color=SKIN):
    """RGB image: a skin-coloured ellipse filling blob (x, y, w, h) on a plain background."""
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = background
    x, y, bw, bh = blob
    cv2.ellipse(img, (x + bw // 2, y + bh // 2), (bw // 2, bh // 2), 0, 0, 360, color, -1)
    return img


def iou(a, b):
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    ix = max(0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    iy = max(0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    return ix * iy / (aw * ah + bw * bh - ix * iy)


def contains(outer, inner):
    ox, oy, ow, oh = outer
    ix, iy, iw, ih = inner
    return ox <= ix and oy <= iy and ix + iw <= ox + ow and iy + ih <= oy + oh


# --- square boxes -----------------------------------------------------------------------

def test_square_box_adds_margin_and_stays_inside_the_frame():
    assert square_box((100, 50, 40, 80), 640, 480) == (70, 40, 100, 100)  # 80 * 1.25, same centre
    assert square_box((0, 0, 40, 80), 640, 480) == (0, 0, 100, 100)        # shifted in, not cut
    assert square_box((600, 400, 40, 80), 640, 480) == (540, 380, 100, 100)
    assert square_box((0, 0, 640, 400), 640, 480) == (80, 0, 480, 480)    # never larger than the frame


# --- the OpenCV skin finder -------------------------------------------------------------

def test_skin_finder_boxes_the_blob():
    blob = (100, 60, 80, 110)
    finder = SkinHands()
    hand = finder.find_hand(scene(blob))
    assert hand is not None and iou(hand, blob) > 0.85, hand
    box = finder.find(scene(blob))
    x, y, w, h = box
    assert w == h and abs(w - 110 * 1.25) <= 3 and contains(box, blob), box


def test_skin_finder_picks_the_largest_blob_and_ignores_specks():
    img = scene((200, 100, 90, 120))
    cv2.circle(img, (40, 40), 12, SKIN, -1)  # a smaller skin patch elsewhere
    img[200:203, 20:23] = SKIN                # and a speck
    assert iou(SkinHands().find_hand(img), (200, 100, 90, 120)) > 0.85


@pytest.mark.parametrize("what", ["grey", "black", "blue", "skin everywhere", "grayscale hand"])
def test_skin_finder_finds_nothing(what):
    if what == "skin everywhere":  # a skin-coloured background is not a hand (the method's limit)
        img = scene(background=SKIN, color=(200, 140, 110))
    elif what == "grayscale hand":  # no colour, no skin: the method's other limit
        img = cv2.cvtColor(cv2.cvtColor(scene(), cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    else:
        img = np.zeros((240, 320, 3), np.uint8)
        img[:] = {"grey": (128, 128, 128), "black": (0, 0, 0), "blue": BACKGROUND}[what]
    assert SkinHands().find(img) is None


# --- the camera region: smoothing and fallback ----------------------------------------

class ScriptedFinder(HandFinder):
    """Returns the given square boxes (or None) one per call."""

    name = "scripted"

    def __init__(self, boxes):
        super().__init__()
        self.boxes = list(boxes)

    def find(self, rgb):
        return self.boxes.pop(0)


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


def test_hand_roi_on_a_moving_skin_blob_does_not_jitter():
    roi = HandRoi(SkinHands(), GuideBox(), alpha=0.5)
    sides = []
    for i in range(8):
        x0, y0, x1, y1 = roi.box(scene((100 + 3 * i, 60, 80, 110 + (4 if i % 2 else 0))))
        assert roi.found and x1 - x0 == y1 - y0
        sides.append(x1 - x0)
    assert max(sides[2:]) - min(sides[2:]) <= 4  # raw sides alternate by 5 px: smoothing halves it


# --- overlay ----------------------------------------------------------------------------

def test_overlay_marks_the_found_hand():
    box = (100, 100, 200, 200)
    top = [("A", 0.9), ("B", 0.05)]
    frames = {}
    for hand in (None, True, False):
        frames[hand] = draw_overlay(np.full((480, 640, 3), 90, np.uint8), box, top, fps=10, text="",
                                    threshold=0.7, hand=hand)
    cyan = lambda f: int(np.all(f == CYAN, axis=-1).sum())  # noqa: E731
    assert cyan(frames[None]) == 0 and cyan(frames[True]) > 300
    assert (frames[False] != frames[None]).any() and cyan(frames[False]) == 0  # "no hand" label only


# --- the CLI ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def color_model(tmp_path_factory):
    return make_tiny_onnx(tmp_path_factory.mktemp("models") / "color.onnx", kind="color")


@pytest.fixture(scope="module")
def hand_video(tmp_path_factory):
    """16 frames, 10 fps: a skin blob drifting right on blue for 8 frames, then 8 plain frames."""
    path = tmp_path_factory.mktemp("video") / "hand.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    for i in range(16):
        rgb = scene((40 + 4 * i, 60, 80, 110)) if i < 8 else scene((0, 0, 0, 0))
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_cli_camera_skin_headless(color_model, hand_video):
    r = run_cli("--model", color_model, "--camera", hand_video, "--no-display", "--json", "--roi", "skin")
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    # the blob in 8 frames; its box kept for 5 frames after it goes; then the guide box
    assert [rec["hand"] for rec in recs] == [True] * 13 + [False] * 3
    assert recs[12]["box"] == recs[7]["box"] and recs[-1]["box"] == list(GuideBox().box(320, 240))
    for i, rec in enumerate(recs[:8]):
        x0, y0, x1, y1 = rec["box"]
        assert x1 - x0 == y1 - y0 and contains((x0, y0, x1 - x0, y1 - y0), (52 + 4 * i, 66, 56, 98)), rec
    assert "finding the hand with skin colour" in r.stderr
    assert "hand found in 13/16 frames" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_files_skin(color_model, tmp_path):
    for name, rgb in (("hand.png", scene()), ("plain.png", scene((0, 0, 0, 0)))):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    r = run_cli("--model", color_model, tmp_path, "--roi", "skin", "--json")
    assert r.returncode == 0, r.stderr
    recs = {Path(rec["file"]).name: rec for rec in map(json.loads, r.stdout.splitlines())}
    assert recs["plain.png"]["hand"] is None
    assert contains(recs["hand.png"]["hand"], (100, 60, 80, 110))
    assert "hands: found in 1/2 images" in r.stderr


def test_cli_bad_roi_names_the_hand_choices(color_model, hand_video):
    assert_one_line_error(run_cli("--model", color_model, "--camera", hand_video, "--roi", "hands"),
                          "bad --roi", "'hand'")


@pytest.mark.skipif(MEDIAPIPE_ABSENT is None, reason="mediapipe with its bundled hand model is installed")
def test_cli_hand_without_mediapipe_names_the_pip_command(color_model, hand_video):
    line = assert_one_line_error(run_cli("--model", color_model, "--camera", hand_video, "--no-display",
                                         "--roi", "hand"), "pip install")
    assert line == f"error: {MEDIAPIPE_ABSENT}"
    if "--roi hand needs" in line:
        assert line == f"error: {MEDIAPIPE_MISSING}"


# --- MediaPipe (only where asl-edge[hands] is installed) ------------------------------------

@pytest.mark.skipif(MEDIAPIPE_ABSENT is not None, reason=f"MediaPipe hands unavailable: {MEDIAPIPE_ABSENT}")
def test_mediapipe_finds_real_hands():
    from asl_edge.runtime.contract import read_rgb
    from asl_edge.runtime.hands import MediaPipeHands

    if not (ROBOFLOW / "boxes.csv").is_file():
        pytest.skip(f"real hand photos not found at {ROBOFLOW}")
    with open(ROBOFLOW / "boxes.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))[::150][:10]
    finder = MediaPipeHands()
    good = 0
    for row in rows:
        x0, y0, x1, y1 = (float(row[k]) for k in ("x_min", "y_min", "x_max", "y_max"))
        hand = finder.find_hand(read_rgb(ROBOFLOW / row["file"]))
        good += hand is not None and iou(hand, (x0, y0, x1 - x0, y1 - y0)) >= 0.5
    assert finder.find(np.full((240, 320, 3), 128, np.uint8)) is None
    finder.close()
    assert good >= 6, f"{good}/10 real hands found with IoU >= 0.5"


@pytest.mark.skipif(MEDIAPIPE_ABSENT is not None, reason=f"MediaPipe hands unavailable: {MEDIAPIPE_ABSENT}")
def test_cli_camera_hand_runs_headless(hand_video):
    from asl_edge.runtime.model import DEFAULT_MODEL

    if not DEFAULT_MODEL.is_file():
        pytest.skip("no shipped default model")
    # The shipped model, so this runs where asl-edge[hands] is installed without torch.
    r = run_cli("--camera", hand_video, "--no-display", "--json", "--roi", "hand", "--threads", "1")
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(recs) == 16 and all("hand" in rec and len(rec["box"]) == 4 for rec in recs)
    assert "hand found in " in r.stderr
