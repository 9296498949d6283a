"""asl-bench --loop: the camera loop's cost per stage, and the lean preprocessing it measures."""
from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from asl_edge.runtime.contract import IMAGENET_MEAN, IMAGENET_STD, LITE_MEAN, LITE_STD, ModelContract

from conftest import REPO, assert_one_line_error, run_cli

CLIP = REPO / "scripts" / "demo_clip" / "hello_lolzorus.mp4"


def _arithmetic(contract, x):
    y = x.astype(np.float32) * np.float32(1.0 / 255.0)
    y = (y - np.asarray(contract.mean, np.float32)) / np.asarray(contract.std, np.float32)
    return np.ascontiguousarray(np.moveaxis(y, -1, -3))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), batch=st.sampled_from([(), (1,), (3,)]), side=st.integers(1, 40),
       stats=st.sampled_from([(IMAGENET_MEAN, IMAGENET_STD), (LITE_MEAN, LITE_STD), ((0.1, 0.5, 0.9), (0.3, 1.0, 2.0))]))
def test_the_normalisation_table_gives_the_arithmetics_numbers(seed, batch, side, stats):
    contract = ModelContract(mean=stats[0], std=stats[1])
    x = np.random.default_rng(seed).integers(0, 256, batch + (side, side, 3), dtype=np.uint8)
    got = contract.normalize(x)
    np.testing.assert_array_equal(got, _arithmetic(contract, x))
    assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"]


def test_the_loop_is_measured_stage_by_stage(tmp_path):
    out = tmp_path / "loop"
    proc = run_cli("asl_edge.benchmarks.cli", "--loop", CLIP, "--loop-threads", "1,2", "--max-frames", "40",
                   "--out", out, check=True)
    report = json.loads((out / "loop.json").read_text())
    assert report["int8_isa"] and [r["threads"] for r in report["runs"]] == [1, 2]
    for r in report["runs"]:
        assert r["frames"] == 40 and r["fps"] > 0
        ms = r["ms_per_frame"]
        assert set(ms) == {"read", "palm", "landmarks", "hand_other", "preprocess", "classifier", "decoder", "other"}
        assert all(v >= 0 for v in ms.values()) and ms["classifier"] > 0 and ms["landmarks"] > 0
        # the stages add up to the loop's own wall time
        assert abs(sum(ms.values()) * r["frames"] / 1000 - r["seconds"]) < 0.05 * r["seconds"] + 0.01
        assert r["landmark_runs"] >= r["hand_frames"] > 0
    assert "palm detection" in (out / "loop.md").read_text() and "end to end" in proc.stdout


def test_loop_mistakes_are_one_line(tmp_path):
    assert_one_line_error(run_cli("asl_edge.benchmarks.cli", "--loop", tmp_path / "none.mp4", "--out", tmp_path),
                          "cannot open video file")
    assert_one_line_error(run_cli("asl_edge.benchmarks.cli", "--loop", CLIP, "--loop-threads", "0,x"), "--loop-threads")
    assert_one_line_error(run_cli("asl_edge.benchmarks.cli", "--out", tmp_path), "--data")


def test_hand_models_side_by_side_with_their_parity(tmp_path):
    out = tmp_path / "loop"
    run_cli("asl_edge.benchmarks.cli", "--loop", CLIP, "--loop-threads", "1", "--loop-hands", "full,full-int8",
            "--loop-overlap", "--max-frames", "30", "--out", out, check=True)
    report = json.loads((out / "loop.json").read_text())
    assert [(r["hand_model"], r["overlap"]) for r in report["runs"]] == [
        ("full", False), ("full", True), ("full-int8", False), ("full-int8", True)]
    assert all(r["frames"] == 30 for r in report["runs"])
    assert report["runs"][0]["text"] == report["runs"][1]["text"]  # overlap: the same letters
    (p,) = report["hand_parity"]
    assert (p["reference"], p["candidate"], p["frames"]) == ("full", "full-int8", 30)
    # the clip's hand is in view throughout: both find it, in nearly the same place, and the letters agree
    assert p["both_hands"] == p["reference_hands"] >= 28
    assert p["box_iou_0.9"] >= 0.9 and p["landmark_error_median"] < 0.02 and p["top1_same"] >= 0.9
    assert "full-int8 against full" in (out / "loop.md").read_text()


def test_an_unknown_hand_model_is_one_line(tmp_path):
    proc = run_cli("asl_edge.benchmarks.cli", "--loop", CLIP, "--loop-hands", "full,tiny", "--out", tmp_path)
    assert_one_line_error(proc, "--loop-hands", "full-int8")
