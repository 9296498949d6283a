"""INT8 hand landmark models: the shipped file, the tool that makes it, and the runtime that picks it."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from asl_edge.export import hand_models
from asl_edge.common.errors import UserError
from asl_edge.common.fileio import file_sha256
from asl_edge.runtime.hands import LANDMARK_MODELS, HandTracker
from asl_edge.runtime.hands.geometry import MIN_CROP_SIDE, Crop
from asl_edge.common.safeio import read_image_rgb

from conftest import DATA, KAGGLE_TEST, need


def test_shipped_int8_landmark_model_is_checked_and_mixed_precision():
    path = LANDMARK_MODELS["full-int8"]
    model = onnx.load(str(path))
    meta = json.loads({p.key: p.value for p in model.metadata_props}[hand_models.METADATA_KEY])
    assert meta["source_sha256"] == file_sha256(LANDMARK_MODELS["full"])  # made from the shipped float model
    assert meta["avx2_overflow_pair_sums"] == 0 and meta["weight_range"] == "pair-safe"
    assert meta["parity"]["median_error"] <= hand_models.MAX_MEDIAN_ERROR
    assert meta["parity"]["presence_flips"] <= hand_models.MAX_PRESENCE_FLIPS
    nodes = model.graph.node
    quantized_inputs = {n.input[0] for n in nodes if n.op_type == "DequantizeLinear"}
    convs = [n for n in nodes if n.op_type == "Conv"]
    # the first convs and the heads read float tensors; later convs read dequantized ones
    assert not any(i in quantized_inputs for c in convs[:meta["float_convs"]] for i in c.input[1:2])
    assert sum(c.input[1] in {n.output[0] for n in nodes if n.op_type == "DequantizeLinear"} for c in convs) > 30
    produced_by = {o: n.op_type for n in nodes for o in n.output}
    for n in nodes:
        if n.op_type in ("Gemm", "Sigmoid"):
            assert produced_by.get(n.input[0]) != "DequantizeLinear", n.name


def test_int8_tracker_finds_the_same_hands():
    images = sorted(need(KAGGLE_TEST).rglob("*.jpg"))[:10]
    full, int8 = HandTracker("full", video=False), HandTracker("full-int8", video=False)
    compared = 0
    for path in images:
        rgb = read_image_rgb(path)
        a, b = full.process(rgb), int8.process(rgb)
        assert (a is None) == (b is None), path.name
        if a is not None:
            side = np.ptp(a.landmarks[:, :2], axis=0).max()
            assert np.abs(a.landmarks[:, :2] - b.landmarks[:, :2]).mean() < 0.05 * side, path.name
            compared += 1
    assert compared >= 5


def test_a_track_ends_when_its_crop_shrinks_to_nothing():
    tracker = HandTracker("full-int8")
    rgb = np.full((480, 640, 3), 128, np.uint8)
    assert tracker.landmarks(rgb, Crop(320, 240, MIN_CROP_SIDE - 1, 0.0)) is None


@pytest.fixture(scope="module")
def kaggle_crops():
    # 28 photos and one webcam video (10 of its frames): enough hands to calibrate on and check against
    video = need(DATA / "webcam_recordings") / "lolzorus" / "B.mp4"
    return hand_models.hand_crops(hand_models.source_items([need(KAGGLE_TEST), video], 28))


def test_tool_writes_a_checked_int8_model(kaggle_crops, tmp_path):
    out = tmp_path / "lite.int8.onnx"
    meta = hand_models.quantize_landmark_model(LANDMARK_MODELS["lite"], out, kaggle_crops)
    assert meta["calibration_crops"] == len(kaggle_crops.calibration) >= 16
    written = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}[hand_models.METADATA_KEY])
    assert written == meta
    x = kaggle_crops.check[:1]
    import onnxruntime as ort
    lm, presence = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        ["landmarks", "presence"], {"input": x})
    assert np.isfinite(lm).all() and presence.ravel()[0] > 0.5


def test_tool_refuses_a_model_that_drifts_and_writes_nothing(kaggle_crops, tmp_path, monkeypatch):
    monkeypatch.setattr(hand_models, "MAX_MEDIAN_ERROR", -1.0)
    out = tmp_path / "lite.int8.onnx"
    with pytest.raises(UserError, match="too far from float"):
        hand_models.quantize_landmark_model(LANDMARK_MODELS["lite"], out, kaggle_crops)
    assert list(tmp_path.iterdir()) == []


def test_tool_input_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        hand_models.source_items([tmp_path / "missing"], 5)
    (tmp_path / "notes.txt").write_text("no hands here")
    with pytest.raises(UserError, match="no videos or images"):
        hand_models.source_items([tmp_path], 5)
    blank = tmp_path / "blank.png"
    import cv2
    cv2.imwrite(str(blank), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(UserError, match="hand crops found"):
        hand_models.hand_crops(hand_models.source_items([blank], 5))


def test_source_items_spreads_over_each_folder():
    webcam = need(DATA / "webcam_recordings")
    items = hand_models.source_items([webcam], 6)
    assert len(items) == 6 and len({p.parent.name for p in items}) == 3
