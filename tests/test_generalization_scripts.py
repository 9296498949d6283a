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
            "--person-test", KAGGLE_TEST, "--shots", "0,2", "--recipe", "--img-size 64 --epochs 1",
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


def test_hand_search_uses_only_the_photos_a_run_held_out(tmp_path):
    from asl_edge.benchmarks.studies.hand_search import heldout_photos

    root = tmp_path / "rf"
    (root / "A").mkdir(parents=True)
    split = tmp_path / "split.csv"
    split.write_text("split,class,source,path\n"
                     f"train,A,1,{root}/A/a1.jpg\nval,A,1,{root}/A/a2.jpg\nval,A,0,{tmp_path}/kaggle/A/k.jpg\n")
    assert heldout_photos(split, root) == ["A/a2.jpg"]
