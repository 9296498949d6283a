"""The camera loop's threads: one pool that the hand finder and the classifier share, planned from --threads."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from asl_edge.runtime.live import LoopThreads

from conftest import REPO

CLIP = REPO / "scripts" / "demo_clip" / "hello_lolzorus.mp4"

# onnxruntime makes a process's shared pool once, so each loop runs in a fresh interpreter
LOOP = r"""
import io, json, sys
from pathlib import Path
from asl_edge.runtime.camera import GuideBox, VideoFileSource
from asl_edge.runtime.hands import HandFinder, HandRoi
from asl_edge.runtime.live import LoopThreads, run_live
from asl_edge.runtime.model import OnnxClassifier
from asl_edge.runtime.spelling import make_speller

plan = LoopThreads.plan(int(sys.argv[2]), overlap=False)
clf = OnnxClassifier(provider="cpu", threads=plan.classifier)
finder = HandFinder(video=True, landmark_model="full", threads=plan.hand)
sessions = [clf.session, finder.tracker._palm, finder.tracker._landmarks]
out, speller, src = io.StringIO(), make_speller("evidence"), VideoFileSource(Path(sys.argv[1]))
try:
    run_live(clf, src, speller, HandRoi(finder, GuideBox()), as_json=True, out=out, max_frames=60)
finally:
    src.close()
again = LoopThreads.plan(3, overlap=False)
print(json.dumps({"plan": [plan.classifier, plan.hand, plan.shared], "again": [again.classifier, again.hand, again.shared],
                  "own_threads": [s.get_session_options().use_per_session_threads for s in sessions],
                  "frames": [json.loads(line) for line in out.getvalue().splitlines()], "text": speller.text}))
"""


def _loop(threads: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", LOOP, str(CLIP), str(threads)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_shared_pool_runs_the_same_loop_as_pools_of_their_own():
    shared, own = _loop(2), _loop(1)
    # 2 threads: one pool for all three models, and a second plan in that process gets the pool already made
    assert shared["plan"] == shared["again"] == [2, 2, True] and shared["own_threads"] == [False] * 3
    assert own["plan"] == [1, 1, False] and own["own_threads"] == [True] * 3 and own["again"] == [3, 3, True]
    assert len(shared["frames"]) == len(own["frames"]) == 60 and shared["text"] == own["text"]
    for a, b in zip(shared["frames"], own["frames"]):
        assert (a["frame"], a["label"], a["accepted"]) == (b["frame"], b["label"], b["accepted"])
        assert abs(a["prob"] - b["prob"]) < 1e-4
        assert all(abs(x - y) <= 1 for x, y in zip(a["box"], b["box"]))


def test_overlap_gives_the_hand_finder_a_core_and_one_thread_needs_no_pool(monkeypatch):
    from asl_edge.common import sessions

    monkeypatch.setattr(sessions, "_shared_pool", None)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert LoopThreads.plan(None, overlap=True) == LoopThreads(3, 1)
    assert LoopThreads.plan(2, overlap=True) == LoopThreads(2, 1)
    assert LoopThreads.plan(1, overlap=False) == LoopThreads(1, 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert LoopThreads.plan(None, overlap=False) == LoopThreads(None, 1)  # one core: nothing to share
    monkeypatch.setattr(sessions, "_shared_pool", 2)  # a pool made earlier in the process takes every session
    assert LoopThreads.plan(1, overlap=True) == LoopThreads(2, 2, shared=True)


def test_asl_run_says_how_the_loop_uses_its_threads():
    for extra, said in ((["--threads", "2", "--no-overlap"], "one pool of 2 threads shared by the hand finder"),
                        (["--threads", "1", "--overlap"], "the classifier on 1 thread(s), the hand finder on 1, overlapped")):
        proc = subprocess.run([sys.executable, "-m", "asl_edge.runtime.cli", "--camera", str(CLIP), "--no-display",
                               "--max-frames", "20", *extra], capture_output=True, text=True, timeout=600, cwd=REPO)
        assert proc.returncode == 0 and said in proc.stderr, proc.stderr


def test_without_a_shared_pool_the_models_keep_pools_of_their_own(monkeypatch):
    from onnxruntime.capi import _pybind_state

    from asl_edge.common import sessions

    def refuse(*_):
        raise RuntimeError("Global thread pools have already been created, cannot replace them")

    monkeypatch.setattr(sessions, "_shared_pool", None)
    monkeypatch.setattr(_pybind_state, "set_global_thread_pool_sizes", refuse)
    assert sessions.shared_pool(2) is None and sessions._shared_pool is None
    assert LoopThreads.plan(2, overlap=False) == LoopThreads(2, 1)
    assert sessions.session_options(2).intra_op_num_threads == 2
