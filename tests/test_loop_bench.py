"""asl-bench --loop: the camera loop's cost per stage, and the lean preprocessing it measures."""
from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import cv2
import pytest

from asl_edge.common.errors import UserError
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


def _binned_reference(square, s):
    """binned_linear written another way: numpy block means of the centred k * (side // k) pixels, then linear."""
    side = square.shape[0]
    k = side // s
    if side > s and k >= 2:
        n = side // k
        top = (side - n * k) // 2
        blocks = square[top:top + n * k, top:top + n * k].reshape(n, k, n, k, 3).astype(np.float64).mean(axis=(1, 3))
        square = np.floor(blocks + 0.5).astype(np.uint8)
    return square if side == s else cv2.resize(square, (s, s), interpolation=cv2.INTER_LINEAR)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), side=st.integers(20, 300), s=st.sampled_from([16, 32, 56]))
def test_binned_linear_bins_whole_blocks_then_resizes_linearly(seed, side, s):
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (side + 7, side, 3), dtype=np.uint8)  # not square: the centre square is taken
    square = frame[3:3 + side]
    got = ModelContract(input_size=s, interpolation="binned_linear").resize_rgb(frame)
    assert got.shape == (s, s, 3) and got.dtype == np.uint8
    diff = np.abs(got.astype(int) - _binned_reference(square, s).astype(int))
    assert diff.max() <= 1, diff.max()  # OpenCV's fixed-point rounding of the block means


def test_binned_linear_stays_close_to_area_on_a_real_hand_and_is_the_same_when_enlarging():
    cap = cv2.VideoCapture(str(CLIP))
    ok, frame = cap.read()
    cap.release()
    assert ok
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    area, binned = ModelContract(), ModelContract(interpolation="binned_linear")
    for side in (300, 451, 479):  # ratio 1.3: linear only; 2.0 and 2.1: binned by 2 first
        crop = rgb[:side, :side]
        a, b = area.resize_rgb(crop).astype(int), binned.resize_rgb(crop).astype(int)
        assert np.abs(a - b).mean() < 3, (side, np.abs(a - b).mean())
    small = rgb[:150, :150]
    np.testing.assert_array_equal(area.resize_rgb(small), binned.resize_rgb(small))


def test_an_unknown_interpolation_is_refused_in_one_line():
    with pytest.raises(UserError, match="interpolation 'lanczos'"):
        ModelContract.from_dict({**ModelContract().to_dict(), "interpolation": "lanczos"})


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
