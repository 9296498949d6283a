"""Parity of runtime/hands/ (ONNX) with MediaPipe itself; skips where mediapipe is not installed
(it wants numpy<2: run this file from a venv with mediapipe>=0.10.5,<0.10.30, asl-edge and pytest)."""
import pytest

from asl_edge.common.errors import UserError

from conftest import KAGGLE_TEST, ROBOFLOW_TRAIN, need


def mediapipe_reason():
    from asl_edge.benchmarks.studies.mediapipe_ref import load_mediapipe_hands
    try:
        load_mediapipe_hands()
    except UserError as e:
        return str(e)
    return None


REASON = mediapipe_reason()


@pytest.mark.skipif(REASON is not None, reason=f"MediaPipe reference unavailable: {REASON}")
@pytest.mark.parametrize("source", ["kaggle test", "roboflow photos"])
def test_onnx_hands_match_mediapipe(source):
    from asl_edge.benchmarks.studies.hands_parity import compare, kaggle_test, roboflow_photos
    from asl_edge.benchmarks.studies.mediapipe_ref import MediaPipeHands
    from asl_edge.runtime.hands import HandFinder

    if source == "kaggle test":
        need(KAGGLE_TEST)
        items = kaggle_test(KAGGLE_TEST.parent)
    else:
        need(ROBOFLOW_TRAIN)
        items = roboflow_photos(ROBOFLOW_TRAIN, 20)
    ref = MediaPipeHands(video=False, complexity=1)
    r = compare(items, HandFinder(video=False, zoom=False), ref)
    ref.close()
    assert r["mediapipe_found"] >= 5, r
    assert r["box_iou_ge_0.9_of_mediapipe_found"] >= 0.95, r
    assert r["landmark_error_median_pct"] <= 3.0 and r["landmark_error_le_3pct_of_mediapipe_found"] >= 0.95, r
    assert abs(r["onnx_found"] - r["mediapipe_found"]) <= 1, r
