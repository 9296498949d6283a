"""asl-bench end to end on a tiny model trained on real images, plus its one-line errors.

One session fixture trains (1 epoch, 64 px, 4 images per class) and exports FP32 + INT8;
one benchmark run is shared by the JSON checks. Timings are checked for consistency only,
never against thresholds."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ASL_SHARED_DATA", REPO.parent / "shared" / "data"))
KAGGLE_TRAIN = DATA / "asl_alphabet" / "train"
KAGGLE_TEST = DATA / "asl_alphabet" / "test"  # one image per class, no "del": a data set with a class missing
ROBOFLOW = DATA / "roboflow_asl_letters" / "train"  # letters only, with hand boxes
RUNS = 12


def _need(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (expected ../shared/data beside the repo; "
                    "set ASL_SHARED_DATA to its location)")
    return path


def _run(module, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


def _bench(*args, timeout=300):
    return _run("asl_edge.benchmarks.cli", *args, timeout=timeout)


def _ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _one_error_line(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for f in fragments:
        assert f in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="session")
def bench_models(tmp_path_factory):
    """best.ckpt, best.onnx (FP32), best.int8.onnx of a tiny model trained on real images."""
    _need(KAGGLE_TRAIN)
    out = tmp_path_factory.mktemp("bench-model")
    _ok(_run("asl_edge.train.cli", "--data", KAGGLE_TRAIN, "--arch", "efficientnet_lite0", "--img-size", 64,
             "--max-per-class", 4, "--epochs", 1, "--out", out, "--val-fraction", 0.25, "--workers", 0,
             "--cache-dir", tmp_path_factory.mktemp("bench-cache")))
    _ok(_run("asl_edge.export.cli", out / "best.ckpt", "--quantize", "int8", "--calib-count", 32))
    return out / "best.ckpt", out / "best.onnx", out / "best.int8.onnx"


@pytest.fixture(scope="session")
def bench_run(bench_models, tmp_path_factory):
    """One asl-bench run: checkpoint + FP32 + INT8 on two data sets (~28 images each)."""
    _need(KAGGLE_TEST)
    _need(ROBOFLOW)
    ckpt, fp32, int8 = bench_models
    out = tmp_path_factory.mktemp("bench-out")
    proc = _ok(_bench("--ckpt", ckpt, "--onnx", fp32, "--onnx", int8, "--data", KAGGLE_TEST, "--data", ROBOFLOW,
                      "--max-images", 28, "--runs", RUNS, "--warmup", 2, "--batch", 8, "--threads", 2,
                      "--min-agreement", 0, "--max-drop", 100, "--out", out))
    return json.loads((out / "bench.json").read_text()), out, proc


def _results(bench):
    for ds in bench["datasets"]:
        for rid, r in ds["results"].items():
            yield ds, rid, r


# --- the benchmark's report ----------------------------------------------------------------

def test_report_fields_and_outputs(bench_run, bench_models):
    bench, out, proc = bench_run
    assert bench["schema"] == "asl-edge-bench/1"
    assert bench["command"].startswith("asl-bench --ckpt ")
    m = bench["machine"]
    for key in ("cpu", "logical_cores", "threads", "python", "date", "versions", "onnxruntime_providers"):
        assert m[key] not in (None, ""), key
    assert m["threads"] == 2 and m["versions"]["torch"] and m["versions"]["onnxruntime"]
    assert [r["id"] for r in bench["models"]] == ["best.ckpt@cpu", "best.onnx@cpu", "best.int8.onnx@cpu"]
    assert [r["format"] for r in bench["models"]] == ["PyTorch", "ONNX FP32", "ONNX INT8"]
    assert bench["reference"] == "best.ckpt@cpu" and [r["reference"] for r in bench["models"]] == [True, False, False]
    for rec, path in zip(bench["models"], bench_models):
        assert rec["status"] == "ok", rec
        assert rec["size_mb"] == pytest.approx(path.stat().st_size / 1e6)
        assert rec["threads"] == 2
    assert bench["checks"] == {"passed": True, "failed_models": [], "violations": []}
    md = (out / "bench.md").read_text()
    assert "# asl-bench results" in md and md.count("| best.int8.onnx |") == 2
    for p in bench["plots"]:
        assert (out / p).stat().st_size > 0
    # one terminal table per data set
    assert sum(l.startswith("data ") for l in proc.stdout.splitlines()) == 2


def test_reference_agrees_with_itself_and_fp32_with_pytorch(bench_run):
    bench, _, _ = bench_run
    for ds, rid, r in _results(bench):
        a = r["agreement"]
        if rid == bench["reference"]:
            assert a["top1_pct"] == 100.0 and a["max_abs_logit_diff"] == 0.0 and a["max_prob_diff"] == 0.0
            assert r["acc_drop_pts"] == 0.0
        if rid == "best.onnx@cpu":  # export verified FP32 parity; tolerance as loose as export's
            assert a["max_abs_logit_diff"] < 1e-2
        assert 0.0 <= a["mean_abs_logit_diff"] <= a["max_abs_logit_diff"]
        ref_top1 = ds["results"][bench["reference"]]["top1_pct"]
        assert r["acc_drop_pts"] == pytest.approx(ref_top1 - r["top1_pct"])


def test_latency_numbers_are_consistent(bench_run):
    bench, _, _ = bench_run
    for rec in bench["models"]:
        lat = rec["latency_ms"]
        assert lat["runs"] == RUNS == len(lat["samples"]) and lat["warmup"] == 2
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert lat["min"] <= lat["mean"] <= lat["max"]
        assert lat["p50"] == pytest.approx(float(np.percentile(lat["samples"], 50)), rel=1e-3, abs=1e-3)
        t = rec["throughput"]
        assert t["batch"] == 8 and t["batches"] >= 3 and t["img_per_s"] > 0
        assert rec["first_inference_ms"] == pytest.approx(rec["load_ms"] + rec["first_run_ms"])
        assert rec["peak_rss_mb"] >= rec["rss_before_load_mb"] > 0


def test_onnx_workers_run_without_torch(bench_run):
    bench, _, _ = bench_run
    assert {r["id"]: r["torch_imported"] for r in bench["models"]} == {
        "best.ckpt@cpu": True, "best.onnx@cpu": False, "best.int8.onnx@cpu": False}
    assert len({r["pid"] for r in bench["models"]}) == 3  # each model in its own process


def test_accuracy_matches_a_recount_of_the_stored_predictions(bench_run):
    bench, _, _ = bench_run
    classes = bench["classes"]
    for ds, rid, r in _results(bench):
        labels, preds = np.array(ds["labels"]), np.array(r["predictions"])
        n = ds["n_images"]
        assert len(labels) == len(preds) == len(ds["files"]) == n == r["n"]
        assert r["top1_pct"] == pytest.approx(100 * (preds == labels).mean())
        assert r["top1_pct"] <= r["top5_pct"] <= 100
        cm = np.array(r["confusion"])
        assert cm.shape == (len(classes), len(classes)) and cm.sum() == n
        assert (cm == np.histogram2d(labels, preds, bins=[np.arange(len(classes) + 1)] * 2)[0]).all()
        present = {classes[i]: c for i, c in Counter(labels.tolist()).items()}
        assert set(r["per_class"]) == set(present) == set(ds["class_counts"])
        for name, pc in r["per_class"].items():
            i = classes.index(name)
            assert pc["n"] == present[name] == ds["class_counts"][name] == cm[i].sum()
            assert pc["correct"] == cm[i, i] == int(((labels == i) & (preds == i)).sum())
            assert pc["acc_pct"] == pytest.approx(100 * pc["correct"] / pc["n"])
        assert sum(pc["correct"] for pc in r["per_class"].values()) == round(r["top1_pct"] * n / 100)


def test_each_data_set_is_reported_separately(bench_run):
    bench, _, _ = bench_run
    kaggle, roboflow = bench["datasets"]
    assert kaggle["name"] == str(KAGGLE_TEST) and roboflow["name"] == str(ROBOFLOW)
    assert "del" not in kaggle["class_counts"]  # the Kaggle test set has no del image: missing classes are fine
    assert set(roboflow["class_counts"]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert kaggle["n_images"] == 28 and roboflow["n_images"] == 28


# --- pass/fail floors ----------------------------------------------------------------------

def _shifted_copy(src: Path, dst: Path, cls: int, num_classes: int) -> Path:
    """The FP32 model with +100 added to one class's logit: it predicts that class for every image."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(src))
    name = m.graph.output[0].name
    for node in m.graph.node:
        node.output[:] = [f"{o}_raw" if o == name else o for o in node.output]
    shift = np.zeros(num_classes, np.float32)
    shift[cls] = 100.0
    m.graph.initializer.append(numpy_helper.from_array(shift, "bench_test_shift"))
    m.graph.node.append(helper.make_node("Add", [f"{name}_raw", "bench_test_shift"], [name]))
    onnx.save(m, str(dst))
    return dst


def test_floors_fail_with_exit_1(bench_run, bench_models, tmp_path):
    bench, _, _ = bench_run
    _, fp32, _ = bench_models
    kaggle = bench["datasets"][0]
    ref_preds = kaggle["results"]["best.onnx@cpu"]["predictions"]
    # shift towards the class the FP32 model predicts least: agreement is then below 100%
    counts = Counter(ref_preds)
    cls = min(range(len(bench["classes"])), key=lambda c: counts.get(c, 0))
    shifted = _shifted_copy(fp32, tmp_path / "shifted.onnx", cls, len(bench["classes"]))
    proc = _bench("--onnx", fp32, "--onnx", shifted, "--data", KAGGLE_TEST, "--runs", 3, "--warmup", 1,
                  "--threads", 1, "--min-agreement", 99, "--no-plots", "--out", tmp_path / "out")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    fails = [l for l in proc.stderr.splitlines() if l.startswith("FAIL: ")]
    assert len(fails) == 1 and "shifted.onnx@cpu" in fails[0] and "--min-agreement 99%" in fails[0], proc.stderr
    result = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert result["reference"] == "best.onnx@cpu"  # no --ckpt: the first --onnx
    assert result["checks"]["passed"] is False
    assert set(result["datasets"][0]["results"]["shifted.onnx@cpu"]["predictions"]) == {cls}


def test_check_floors_messages():
    from asl_edge.benchmarks.metrics import check_floors

    ds = [{"name": "d", "results": {
        "ref@cpu": {"top1_pct": 80.0, "acc_drop_pts": 0.0, "agreement": {"top1_pct": 100.0}},
        "q@cpu": {"top1_pct": 70.0, "acc_drop_pts": 10.0, "agreement": {"top1_pct": 90.0}}}}]
    assert check_floors(ds, None, None) == []
    assert check_floors(ds, 90, 10) == []
    v = check_floors(ds, 95, 5)
    assert len(v) == 2 and all(s.startswith("q@cpu on d: ") for s in v)
    assert "agreement 90.00% < --min-agreement 95%" in v[0] and "10.00 points below" in v[1]


def test_accuracy_report_on_a_hand_made_case():
    from asl_edge.benchmarks.metrics import accuracy_report, agreement

    classes = ["A", "B", "C", "D", "E", "F"]
    logits = np.eye(6, dtype=np.float32)[[0, 1, 1, 5]]  # predicts A, B, B, F
    labels = np.array([0, 1, 2, 2])
    r = accuracy_report(logits, labels, classes)
    assert r["predictions"] == [0, 1, 1, 5] and r["top1_pct"] == 50.0 and r["top5_k"] == 5
    assert r["per_class"] == {"A": {"n": 1, "correct": 1, "acc_pct": 100.0}, "B": {"n": 1, "correct": 1, "acc_pct": 100.0},
                              "C": {"n": 2, "correct": 0, "acc_pct": 0.0}}
    assert r["confusion"][2] == [0, 1, 0, 0, 0, 1]
    a = agreement(logits, logits[[0, 1, 1, 1]])
    assert a["top1_pct"] == 75.0 and a["max_abs_logit_diff"] == 1.0


def test_latency_summary_time_budget_and_cpu_model_parsing():
    from asl_edge.benchmarks.measure import summarize_ms, time_runs
    from asl_edge.benchmarks.report import cpu_model, physical_cores

    s = summarize_ms([0.003, 0.001, 0.002, 0.010])
    assert s["min"] == 1.0 and s["max"] == 10.0 and s["p50"] == pytest.approx(2.5) and s["p50"] <= s["p90"] <= s["p99"]
    calls = []
    times = time_runs(calls.append, [1, 2], warmup=3, runs=None, time_budget=0.02)
    assert len(times) >= 5 and len(calls) == 3 + len(times) and sum(times) <= 0.02 + 0.5
    x86 = "processor\t: 0\nmodel name\t: Intel(R) Core(TM) i5\nphysical id\t: 0\ncore id\t: 0\n" \
          "processor\t: 1\nmodel name\t: Intel(R) Core(TM) i5\nphysical id\t: 0\ncore id\t: 0\n"
    assert cpu_model(x86) == "Intel(R) Core(TM) i5" and physical_cores(x86) == 1
    pi = "processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
    assert cpu_model(pi) == "Raspberry Pi 4 Model B Rev 1.4"


# --- bad input: one line, exit 2 ------------------------------------------------------------

def test_missing_onnx_file_is_one_line(tmp_path):
    proc = _bench("--onnx", tmp_path / "nope.onnx", "--data", tmp_path, "--out", tmp_path / "out")
    _one_error_line(proc, "ONNX model not found", "nope.onnx")


def test_nothing_to_benchmark_is_one_line(tmp_path):
    _one_error_line(_bench("--data", tmp_path), "nothing to benchmark")


def test_mismatched_contracts_are_one_line(bench_models, tmp_path):
    from asl_edge.export.onnx_export import add_metadata
    from asl_edge.runtime.contract import CONTRACT_KEY
    from asl_edge.runtime.model import OnnxClassifier

    _need(KAGGLE_TEST)
    ckpt, fp32, _ = bench_models
    contract = OnnxClassifier(fp32, provider="cpu").contract.to_dict()
    bigger = shutil.copy(fp32, tmp_path / "bigger.onnx")
    add_metadata(bigger, {CONTRACT_KEY: json.dumps(dict(contract, input_size=96))})
    reordered = shutil.copy(fp32, tmp_path / "reordered.onnx")
    add_metadata(reordered, {CONTRACT_KEY: json.dumps(dict(contract, classes=contract["classes"][::-1]))})

    proc = _bench("--onnx", fp32, "--onnx", bigger, "--data", KAGGLE_TEST, "--out", tmp_path / "o1")
    # a contract that no longer fits its own graph is refused at load, before any comparison
    _one_error_line(proc, "bigger.onnx", "does not match its graph", "S=96")
    proc = _bench("--ckpt", ckpt, "--onnx", reordered, "--data", KAGGLE_TEST, "--out", tmp_path / "o2")
    _one_error_line(proc, "do not share a contract", "reordered.onnx has classes")
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_bad_models_and_data_are_one_line(bench_models, tmp_path):
    _, fp32, _ = bench_models
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not an onnx model" * 10)
    _one_error_line(_bench("--onnx", corrupt, "--data", tmp_path), "cannot load ONNX model", "corrupt.onnx")

    (tmp_path / "nothing_known" / "hello").mkdir(parents=True)
    _one_error_line(_bench("--onnx", fp32, "--data", tmp_path / "nothing_known"), "no class folders found")

    (tmp_path / "extra" / "A").mkdir(parents=True)
    (tmp_path / "extra" / "Q2").mkdir()
    _one_error_line(_bench("--onnx", fp32, "--data", tmp_path / "extra"), "unknown class folder", "Q2")


def test_results_are_printed_before_a_failing_write(bench_models, tmp_path, monkeypatch, capsys):
    """A full disk at the end must not lose the measurements: the table is printed first."""
    from asl_edge.benchmarks import report
    from asl_edge.benchmarks.bench import BenchConfig, run_bench
    from asl_edge.common.errors import UserError

    _need(KAGGLE_TEST)
    _, fp32, _ = bench_models

    def full(*a, **k):
        raise UserError("cannot write bench.json: the disk is full; free space or choose another output folder")

    monkeypatch.setattr(report, "write_all", full)
    cfg = BenchConfig(ckpt=None, onnx=[str(fp32)], data=[str(KAGGLE_TEST)], threads=1, runs=3, warmup=1,
                      max_images=29, plots=False, out=str(tmp_path / "out"))
    with pytest.raises(UserError, match="disk is full"):
        run_bench(cfg)
    out = capsys.readouterr().out
    assert "best.onnx@cpu" in out and "top-1" in out.lower(), out
    assert not any(p.name.startswith(".asl-bench-") for p in (tmp_path / "out").iterdir())
