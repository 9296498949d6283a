"""asl-bench's parent process: checks the inputs, preprocesses every data set once, runs one
worker per model and provider, then scores each model against the reference on each data set."""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asl_edge.common.errors import UserError, say
from asl_edge.common.fileio import check_can_create, sweep_temps, temp_dir, write_error
from asl_edge.common.limits import env_number

from .metrics import accuracy_report, agreement, check_floors
from .models import Row, check_contracts, input_format, load_models, parse_providers, plan_rows

log = logging.getLogger(__name__)

SCHEMA = "asl-edge-bench/1"
WORKER_LIMIT_ENV, WORKER_LIMIT_S = "ASL_EDGE_BENCH_WORKER_LIMIT_S", 1800.0  # per model and provider
CHUNK = 64  # images decoded at a time while writing a data set's .npy


@dataclass
class BenchConfig:
    ckpt: str | None
    onnx: list
    data: list
    threads: int
    providers: str = "auto"
    runs: int | None = 100
    time_budget: float | None = None
    warmup: int = 10
    batch: int = 16
    max_images: int = 300
    out: str = "runs/bench"
    min_agreement: float | None = None
    max_drop: float | None = None
    plots: bool = True
    command: str = ""
    # Crop each image to the hand asl-run's hand finder finds (and give a landmark model its
    # landmarks), as asl-run --roi hand does. None: on when the models take landmarks.
    hands: bool | None = None


@dataclass
class DataSet:
    name: str
    root: str
    files: list
    labels: np.ndarray
    class_counts: dict
    npy: dict  # input format ("float"/"uint8"), and "landmarks" for a landmark model -> .npy path
    hands_found: int | None = None  # with hand crops: images where the finder found a hand


# --- inputs ---------------------------------------------------------------------------------

def check_paths(cfg: BenchConfig):
    """Cheap existence checks first, so a typo costs no model loading."""
    if not cfg.ckpt and not cfg.onnx:
        raise UserError("nothing to benchmark: pass --ckpt CKPT and/or --onnx MODEL.onnx")
    if cfg.ckpt and not Path(cfg.ckpt).is_file():
        raise UserError(f"checkpoint not found: {cfg.ckpt}")
    for p in cfg.onnx:
        if not Path(p).is_file():
            raise UserError(f"ONNX model not found: {p}")
    for d in cfg.data:
        if not Path(d).exists():
            raise UserError(f"data folder not found: {d}")
    check_can_create(cfg.out, "--out")  # a file in the way fails now, not after the measurements


# --- data -----------------------------------------------------------------------------------

def _write_npy(path, samples, make, shape, dtype):
    """Fill a .npy chunk by chunk (open_memmap), so big data sets never sit in memory whole."""
    arr = np.lib.format.open_memmap(str(path), mode="w+", dtype=dtype, shape=(len(samples), *shape))
    # The file is sparse: on a full disk a write through the mapping is SIGBUS (no message, nothing cleaned up).
    # Reserve its blocks first, so a full disk is an OSError here.
    if hasattr(os, "posix_fallocate"):
        with open(path, "r+b") as f:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
    for i in range(0, len(samples), CHUNK):
        arr[i:i + CHUNK] = make(samples[i:i + CHUNK])
    arr.flush()
    del arr


def prepare_data(cfg: BenchConfig, contract, formats: set, tmp: Path, landmarks: bool = False) -> list:
    """Scan, sample (stratified, --max-images) and preprocess each --data folder once; with hand
    crops, through the runtime's hand finder first (cached, as asl-train's). `landmarks`: some
    model takes them (they are then written for every data set)."""
    hands = landmarks if cfg.hands is None else cfg.hands
    if landmarks and not hands:
        raise UserError("this model takes hand landmarks: drop --no-hands (asl-bench finds them as asl-run does)")
    from asl_edge.export.images import load_batch, load_uint8_batch, stratified
    from asl_edge.train.data import scan_source

    classes = list(contract.classes)
    s = contract.input_size
    out = []
    for i, d in enumerate(cfg.data):
        samples, report = scan_source(d, classes)  # unknown class folder -> UserError
        samples = stratified(samples, cfg.max_images or len(samples))
        found = None
        if hands:
            from asl_edge.train.data import CACHE_ROOT
            from asl_edge.train.hand_boxes import fill_hand_boxes

            samples, counts = fill_hand_boxes(samples, CACHE_ROOT / "hand_boxes")
            found = counts["found"]
        labels = np.array([x.label for x in samples], dtype=np.int64)
        npy = {}
        if "float" in formats:
            npy["float"] = tmp / f"data{i}.float.npy"
            _write_npy(npy["float"], samples, lambda ss: load_batch(ss, contract), (3, s, s), np.float32)
        if "uint8" in formats:
            npy["uint8"] = tmp / f"data{i}.uint8.npy"
            _write_npy(npy["uint8"], samples, lambda ss: load_uint8_batch(ss, contract), (s, s, 3), np.uint8)
        if landmarks:
            from asl_edge.runtime.landmarks import stack

            npy["landmarks"] = tmp / f"data{i}.landmarks.npy"
            np.save(npy["landmarks"], stack([x.hand for x in samples], len(samples)))
        counts = {classes[k]: int(n) for k, n in zip(*np.unique(labels, return_counts=True))}
        out.append(DataSet(str(d), str(report.root), [x.path for x in samples], labels, counts, npy, found))
        hand = "" if found is None else f"; hand found in {found} (cropped to it, as asl-run --roi hand)"
        log.info(f"data {d}: {len(samples)} images, {len(counts)} of {len(classes)} classes{hand}")
    return out


# --- workers --------------------------------------------------------------------------------

def run_worker(row: Row, index: int, datasets: list, cfg: BenchConfig, tmp: Path):
    wdir = tmp / f"worker{index}"
    wdir.mkdir()
    cmd = [sys.executable, "-m", "asl_edge.benchmarks.worker", "--kind", row.model.kind,
           "--model", str(row.model.path), "--provider", row.provider, "--threads", str(cfg.threads),
           "--warmup", str(cfg.warmup), "--batch", str(cfg.batch), "--out", str(wdir)]
    cmd += ["--runs", str(cfg.runs)] if cfg.runs is not None else ["--time-budget", str(cfg.time_budget)]
    for ds in datasets:
        cmd += ["--images", str(ds.npy[input_format(row.model)])]
        if row.model.contract.landmarks:
            cmd += ["--landmarks", str(ds.npy["landmarks"])]
    limit = env_number(WORKER_LIMIT_ENV, WORKER_LIMIT_S)
    log.info(f"measuring {row.id} (at most {limit:g} s, ${WORKER_LIMIT_ENV}) ...")
    t0 = time.perf_counter()
    err_path = wdir / "stderr.log"
    with open(err_path, "w") as err:
        try:
            proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=err, timeout=limit)
            rc = proc.returncode
        except subprocess.TimeoutExpired:  # subprocess.run has killed it
            rc = f"no result in {limit:g} s (a graph that never ends?), stopped"
    res_path = wdir / "result.json"
    if res_path.is_file():
        res = json.loads(res_path.read_text())
    else:
        lines = [l for l in err_path.read_text(errors="replace").splitlines() if l.strip()]
        reason = rc if isinstance(rc, str) else lines[-1] if lines else f"worker ended with {rc}"
        res = {"status": "failed", "reason": reason}
    res["worker_seconds"] = time.perf_counter() - t0
    if res.get("status") == "ok":
        logits = [np.load(wdir / f"logits_{i}.npy") for i in range(len(datasets))]
        bad = [i for i, (lg, ds) in enumerate(zip(logits, datasets))
               if lg.shape != (len(ds.labels), row.model.contract.num_classes)]
        if bad:
            res = {"status": "failed", "worker_seconds": res["worker_seconds"], "reason": f"output shape {logits[bad[0]].shape} does not match "
                                                 f"{len(datasets[bad[0]].labels)} images x {row.model.contract.num_classes} classes"}
        else:
            row.logits = logits
    row.result = res
    extra = "" if res["status"] == "ok" else f": {res.get('reason', '')}"
    log.info(f"  {row.id}: {res['status']} in {res['worker_seconds']:.1f}s{extra}")


# --- scoring --------------------------------------------------------------------------------

def score(rows: list, reference: Row, datasets: list, classes) -> list:
    out = []
    for k, ds in enumerate(datasets):
        results = {}
        ref_logits = reference.logits[k] if reference.ok else None
        for row in rows:
            if not row.ok:
                continue
            rep = accuracy_report(row.logits[k], ds.labels, classes)
            rep["agreement"] = None if ref_logits is None else agreement(ref_logits, row.logits[k])
            results[row.id] = rep
        ref_top1 = results[reference.id]["top1_pct"] if reference.ok else None
        for rep in results.values():
            rep["acc_drop_pts"] = None if ref_top1 is None else ref_top1 - rep["top1_pct"]
        out.append({"name": ds.name, "root": ds.root, "n_images": int(len(ds.labels)), "class_counts": ds.class_counts,
                    "files": ds.files, "labels": ds.labels.tolist(), "results": results,
                    "hands_found": ds.hands_found})
    return out


def row_record(row: Row, reference: Row) -> dict:
    rec = {"id": row.id, "format": row.model.format, "kind": row.model.kind, "file": row.model.path.name,
           "path": str(row.model.path.resolve()), "provider": row.provider, "size_mb": row.model.size_mb,
           "reference": row is reference, "input_format": input_format(row.model)}
    rec.update({k: v for k, v in row.result.items() if k not in ("kind", "model", "provider")})
    rec.setdefault("reason", None)
    return rec


# --- the whole run --------------------------------------------------------------------------

def run_bench(cfg: BenchConfig) -> int:
    """Returns the exit status: 0 all good, 1 a model failed or a floor was broken."""
    providers = parse_providers(cfg.providers)
    check_paths(cfg)
    from asl_edge.common.fileio import file_sha256

    from . import report

    models = load_models(cfg.ckpt, cfg.onnx)
    check_contracts(models)
    contract = models[0].contract
    landmarks = any(m.contract.landmarks for m in models)  # image-only models may be compared with them
    rows = plan_rows(models, providers)
    reference = rows[0]
    # Work files (preprocessed .npy, worker logs) inside --out: swept by the next run if killed.
    sweep_temps(cfg.out)
    tmp = temp_dir(cfg.out, ".asl-bench-")
    try:
        datasets = prepare_data(cfg, contract, {input_format(m) for m in models}, tmp, landmarks)
        for i, row in enumerate(rows):
            if not row.result:
                run_worker(row, i, datasets, cfg, tmp)
    except OSError as e:  # a full disk while writing the .npy batches
        raise write_error(tmp, e) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    scored = score(rows, reference, datasets, list(contract.classes))

    failed = [f"{r.id} failed: {r.result.get('reason')}" for r in rows if r.result.get("status") == "failed"]
    if not any(r.ok for r in rows):
        failed.append("no model could be measured (every row was skipped or failed)")
    violations = check_floors(scored, cfg.min_agreement, cfg.max_drop)
    if not reference.ok and (cfg.min_agreement is not None or cfg.max_drop is not None):
        violations.append(f"floors not checked: the reference {reference.id} did not run ({reference.result.get('status')})")
    records = [row_record(r, reference) for r in rows]
    digests = {m.path: file_sha256(m.path) for m in models}
    for rec, row in zip(records, rows):
        rec["sha256"] = digests[row.model.path]
    bench = {
        "schema": SCHEMA,
        "machine": report.machine_info(cfg.threads),
        "command": cfg.command,
        "settings": {"threads": cfg.threads, "providers": cfg.providers, "runs": cfg.runs,
                     "time_budget_s": cfg.time_budget, "warmup": cfg.warmup, "batch": cfg.batch,
                     "max_images": cfg.max_images, "min_agreement_pct": cfg.min_agreement,
                     "max_drop_pts": cfg.max_drop,
                     "hand_crops": landmarks if cfg.hands is None else cfg.hands},
        "contract": contract.to_dict(),
        "classes": list(contract.classes),
        "reference": reference.id,
        "models": records,
        "datasets": scored,
        "checks": {"passed": not failed and not violations, "failed_models": failed, "violations": violations},
    }
    # Results first: a write failure (full disk, read-only --out) must not lose the measurements.
    for ds in scored:
        for line in report.text_table(bench, ds).splitlines():
            say(line)
        print(flush=True)
    report.write_all(bench, Path(cfg.out), plots=cfg.plots)
    say(f"wrote {Path(cfg.out) / 'bench.json'} and {Path(cfg.out) / 'bench.md'}")
    for msg in failed + violations:
        say(f"FAIL: {msg}", file=sys.stderr)  # a message may quote a model's node names
    return 0 if bench["checks"]["passed"] else 1
