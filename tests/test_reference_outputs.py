"""Behaviour kept through refactors: asl-run --json of the shipped model on the 28 official Kaggle test
images equals the stored reference (tests/data/asl_run_reference.json): the same labels; the hand boxes
within 3 px and the probabilities within 0.02, since the float hand models and the float layers round
differently on AVX2 and AVX-512 kernels (the INT8 layers give the same integers on both). Rewrite the reference only for a new shipped model, and say so in its commit."""
from __future__ import annotations

import json
from pathlib import Path

from asl_edge.common.fileio import file_sha256
from asl_edge.runtime.model import DEFAULT_MODEL

from conftest import DATA, need, run_cli

REFERENCE = Path(__file__).parent / "data" / "asl_run_reference.json"


def test_asl_run_on_real_images_gives_the_stored_answers():
    ref = json.loads(REFERENCE.read_text())
    assert file_sha256(DEFAULT_MODEL).startswith(ref["model_sha256_prefix"]), "a new shipped model: rewrite the reference"
    test = need(DATA / "asl_alphabet" / "test")
    proc = run_cli("asl_edge.runtime.cli", test, "--json", check=True)
    rows = {r["file"].split("asl_alphabet/")[1]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert set(rows) == set(ref["rows"])
    for name, want in ref["rows"].items():
        got = rows[name]
        assert got["label"] == want["label"], name
        assert (got["hand"] is None) == (want["hand"] is None), name
        if want["hand"] is not None:
            assert max(abs(a - b) for a, b in zip(got["hand"], want["hand"])) <= 3, (name, got["hand"], want["hand"])
        assert abs(got["prob"] - want["prob"]) < 0.02, (name, got["prob"], want["prob"])
