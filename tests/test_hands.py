"""Hand finding on onnxruntime (runtime/hands/): the shipped files, decoding, geometry, tracking, bad
input, the zoomed search and the border step (tests/test_hands_cli.py: the camera region, the overlay
and the CLI). No mediapipe anywhere (tests/test_hands_parity.py compares with it where it is installed)."""
import hashlib
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asl_edge.runtime.hands import (BORDER, LANDMARK_MODELS, MODELS, PALM_MODEL, ZOOM_MIN_SIDE, ZOOM_TILES, Crop,
                                    HandFinder, HandTracker, as_rgb, outer_square, rotation_from, search_tiles,
                                    square_box, ssd_anchors, weighted_nms)
from conftest import ROBOFLOW_TRAIN, clear_photo, iou, paste, photos


@pytest.fixture(scope="module")
def tracker():
    return HandTracker(video=False)


# --- the shipped files ----------------------------------------------------------------------

def test_hand_models_are_shipped_with_license_and_matching_provenance():
    prov = json.loads((MODELS / "hand_models_provenance.json").read_text())
    # the float models come from MediaPipe's TFLite files; the INT8 ones are made here (tests/test_hand_int8.py)
    names = {PALM_MODEL.name, *(p.name for k, p in LANDMARK_MODELS.items() if not k.endswith("-int8"))}
    assert set(prov["models"]) == names
    for name in names:
        data = (MODELS / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == prov["models"][name]["onnx_sha256"], name
        assert max(prov["models"][name]["max_rel_diff_vs_tflite"].values()) < 1e-4
    assert "Apache License" in (MODELS / "HAND_MODELS_LICENSE.txt").read_text()
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"models/*.onnx"' in pyproject and '"models/*.json"' in pyproject and '"models/*.txt"' in pyproject
    assert "mediapipe" not in pyproject.split("[project.optional-dependencies]")[1].split("[project.scripts]")[0]


# --- decoding and geometry -----------------------------------------------------------------

def test_ssd_anchors_match_the_palm_model_outputs():
    a = ssd_anchors()
    assert a.shape == (2016, 2)                      # 24*24*2 (stride 8) + 12*12*6 (three stride-16 layers)
    assert np.allclose(a[0], [0.5 / 24, 0.5 / 24]) and np.allclose(a[1], a[0])
    assert np.allclose(a[1151], [23.5 / 24, 23.5 / 24]) and np.allclose(a[1152], [0.5 / 12, 0.5 / 12])
    assert np.allclose(a[-1], [11.5 / 12, 11.5 / 12]) and (a[1152:1158] == a[1152]).all()


def test_weighted_nms_averages_overlaps_and_keeps_separate_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    kps = np.zeros((3, 7, 2), np.float32)
    kps[1] += 1
    scores = np.array([0.6, 0.9, 0.7], np.float32)
    kept = weighted_nms(boxes, kps, scores)
    assert [k[2] for k in kept] == pytest.approx([0.9, 0.7])   # best first, the group keeps the best score
    assert kept[0][0] == pytest.approx([0.9 / 1.5, 0, 10 + 0.9 / 1.5, 10])  # score-weighted mean
    assert kept[0][1][0] == pytest.approx([0.6, 0.6]) and kept[1][0] == pytest.approx(boxes[2])


def test_crop_geometry_and_rotation():
    assert rotation_from((0, 10), (0, 0)) == pytest.approx(0)            # fingers up: no rotation
    assert rotation_from((0, 0), (10, 0)) == pytest.approx(math.pi / 2)  # fingers to the right
    m = Crop(100, 50, 40, 0).to_frame(224)
    assert m @ [0, 0, 1] == pytest.approx([80, 30]) and m @ [224, 224, 1] == pytest.approx([120, 70])
    m = Crop(100, 50, 40, math.pi / 2).to_frame(224)
    assert m @ [112, 0, 1] == pytest.approx([120, 50])  # the crop's top is the frame's right side


def test_square_box_adds_margin_and_stays_inside_the_frame():
    assert square_box((100, 50, 40, 80), 640, 480) == (70, 40, 100, 100)  # 80 * 1.25, same centre
    assert square_box((0, 0, 40, 80), 640, 480) == (0, 0, 100, 100)        # shifted in, not cut
    assert square_box((600, 400, 40, 80), 640, 480) == (540, 380, 100, 100)
    assert square_box((0, 0, 640, 400), 640, 480) == (80, 0, 480, 480)    # never larger than the frame


# --- bad input: a defined result, never an exception ----------------------------------------

@pytest.mark.parametrize("image", [np.zeros((1, 1, 3), np.uint8), np.zeros((0, 5, 3), np.uint8),
                                   np.zeros((7, 5), np.uint8), np.zeros((9, 9, 4), np.uint8),
                                   np.full((40, 60, 1), 255, np.uint8), np.zeros((3000, 4000, 3), np.uint8),
                                   np.random.default_rng(0).random((50, 70, 3)) * 300, np.zeros(5)],
                         ids=["1x1", "empty", "gray2d", "rgba", "gray1", "huge", "float", "1d"])
def test_no_hand_in_odd_images(tracker, image):
    assert tracker.process(image) is None
    assert HandFinder(tracker=tracker).find(image) is None


def test_as_rgb():
    assert as_rgb(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert as_rgb(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)
    assert as_rgb(np.zeros((0, 5, 3), np.uint8)) is None


# --- real photos -----------------------------------------------------------------------------

def test_finds_real_hands_and_frames_them_like_training(tracker):
    finder = HandFinder(tracker=tracker)
    good = 0
    for rgb, true in photos(10):
        hand = finder.find_hand(rgb)
        if hand is None:
            continue
        good += iou(hand, true) >= 0.5
        lm = finder.hand.landmarks
        assert lm.shape == (21, 3) and finder.hand.presence >= 0.5 and finder.hand.handedness in ("Left", "Right")
        x, y, s, s2 = finder.find(rgb)
        assert s == s2 and 0 <= x and 0 <= y and x + s <= rgb.shape[1] and y + s <= rgb.shape[0]
    assert good >= 6, f"{good}/10 real hands found with IoU >= 0.5"
    assert finder.find(np.full((240, 320, 3), 128, np.uint8)) is None


def test_grayscale_photo_gives_a_defined_result(tracker):
    rgb, _ = photos(1)[0]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    hand = tracker.process(gray)
    assert hand is None or hand.landmarks.shape == (21, 3)


def test_hand_cut_by_the_frame_edge_gives_a_square_inside_the_frame(tracker):
    rgb, true = photos(1)[0]
    frame = paste(rgb, (-int(true[0] + true[2] * 0.4), 100), side=rgb.shape[0])  # 40% of the hand off the left edge
    finder = HandFinder(tracker=tracker)
    box = finder.find(frame)
    if box is not None:
        x, y, s, _ = box
        assert x >= 0 and y >= 0 and x + s <= 640 and y + s <= 480
        assert (finder.hand.landmarks[:, 0] < 0).any() or finder.hand.landmarks[:, 0].min() < 60


def test_two_hands_pick_the_most_confident_palm_deterministically(tracker):
    ph = photos(5)
    (a, _), (b, _) = ph[2], ph[4]
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[40:340, 10:310] = cv2.resize(a, (300, 300), interpolation=cv2.INTER_AREA)
    frame[140:440, 330:630] = cv2.resize(b, (300, 300), interpolation=cv2.INTER_AREA)
    palms = tracker.detect_palms(frame)
    assert len(palms) == 2 and palms[0].score >= palms[1].score
    first, again = tracker.process(frame), tracker.process(frame)
    assert first is not None and first.palm_score == pytest.approx(palms[0].score)
    assert np.array_equal(first.landmarks, again.landmarks)
    x0, _, x1, _ = palms[0].box
    assert first.landmarks[:, 0].mean() == pytest.approx((x0 + x1) / 2, abs=150)


def test_tracking_skips_palm_detection_until_the_hand_is_lost():
    rgb, _ = clear_photo()
    t = HandTracker(video=True)
    frames = [paste(rgb, (100 + 4 * i, 60), side=300) for i in range(6)] + [np.full((480, 640, 3), 90, np.uint8)]
    hands = [t.process(f) for f in frames]
    assert all(h is not None for h in hands[:6]) and hands[6] is None
    assert not hands[0].tracked and all(h.tracked for h in hands[1:6])
    assert t.palm_runs == 3  # the first frame; the empty one after the hand was lost: whole frame + one zoomed square
    drift = hands[5].landmarks[:, 0].mean() - hands[1].landmarks[:, 0].mean()
    assert drift == pytest.approx(16, abs=6)  # the landmarks follow the 4 px/frame motion
    fresh = HandTracker(video=False).process(frames[5]).landmarks[:, :2]
    size = np.ptp(fresh, axis=0).max()
    assert np.linalg.norm(hands[5].landmarks[:, :2] - fresh, axis=1).mean() < 0.05 * size  # tracked ~ detected


# --- zoomed search: small, far hands -----------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(w=st.integers(256, 4000), h=st.integers(256, 4000), tile=st.floats(0.3, 0.95),
       u=st.floats(0, 1), v=st.floats(0, 1), k=st.floats(0.01, 1))
def test_zoom_squares_lie_in_the_frame_and_hold_any_hand_up_to_half_their_side(w, h, tile, u, v, k):
    tiles = search_tiles(w, h, tile)
    side = tile * min(w, h)
    if side < ZOOM_MIN_SIDE:
        assert tiles == []  # too small a square to gain anything
        return
    assert tiles and all(s == pytest.approx(side) for _, _, s in tiles)
    assert all(-1e-6 <= x and -1e-6 <= y and x + s <= w + 1e-6 and y + s <= h + 1e-6 for x, y, s in tiles)
    hand = k * side / 2  # a hand box of this side anywhere in the frame lies whole inside some square
    hx, hy = u * (w - hand), v * (h - hand)
    assert any(x - 1e-6 <= hx and y - 1e-6 <= hy and hx + hand <= x + s + 1e-6 and hy + hand <= y + s + 1e-6
               for x, y, s in tiles)


def test_zoom_needs_a_frame_larger_than_the_detector_input():
    assert search_tiles(200, 200, 0.75) == [] and search_tiles(640, 200, 0.75) == []
    assert len(search_tiles(640, 480, 0.75)) == 6 and len(search_tiles(640, 480, 0.5)) == 15
    assert len(search_tiles(416, 416, 0.75)) == 4 and search_tiles(416, 416, 0.5) == []  # 208 px: too small


def test_palms_in_a_square_are_the_palms_of_that_crop_moved_to_the_frame(tracker):
    rgb, _ = clear_photo()
    frame = paste(rgb, (300, 150), side=150)
    x0, y0, side = 260, 110, 240
    inside = tracker.detect_palms(frame, (x0, y0, side))
    alone = tracker.detect_palms(np.ascontiguousarray(frame[y0:y0 + side, x0:x0 + side]))
    assert len(inside) == len(alone) >= 1
    for a, b in zip(inside, alone):
        assert a.score == pytest.approx(b.score, abs=1e-5)
        np.testing.assert_allclose(a.box, np.array(b.box) + [x0, y0, x0, y0], atol=1e-3)
        np.testing.assert_allclose(a.keypoints, b.keypoints + [x0, y0], atol=1e-3)


def test_zoom_finds_small_far_hands_the_whole_frame_misses():
    ph = photos(12, step=97)
    plain, zoomed = HandFinder(video=False, zoom=False), HandFinder(video=False)
    places = [(20, 20), (500, 30), (40, 380), (520, 370), (300, 200)]
    missed = found = 0
    for i, (rgb, true) in enumerate(ph):
        side = 120
        frame = paste(rgb, places[i % len(places)], side=side)
        s = side / max(rgb.shape[:2])
        x, y = places[i % len(places)]
        hand = (x + true[0] * s, y + true[1] * s, true[2] * s, true[3] * s)
        a, b = plain.find_hand(frame), zoomed.find_hand(frame)
        if a is None:
            missed += 1
            found += b is not None and iou(b, hand) >= 0.5
        if b is not None:  # whatever zoom finds is the pasted hand, in frame pixels
            assert iou(b, hand) >= 0.3, (i, b, hand)
    assert missed >= 4 and found >= missed * 0.6, f"zoom found {found} of the {missed} hands the whole frame missed"


def test_camera_mode_searches_one_square_per_frame_in_turn(monkeypatch):
    t = HandTracker(video=True)
    seen = []
    real = t.detect_palms
    monkeypatch.setattr(t, "detect_palms", lambda rgb, square=None: seen.append(square) or real(rgb, square))
    blank = np.full((480, 640, 3), 90, np.uint8)
    every = [sq for f in ZOOM_TILES for sq in search_tiles(640, 480, f)] + [outer_square(640, 480, BORDER)]
    for _ in range(len(every) + 1):
        assert t.process(blank) is None
    assert seen[0::2] == [None] * (len(every) + 1)  # the whole frame, every frame
    assert seen[1::2] == every + every[:1]          # then the next square, all of them in turn
    t_files = HandTracker(video=False)
    t_files.process(blank)
    assert t_files.palm_runs == 1 + len(every)      # files: the whole frame, then every square, then the border
    assert HandTracker(video=False, zoom=False).process(blank) is None


def test_camera_mode_finds_a_far_hand_within_one_sweep_and_then_tracks_it():
    rgb, _ = clear_photo()
    t = HandTracker(video=True)
    sweep = sum(len(search_tiles(640, 480, f)) for f in ZOOM_TILES) + 1
    frames = [paste(rgb, (470, 330), side=110)] * (sweep + 5)
    hands = [t.process(f) for f in frames]
    first = next(i for i, h in enumerate(hands) if h is not None)
    assert first < sweep and all(h is not None and h.tracked for h in hands[first + 1:])
    runs = t.palm_runs
    t.process(frames[0])
    assert t.palm_runs == runs  # tracked: no palm detection at all


# --- the border step: hands that fill the image ------------------------------------------------

def test_border_step_finds_hands_that_fill_the_image():
    """Photos cut to the tight box of their hand: the palm detector alone misses many (the hand is
    too large for its anchors); looking again inside a black border finds more, and each hand it
    finds lies on the image."""
    if not ROBOFLOW_TRAIN.is_dir():
        pytest.skip("Roboflow photos not found beside the project")
    plain = HandFinder(video=False, tracker=HandTracker("full", video=False, border=0))
    bordered = HandFinder(video=False)
    assert bordered.tracker.border > 1
    tried = plain_found = border_found = 0
    for p in sorted(ROBOFLOW_TRAIN.glob("*/*.jpg"))[::40][:60]:
        rgb = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        box = plain.find_hand(rgb)
        if box is None or min(box[2:]) < 40:
            continue
        x, y, w, h = box
        tight = np.ascontiguousarray(rgb[y:y + h, x:x + w])
        tried += 1
        plain_found += plain.find_hand(tight) is not None
        got = bordered.find_hand(tight)
        if got is not None:
            border_found += 1
            bx, by, bw, bh = got
            assert 0 <= bx and 0 <= by and bx + bw <= w + 1 and by + bh <= h + 1
    assert tried >= 20
    assert border_found >= plain_found + 3, (tried, plain_found, border_found)


def test_border_step_runs_only_when_nothing_else_found_a_hand():
    tracker = HandTracker("full", video=False, zoom=False)
    tracker.process(np.zeros((240, 320, 3), np.uint8))
    assert tracker.palm_runs == 2  # the whole frame, then the bordered one
    plain = HandTracker("full", video=False, zoom=False, border=0)
    plain.process(np.zeros((240, 320, 3), np.uint8))
    assert plain.palm_runs == 1
    rgb, _ = clear_photo()
    found = HandTracker("full", video=False, zoom=False)
    assert found.process(paste(rgb, (100, 60), side=300)) is not None and found.palm_runs == 1
