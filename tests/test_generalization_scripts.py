"""The measurement scripts behind the generalization tables run end to end on real data."""
from __future__ import annotations

import json

from conftest import KAGGLE_TEST, KAGGLE_TRAIN, ROBOFLOW_TRAIN, need, run_cli


def test_ablation_reports_each_source_for_each_run(tmp_path):
    need(KAGGLE_TRAIN)
    need(ROBOFLOW_TRAIN)
    out = tmp_path / "abl"
    run_cli("asl_edge.benchmarks.studies.ablation", "--data", KAGGLE_TRAIN, "--data", ROBOFLOW_TRAIN, "--source-weights", "1,4",
            "--max-per-class", "4", "--epochs", "2", "--cache-dir", tmp_path / "fc", "--out", out,
            "--run", "none=--img-size 64", "--run", "flip=--img-size 64 --augment flip,jitter --views 2", check=True)
    runs = json.loads((out / "ablation.json").read_text())["runs"]
    assert list(runs) == ["none", "flip"]
    for r in runs.values():
        accs = [r["last"][k] for k in ("0", "1")]
        assert all(0.0 <= a <= 1.0 for a in accs), r
    table = (out / "ablation.md").read_text()
    assert "| flip | `--img-size 64 --augment flip,jitter --views 2` |" in table


def test_fewshot_curve_measures_the_person_and_everyone_else(tmp_path):
    need(KAGGLE_TRAIN)
    need(ROBOFLOW_TRAIN)
    out = tmp_path / "fs"
    run_cli("asl_edge.benchmarks.studies.fewshot", "--base-data", ROBOFLOW_TRAIN, "--person", KAGGLE_TRAIN,
            "--person-test", KAGGLE_TEST, "--shots", "0,2", "--recipe", "--img-size 64 --epochs 1 --max-per-class 6",
            "--adapt-epochs", "2", "--cache-dir", tmp_path / "fc", "--out", out, check=True)
    res = json.loads((out / "fewshot.json").read_text())
    methods = [(r["shots"], r["method"].split()[0]) for r in res["runs"]]
    assert methods == [(0, "base"), (2, "adapt"), (2, "retrain")]
    base = res["runs"][0]
    # the base model never saw del/nothing/space, so the person's 29-class score counts them wrong
    assert base["person_heldout"]["n"] > base["person_heldout_letters"]["n"] > 0
    # calibration images are consecutive frames from the training blocks, never the held-out ones
    mine = {p.name for p in (out / "my_hand_2").rglob("*.jpg")}
    held = {p.name for p in (out / "person_test").rglob("*.jpg")}
    assert len(mine) == 2 * 29 and not mine & held
    assert (out / "fewshot.md").is_file()


def test_hand_search_study_measures_zoom_against_the_whole_frame(tmp_path):
    need(KAGGLE_TRAIN)
    need(ROBOFLOW_TRAIN)
    out = tmp_path / "search.json"
    run_cli("asl_edge.benchmarks.studies.hand_search", "--kaggle", KAGGLE_TRAIN.parent, "--roboflow", ROBOFLOW_TRAIN,
            "--frames", 12, "--empty", 2, "--photos", 3, "--videos", 1, "--json", out, check=True)
    r = json.loads(out.read_text())
    made = {tuple(x["zoom"]): x for x in r["made"]}
    off, on = made[()], made[(0.75, 0.5)]
    assert off["hands"] == on["hands"] == 12 and off["empty_frames"] == 2 and on["tiles"] == 21
    assert on["found"] >= off["found"] and on["labelled"] == 12  # the shipped model classified every hand frame
    assert [x["photos"] for x in r["camera"]] == [1, 1]


def test_speller_video_runs_asl_run_on_the_made_video(tmp_path):
    need(KAGGLE_TRAIN)
    need(ROBOFLOW_TRAIN)
    out = tmp_path / "speller.json"
    proc = run_cli("asl_edge.benchmarks.studies.speller_video", "--model", "runtime/models/default.onnx",
                   "--roboflow", ROBOFLOW_TRAIN, "--kaggle", KAGGLE_TRAIN.parent, "--per-letter", 1, "--seconds", 0.8,
                   "--gap", 0.5, "--threshold", 0.8, "--out", out, check=True)
    assert "24 photos, 936 frames" in proc.stdout  # 24 letters x (24 + 15) frames
    r = json.loads(out.read_text())["results"]
    assert [(x["threshold"], x["agreement"], x["shown"]) for x in r] == [(0.8, True, 24), (0.8, False, 24)]
    assert 0 < r[1]["typed_right"] <= 24 and all(x["right"] <= x["typed"] for x in r)
