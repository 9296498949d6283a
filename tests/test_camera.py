"""Camera mode: guide box, frame sources, overlay, and the headless loop on a video file."""
import json
import queue
import sys
import time

import numpy as np
import pytest

from asl_edge.runtime.camera import (PICAM_MISSING, GuideBox, LatestFrameSource, VideoFileSource,
                                     open_source)
from asl_edge.common.errors import UserError
from asl_edge.runtime.overlay import display_unavailable_reason, draw_overlay
from onnx_fixtures import (BLACK, GREEN, RED, assert_one_line_error, make_tiny_onnx, run_cli,
                           write_video)


@pytest.fixture(scope="module")
def color_model(tmp_path_factory):
    return make_tiny_onnx(tmp_path_factory.mktemp("models") / "color.onnx", kind="color")


@pytest.fixture(scope="module")
def spelling_video(tmp_path_factory):
    """10 fps: red (A) 6 frames, dark 3, green (B) 6, dark 3, red 6, then 4 noise frames."""
    colors = [RED] * 6 + [BLACK] * 3 + [GREEN] * 6 + [BLACK] * 3 + [RED] * 6 + [None] * 4
    return write_video(tmp_path_factory.mktemp("video") / "spell.avi", colors, size=224, fps=10.0)


# --- guide box -------------------------------------------------------------------------

def test_guide_box_default_is_a_centred_square():
    assert GuideBox().box(640, 480) == (176, 96, 464, 384)  # 0.6 * 480 = 288
    assert GuideBox.parse("full").box(640, 480) == (80, 0, 560, 480)
    assert GuideBox.parse("0.5").box(100, 200) == (25, 75, 75, 125)


def test_guide_box_pixels_are_clipped_to_the_frame():
    box = GuideBox.parse("600,400,100,100")
    assert box.box(640, 480) == (600, 400, 640, 480)
    assert GuideBox.parse("10,20,30,40").crop(np.zeros((480, 640, 3), np.uint8)).shape == (40, 30, 3)
    with pytest.raises(UserError):
        GuideBox.parse("700,10,50,50").box(640, 480)


@pytest.mark.parametrize("text", ["0", "1.5", "abc", "1,2,3", "0,0,0,10", "-1,0,5,5"])
def test_guide_box_rejects(text):
    with pytest.raises(UserError):
        GuideBox.parse(text)


# --- sources ---------------------------------------------------------------------------

def test_latest_frame_source_keeps_only_the_newest_frame():
    q = queue.Queue()
    released = []
    src = LatestFrameSource("fake camera", q.get, lambda: released.append(True))
    for i in range(5):
        q.put((True, i))
    src.start()
    deadline = time.monotonic() + 5
    while src.grabbed < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    frame, _ = src.read()
    assert frame == 4 and src.dropped == 4
    q.put((True, 5))
    assert src.read()[0] == 5
    with pytest.raises(UserError, match="delivered no frame"):
        src.read(timeout=0.1)
    q.put((False, None))  # the camera goes away: end of stream
    assert src.read() is None
    src.close()
    assert released == [True]


def test_video_file_source_reads_every_frame_in_order(spelling_video):
    src = VideoFileSource(spelling_video)
    frames = []
    while (got := src.read()) is not None:
        frames.append(got)
    src.close()
    assert len(frames) == 28 and src.dropped == 0
    assert [t for _, t in frames[:3]] == pytest.approx([0.0, 0.1, 0.2])
    assert frames[0][0][112, 112, 2] > 200  # red, in BGR


def test_open_source_errors(tmp_path):
    with pytest.raises(UserError, match="camera 99.*--camera"):
        open_source("99")
    with pytest.raises(UserError, match="not found"):
        open_source(str(tmp_path / "nope.avi"))
    try:
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(UserError) as e:
            open_source("picam")
        assert str(e.value) == PICAM_MISSING


# --- overlay ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(480, 640, 3), (120, 160, 3)])
def test_draw_overlay(shape):
    frame = np.full(shape, 90, np.uint8)
    out = draw_overlay(frame, GuideBox().box(shape[1], shape[0]), [("A", 0.9), ("B", 0.07), ("space", 0.02)],
                       fps=24.5, text="HELLO", threshold=0.7, progress=0.5)
    assert out is frame and frame.shape == shape and (frame != 90).any()


def test_overlay_shows_a_confident_letter_as_waiting_when_the_two_views_differ():
    from asl_edge.runtime.overlay import GREEN

    box, top = GuideBox().box(640, 480), [("A", 0.9), ("B", 0.07)]
    agree, differ = (draw_overlay(np.full((480, 640, 3), 90, np.uint8), box, top, fps=24.5, text="", threshold=0.7,
                                  agree=a) for a in (True, False))
    x0, y0 = box[:2]
    assert tuple(agree[y0, x0 + 20]) == GREEN and tuple(differ[y0, x0 + 20]) != GREEN  # the box's colour
    assert (agree != differ).sum() > 500  # and a line of text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="display variables are a Linux check")
def test_no_display_is_detected(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert display_unavailable_reason()


# --- the loop, headless, on a video file ----------------------------------------------

def test_headless_loop_spells_from_a_video(color_model, spelling_video):
    r = run_cli("--model", color_model, "--camera", spelling_video, "--no-display", "--hold", "3",
                "--threshold", "0.9")
    assert r.returncode == 0, r.stderr
    accepted = [line for line in r.stdout.splitlines() if " accepted " in line]
    assert [line.split(" accepted ")[1].split()[0] for line in accepted] == ["A", "B", "A"]
    assert accepted[0].startswith("frame 2: ")
    summary = r.stdout.strip().splitlines()[-1]
    assert summary.startswith("summary: 28 frames in ") and "fps end-to-end" in summary
    assert "ms/frame" in summary and "first inference" in summary and summary.endswith("text: 'ABA'")
    assert "display off (--no-display)" in r.stderr and "Traceback" not in r.stderr


def test_hold_in_seconds_uses_video_time_and_max_frames(color_model, spelling_video):
    # 10 fps: the red run lasts 0.5 s of video time, so a 0.5 s hold types A once per run;
    # 20 frames end the run before the second red run.
    r = run_cli("--model", color_model, "--camera", spelling_video, "--no-display", "--hold", "0.5s",
                "--max-frames", "20", "--json", "--roi", "full", "--decoder", "hold")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(records) == 20
    assert [(rec["frame"], rec["accepted"]) for rec in records if rec["accepted"]] == [(5, "A"), (14, "B")]
    assert records[-1]["text"] == "AB" and len(records[0]["top_k"]) == 3
    assert "summary: 20 frames" in r.stderr


@pytest.mark.parametrize("flag, said", [((), "disagreeing frames weigh 1"), (("--agreement",), "disagreeing frames weigh 0.5"),
                                         (("--no-agreement",), "disagreeing frames weigh 1")])
def test_agreement_flag_reaches_the_evidence_decoder(color_model, spelling_video, flag, said):
    r = run_cli("--model", color_model, "--camera", spelling_video, "--no-display", "--max-frames", "2", *flag)
    assert r.returncode == 0, r.stderr
    assert "decoder evidence: mean over 0.9s, threshold 0.6, margin 0.3, " + said in r.stdout + r.stderr


def test_slide_reaches_the_evidence_decoder(color_model, spelling_video):
    r = run_cli("--model", color_model, "--camera", spelling_video, "--no-display", "--max-frames", "2", "--slide", "0.8")
    assert r.returncode == 0, r.stderr
    assert "a letter typed again after a 0.8 hand-size slide" in r.stdout + r.stderr
    r = run_cli("--model", color_model, "--camera", spelling_video, "--no-display", "--max-frames", "2")
    assert "slide" not in r.stdout + r.stderr  # off unless asked
    assert_one_line_error(run_cli("--model", color_model, "--camera", spelling_video, "--slide", "-1"), "--slide")


def test_picam_without_picamera2(color_model):
    try:
        import picamera2  # noqa: F401
        pytest.skip("picamera2 is installed")
    except ImportError:
        pass
    assert_one_line_error(run_cli("--model", color_model, "--camera", "picam", "--no-display"),
                          "sudo apt install python3-picamera2")


def _run_demo_clip(clf, speller, **kw):
    """The shipped demo clip through asl-run's camera loop with the hand finder; -> run_live's stats."""
    from pathlib import Path

    from asl_edge.runtime.hands import HandFinder, HandRoi
    from asl_edge.runtime.live import run_live

    src = VideoFileSource(Path(__file__).resolve().parents[1] / "scripts" / "demo_clip" / "hello_lolzorus.mp4")
    try:
        return run_live(clf, src, speller, HandRoi(HandFinder(video=True, landmark_model="full"), GuideBox()), **kw)
    finally:
        src.close()


def test_overlap_gives_the_same_frames_letters_and_text_one_stage_apart():
    """Finding the hand in frame t+1 while frame t is classified changes when a result is ready, not what it is."""
    import io

    from asl_edge.runtime.model import OnnxClassifier
    from asl_edge.runtime.spelling import make_speller

    clf = OnnxClassifier(provider="cpu", threads=1)
    runs = {}
    for overlap in (False, True):
        out, speller = io.StringIO(), make_speller("evidence")
        stats = _run_demo_clip(clf, speller, as_json=True, out=out, overlap=overlap, max_frames=120)
        runs[overlap] = ([json.loads(line) for line in out.getvalue().splitlines()], speller.text, stats.frames)
    plain, overlapped = runs[False], runs[True]
    assert overlapped[2] == plain[2] == 120 and overlapped[1] == plain[1] and plain[1]
    for a, b in zip(plain[0], overlapped[0]):
        assert (a["frame"], a["label"], a["box"], a["accepted"]) == (b["frame"], b["label"], b["box"], b["accepted"])
        assert abs(a["prob"] - b["prob"]) < 1e-5


def test_overlap_is_on_for_video_files_and_asked_for_elsewhere(monkeypatch):
    import os

    from asl_edge.runtime.cli import RunOptions, camera_overlap

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert camera_overlap(RunOptions(), live=False) and not camera_overlap(RunOptions(), live=True)
    assert camera_overlap(RunOptions(overlap=True), live=True)
    assert not camera_overlap(RunOptions(overlap=False), live=False)
    assert not camera_overlap(RunOptions(roi="0.6"), live=False)  # a fixed box: no hand finder to overlap
    assert not camera_overlap(RunOptions(threads=2), live=False)  # the classifier takes both cores
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert not camera_overlap(RunOptions(), live=False)


def test_overlay_marks_disagreeing_frames_where_the_decoder_counts_them_less(monkeypatch):
    """The overlay's "image and hand shape differ" follows what the decoder does with such a frame: the hold rule
    skips it, the evidence decoder weighs it half with --agreement and fully by default."""
    import io

    from asl_edge.runtime import live
    from asl_edge.runtime.model import OnnxClassifier
    from asl_edge.runtime.spelling import make_speller

    clf = OnnxClassifier(provider="cpu", threads=1)

    class ShownWindow:
        clear_requested = False

        def show(self, frame):
            return True

    out = io.StringIO()
    _run_demo_clip(clf, make_speller("evidence"), as_json=True, out=out, max_frames=60)
    agree = [json.loads(line)["agree"] for line in out.getvalue().splitlines()]
    assert len(agree) == 60 and not all(agree)  # the clip has frames where the two views differ
    shown = []
    monkeypatch.setattr(live, "draw_overlay", lambda frame, *a, **kw: shown.append(kw["agree"]))
    for speller, expected in ((make_speller("evidence"), [True] * 60),
                              (make_speller("evidence", require_agreement=True), agree),
                              (make_speller("hold"), agree)):
        shown.clear()
        _run_demo_clip(clf, speller, window=ShownWindow(), max_frames=60)
        assert shown == expected
