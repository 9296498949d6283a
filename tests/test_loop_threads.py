"""The camera loop's threads: the hand finder and the classifier take turns on --threads threads."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

from asl_edge.runtime.camera import GuideBox, VideoFileSource
from asl_edge.runtime.hands import HandFinder, HandRoi
from asl_edge.runtime.live import LoopThreads, run_live
from asl_edge.runtime.model import OnnxClassifier
from asl_edge.runtime.spelling import make_speller

from conftest import REPO

CLIP = REPO / "scripts" / "demo_clip" / "hello_lolzorus.mp4"
SPIN_STOP = "session.force_spinning_stop"


def _spin_stop(options):
    try:
        return options.get_session_config_entry(SPIN_STOP)
    except RuntimeError:  # not set
        return None


def _loop(plan: LoopThreads) -> dict:
    clf = OnnxClassifier(provider="cpu", threads=plan.classifier, take_turns=plan.take_turns)
    finder = HandFinder(video=True, landmark_model="full", threads=plan.hand, take_turns=plan.take_turns)
    sessions = [clf.session, finder.tracker._palm, finder.tracker._landmarks]
    out, speller, src = io.StringIO(), make_speller("evidence"), VideoFileSource(CLIP)
    try:
        run_live(clf, src, speller, HandRoi(finder, GuideBox()), as_json=True, out=out, max_frames=60)
    finally:
        src.close()
    return {"options": [(s.get_session_options().intra_op_num_threads, _spin_stop(s.get_session_options()))
                        for s in sessions],
            "frames": [json.loads(line) for line in out.getvalue().splitlines()], "text": speller.text}


def test_models_taking_turns_run_the_same_loop_as_one_thread_each(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    plan = LoopThreads.plan(None, overlap=False)
    assert plan == LoopThreads(2, 2, take_turns=True)
    turns, single = _loop(plan), _loop(LoopThreads(1, 1))
    # every model on both threads, its threads told to stop spinning when its run ends
    assert turns["options"] == [(2, "1")] * 3 and single["options"] == [(1, None)] * 3
    assert len(turns["frames"]) == len(single["frames"]) == 60 and turns["text"] == single["text"]
    for a, b in zip(turns["frames"], single["frames"]):
        assert (a["frame"], a["label"], a["accepted"]) == (b["frame"], b["label"], b["accepted"])
        assert abs(a["prob"] - b["prob"]) < 1e-4
        assert all(abs(x - y) <= 1 for x, y in zip(a["box"], b["box"]))


def test_overlap_gives_the_hand_finder_a_core_and_one_thread_takes_no_turns(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert LoopThreads.plan(None, overlap=True) == LoopThreads(7, 1)
    assert LoopThreads.plan(2, overlap=True) == LoopThreads(2, 1)
    assert LoopThreads.plan(None, overlap=False) == LoopThreads(4, 4, take_turns=True)  # at most 4 by default
    assert LoopThreads.plan(6, overlap=False) == LoopThreads(6, 6, take_turns=True)
    assert LoopThreads.plan(1, overlap=False) == LoopThreads(1, 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert LoopThreads.plan(None, overlap=False) == LoopThreads(None, 1)  # one core: nothing to take turns on


def test_asl_run_says_how_the_loop_uses_its_threads():
    for extra, said in ((["--threads", "2", "--no-overlap"], "the hand finder and the classifier take turns on 2 threads"),
                        (["--threads", "1", "--overlap"], "the classifier on 1 thread(s), the hand finder on 1, overlapped")):
        proc = subprocess.run([sys.executable, "-m", "asl_edge.runtime.cli", "--camera", str(CLIP), "--no-display",
                               "--max-frames", "20", *extra], capture_output=True, text=True, timeout=600, cwd=REPO)
        assert proc.returncode == 0 and said in proc.stderr, proc.stderr
