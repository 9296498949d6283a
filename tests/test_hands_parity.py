"""Parity of runtime/hands/ (ONNX) with MediaPipe itself, through the parity record's own command
(benchmarks/studies/hands_parity.py); skips where mediapipe is not installed (it wants numpy<2: run
this file from a venv with mediapipe>=0.10.5,<0.10.30, asl-edge and pytest)."""
import importlib.util
import json

import pytest

from conftest import KAGGLE_TEST, ROBOFLOW_TRAIN, need, run_cli

MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None


@pytest.mark.skipif(not MEDIAPIPE, reason="MediaPipe reference unavailable: pip install \"mediapipe>=0.10.5,<0.10.30\"")
def test_onnx_hands_match_mediapipe(tmp_path):
    out = tmp_path / "parity.json"
    run_cli("asl_edge.benchmarks.studies.hands_parity", "--kaggle", need(KAGGLE_TEST).parent,
            "--roboflow", need(ROBOFLOW_TRAIN), "--max-images", 20, "--json", out, check=True)
    results = json.loads(out.read_text())
    for source in ("kaggle test", "roboflow photos"):
        r = results[source]
        assert r["mediapipe_found"] >= 5, r
        assert r["box_iou_ge_0.9_of_mediapipe_found"] >= 0.95, r
        assert r["landmark_error_median_pct"] <= 3.0 and r["landmark_error_le_3pct_of_mediapipe_found"] >= 0.95, r
        assert abs(r["onnx_found"] - r["mediapipe_found"]) <= 1, r
