"""asl-train's inputs, audited: option numbers out of bounds, checkpoint fields of the wrong type, weights
that are not finite numbers, a damaged zip member, a hand-box cache of the wrong shape or that cannot be
written, the run folder a stopped first epoch leaves, an arch this asl-edge does not build. Each ends in
one error line (or trains on, for the cache), never a traceback or a checkpoint that cannot be used."""
from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asl_edge.common.errors import UserError
from faults import call, one_error, tiny_checkpoint
from onnx_fixtures import fake_hand, write_image

TINY = ("--arch", "efficientnet_lite0", "--weights", "none", "--img-size", "32", "--epochs", "1", "--workers", "0")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three images of each of A, B and C."""
    d = tmp_path_factory.mktemp("inputs") / "data"
    for c in "ABC":
        for i in range(3):
            write_image(d / c / f"{c}{i}.jpg", size=(40, 40), seed=i + ord(c))
    return d


def train(capfd, *args):
    from asl_edge.train.cli import main

    return call(capfd, main, *args, prog="asl-train")


def fresh(capfd, data, out, *args):
    return train(capfd, "--data", data, *TINY, "--no-hand-boxes", "--out", out, "--cache-dir", out.parent / "c", *args)


# --- B8, B9: option numbers ------------------------------------------------------------------------

@pytest.mark.parametrize("option, value", [
    ("--seed", "99999999999999999999999"), ("--seed", "-1"), ("--batch-size", "99999999999999999999999"),
    ("--batch-size", "0"), ("--lr", "-1"), ("--lr", "0"), ("--lr", "nan"), ("--backbone-lr", "-1"),
    ("--epochs", "99999999999999999999999"), ("--workers", "100000"), ("--max-per-class", "99999999999999999999"),
    ("--val-source", "99999999999999999999"), ("--val-fraction", "inf"), ("--img-size", "-5"),
    ("--landmark-weight", "-1"), ("--views", "-1"), ("--source-weights", "-1"), ("--source-weights", "nan"),
    ("--source-weights", "inf"), ("--source-weights", "0"), ("--unfreeze", "-5"), ("--unfreeze", "-1.5"),
])
def test_option_numbers_out_of_bounds_are_one_line(tmp_path, capfd, data, option, value):
    one_error(fresh(capfd, data, tmp_path / "run", f"{option}={value}"), option)
    assert not (tmp_path / "run").exists()


def test_the_seed_ends_where_torch_and_numpy_seeds_end_and_its_run_loads(tmp_path, capfd, data):
    from asl_edge.train.checkpoint import load_checkpoint

    one_error(fresh(capfd, data, tmp_path / "past", "--seed", str(2**32)), "--seed")
    res = fresh(capfd, data, tmp_path / "run", "--seed", str(2**32 - 1), "--batch-size", "65536")
    assert res.code == 0, res.err
    assert load_checkpoint(tmp_path / "run" / "best.ckpt")["config"]["seed"] == 2**32 - 1


# --- B2: weights that are not finite numbers ------------------------------------------------------

def _with_weight(path, value):
    from asl_edge.train.models import build_model

    state = build_model("efficientnet_lite0", 3, weights="none", input_size=32).state_dict()
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name].clone().fill_(value)
    return tiny_checkpoint(path, model_state_dict=state)


@pytest.mark.parametrize("value", [math.nan, math.inf])
@pytest.mark.parametrize("how", [(), ("--quantize", "int8")])
def test_a_checkpoint_with_weights_not_finite_is_refused_by_export(tmp_path, capfd, value, how):
    from asl_edge.export.cli import main as export_main

    ckpt = _with_weight(tmp_path / "run" / "best.ckpt", value)
    one_error(call(capfd, export_main, ckpt, "-o", tmp_path / "x" / "m.onnx", *how, prog="asl-export"),
              "not all finite", "retrain")
    assert not (tmp_path / "x").exists()


def test_a_checkpoint_with_weights_not_finite_is_refused_by_resume_and_init(tmp_path, capfd, data):
    ckpt = _with_weight(tmp_path / "run" / "last.ckpt", math.nan)
    one_error(train(capfd, "--resume", ckpt, "--workers", "0"), "not all finite")
    one_error(fresh(capfd, data, tmp_path / "other", "--init", ckpt), "not all finite")
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("where", ["pytorch", "onnx"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_fp32_parity_fails_on_logits_that_are_not_finite(where, value):
    import numpy as np

    from asl_edge.export.onnx_export import check_fp32_parity, compare

    ref, got = np.zeros((4, 3), np.float32), np.zeros((4, 3), np.float32)
    (ref if where == "pytorch" else got)[1, 2] = value
    with pytest.raises(UserError, match="not finite"):
        check_fp32_parity(compare(ref, got), ref)


def test_a_training_whose_loss_is_not_finite_stops_without_a_checkpoint(tmp_path, capfd, data, monkeypatch):
    from asl_edge.train import loop

    real = loop.losses

    def diverged(*args):  # what a too-high learning rate ends in
        per_row, logits = real(*args)
        return per_row * math.nan, logits

    monkeypatch.setattr(loop, "losses", diverged)
    one_error(fresh(capfd, data, tmp_path / "run"), "diverged", "--lr")
    assert not list((tmp_path / "run").glob("*.ckpt"))


# --- B4, B14: checkpoint fields --------------------------------------------------------------------

@pytest.mark.parametrize("field, value, says", [
    ("best_epoch", "x", "best_epoch"), ("best_epoch", 7, "best_epoch"), ("best_epoch", -1, "best_epoch"),
    ("history", 5, "history"), ("history", [5], "history"), ("history", [{"seconds": "x"}], "history"),
    ("best_val_acc", "high", "best_val_acc"), ("best_val_acc", math.nan, "best_val_acc"),
    ("epoch", math.inf, "epoch"), ("train_loss", None, "train_loss"),
    ("config", {"seed": -1}, "config.seed"), ("config", {"lr": -1.0}, "config.lr"),
    ("config", {"source_weights": [-1.0]}, "config.source_weights"), ("config", {"arch": "vit_b_16"}, "config.arch"),
])
def test_checkpoint_fields_of_the_wrong_type_are_refused_by_resume(tmp_path, capfd, ckpt, field, value, says):
    bad = tiny_checkpoint(tmp_path / "r" / "last.ckpt", data=[ckpt.parent.parent / "data"], **{field: value})
    one_error(train(capfd, "--resume", bad, "--workers", "0"), says, "another version")


def test_a_checkpoint_of_an_arch_this_asl_edge_does_not_build_says_so(tmp_path, capfd):
    from asl_edge.export.cli import main as export_main

    bad = tiny_checkpoint(tmp_path / "vit.ckpt", arch="vit_b_16")
    line = one_error(call(capfd, export_main, bad, prog="asl-export"), "'vit_b_16'", "not one this asl-edge builds")
    assert "--arch" not in line


ANY = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                   lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                   max_leaves=6)
FIELDS = ("epoch", "model_state_dict", "optimizer_state_dict", "train_loss", "arch", "contract", "config", "split",
          "history", "best_val_acc", "best_epoch")
NESTED = ("config.data", "config.epochs", "config.seed", "config.lr", "config.batch_size", "config.source_weights",
          "config.arch", "split.val_files", "split.val_labels", "contract.classes", "contract.input_size")


@pytest.fixture(scope="module")
def valid_fields(tmp_path_factory):
    from asl_edge.train.checkpoint import load_checkpoint

    return load_checkpoint(tiny_checkpoint(tmp_path_factory.mktemp("h") / "c.ckpt", split={"val_files": ["a.jpg"],
                                                                                          "val_labels": [0]}))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(FIELDS + NESTED), ANY)
def test_any_value_of_any_checkpoint_field_passes_or_is_one_user_error(valid_fields, field, value):
    from asl_edge.train.checkpoint import check_fields

    ckpt = {**valid_fields, **{k: dict(valid_fields[k]) for k in ("config", "split", "contract")}}
    outer, _, inner = field.partition(".")
    if inner:
        ckpt[outer][inner] = value
    else:
        ckpt[outer] = value
    try:
        check_fields(ckpt)
    except UserError:
        pass


# --- B5: a damaged zip member ----------------------------------------------------------------------

def test_a_zip_member_with_damaged_bytes_is_one_line_and_leaves_nothing(tmp_path, capfd, data, monkeypatch):
    from asl_edge.train import data as D

    monkeypatch.setattr(D, "CACHE_ROOT", tmp_path / "cache")
    z = tmp_path / "data.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(data.rglob("*.jpg")):
            zf.write(p, p.relative_to(data.parent))
    with zipfile.ZipFile(z) as zf:
        info = zf.infolist()[0]
    raw = bytearray(z.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start, start + info.compress_size):  # the deflated bytes, not the headers
        raw[i] ^= 0xFF
    z.write_bytes(bytes(raw))
    one_error(fresh(capfd, z, tmp_path / "run"), "damaged", info.filename)
    assert not list((tmp_path / "cache" / "unzipped").glob("*"))


# --- B7: the hand-box cache ------------------------------------------------------------------------

@pytest.fixture
def finder(monkeypatch):
    """The hand finder, stood in for: a hand in every image (so the test is about the cache)."""
    from asl_edge.train import hand_boxes

    found = []
    entry = {"box": [1.0, 2.0, 30.0, 35.0], "landmarks": (fake_hand() + 100).tolist(), "handedness": "Right"}
    monkeypatch.setattr(hand_boxes, "HandFinder", lambda **kw: object())
    monkeypatch.setattr(hand_boxes, "_find", lambda f, path: found.append(path) or entry)
    return found


def _samples(data):
    from asl_edge.train.data import Sample

    return [Sample(str(p), 0) for p in sorted(data.rglob("*.jpg"))]


@pytest.mark.parametrize("entry", ["garbage", 5, [1, 2, 3, 4], {"box": [1, 2]},
                                   {"box": [0, 0, 9, 9], "landmarks": "x", "handedness": "Left"},
                                   {"box": [0, 0, 9, 9], "landmarks": [[1, 2, 3]] * 21, "handedness": 0}])
def test_cache_entries_of_the_wrong_shape_are_found_again(tmp_path, data, finder, entry):
    from asl_edge.train.hand_boxes import fill_hand_boxes

    samples = _samples(data)
    fill_hand_boxes(samples, tmp_path)
    (cache_file,) = tmp_path.glob("*.json")
    cache_file.write_text(json.dumps({k: entry for k in json.loads(cache_file.read_text())}))
    out, counts = fill_hand_boxes(samples, tmp_path)
    assert counts["computed"] == len(samples) and len(finder) == 2 * len(samples)
    assert all(s.box is not None and s.hand is not None for s in out)
    assert fill_hand_boxes(samples, tmp_path)[1]["computed"] == 0  # written back in the right shape


@pytest.mark.parametrize("blocked", ["a file where its folder goes", "no permission"])
def test_a_hand_box_cache_that_cannot_be_written_trains_on_with_one_note(tmp_path, capfd, data, finder, monkeypatch,
                                                                         logged, blocked):
    import errno
    import os

    from asl_edge.common import fileio
    from asl_edge.train import hand_boxes

    cache = tmp_path / "roc"
    cache.mkdir()
    if blocked == "no permission":  # as a read-only folder answers (tests may run as root, who may write anyway)
        def read_only(path, write_fn):  # the cache's write only: checkpoints are written as ever
            raise fileio.write_error(path, PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path)))

        monkeypatch.setattr(hand_boxes, "atomic_write", read_only)
    else:
        (cache / "hand_boxes").write_text("not a folder")
    res = train(capfd, "--data", data, *TINY, "--out", tmp_path / "run", "--cache-dir", cache)
    assert res.code == 0 and "Traceback" not in res.err, res.err
    assert len([line for line in logged if "hand-box cache not saved" in line]) == 1
    assert (tmp_path / "run" / "best.ckpt").is_file() and not list(cache.rglob("*.tmp"))


# --- B10: a run stopped between the two writes of its first epoch -----------------------------------

def test_a_run_stopped_after_best_before_last_names_a_checkpoint_that_resumes(tmp_path, capfd, data, monkeypatch,
                                                                              logged):
    from asl_edge.train import engine

    real, out = engine.save_checkpoint, tmp_path / "run"

    def interrupted(state, path):
        real(state, path)
        if Path(path).name == "best.ckpt":
            raise KeyboardInterrupt

    monkeypatch.setattr(engine, "save_checkpoint", interrupted)
    assert fresh(capfd, data, out, "--epochs", "2").code == 130
    monkeypatch.setattr(engine, "save_checkpoint", real)
    said = [line for line in logged if line.startswith("interrupted")][-1]
    assert not (out / "last.ckpt").exists() and f"--resume {out / 'best.ckpt'}" in said, said
    # the same command again is refused, naming the same checkpoint; that command then goes on
    one_error(fresh(capfd, data, out, "--epochs", "2"), f"--resume {out / 'best.ckpt'}", "--force")
    res = train(capfd, "--resume", out / "best.ckpt", "--workers", "0", "--cache-dir", tmp_path / "c")
    assert res.code == 0 and "epochs 2..2" in res.out, res.err
    assert (out / "last.ckpt").is_file()
