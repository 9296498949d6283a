"""The fault catalogue of issue 13, the rows of the other commands (checkpoints, resume, training
output, export, bench, capture, leftovers); asl-run's rows are in tests/test_faults.py."""
from __future__ import annotations

import errno
import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from asl_edge.runtime.contract import ModelContract
from asl_edge.common.errors import UserError
from conftest import captured_logs
from faults import call, catalogue, contract_json, one_error, tiny_checkpoint
from onnx_fixtures import RED, write_image, write_video

CASES, case = catalogue()

# --- checkpoints, resume, training output ----------------------------------------------------

@case
def pickle_refusal_gives_the_reason(tmp_path, capfd, monkeypatch, model, ckpt):
    import torch

    from asl_edge.export.cli import main as export_main

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "PWNED"),))

    torch.save({"epoch": Payload()}, tmp_path / "evil.ckpt")
    line = one_error(call(capfd, export_main, tmp_path / "evil.ckpt"), "GLOBAL")
    assert "weights_only" not in line and not (tmp_path / "PWNED").exists()


@case
def checkpoint_with_contract_as_string(tmp_path, capfd, monkeypatch, model, ckpt):
    from asl_edge.export.cli import main as export_main

    bad = tiny_checkpoint(tmp_path / "x.ckpt", contract="A,B,C")
    one_error(call(capfd, export_main, bad), "another version")


@case
def resume_with_unknown_config_key_notes_it(tmp_path, capfd, monkeypatch, model, ckpt):
    from asl_edge.train.engine import TrainConfig, resumed_config
    from asl_edge.train.checkpoint import load_checkpoint

    c = load_checkpoint(tiny_checkpoint(tmp_path / "r" / "last.ckpt", config={"data": ["x"], "turbo": True, "epochs": 3}))
    with captured_logs() as notes:
        cfg = resumed_config(TrainConfig(data=[], resume=str(tmp_path / "r" / "last.ckpt")), c)
    assert "turbo" in notes[0] and cfg.out == str((tmp_path / "r").resolve()) and cfg.epochs == 3


@case
def resume_alone_uses_the_checkpoint_folder_and_data(tmp_path, capfd, monkeypatch, model, ckpt):
    from asl_edge.train.checkpoint import load_checkpoint
    from asl_edge.train.cli import config_from_args
    from asl_edge.train.engine import resumed_config

    cfg = config_from_args(["--resume", ckpt])
    cfg = resumed_config(cfg, load_checkpoint(ckpt))
    assert Path(cfg.out) == ckpt.parent.resolve() and cfg.data == load_checkpoint(ckpt)["config"]["data"]
    cfg = resumed_config(config_from_args(["--resume", ckpt, "--data", "other/", "--epochs", "7"]),
                         load_checkpoint(ckpt))
    assert cfg.data == ["other/"] and cfg.epochs == 7


@case
def resume_into_another_runs_folder_needs_force(tmp_path, capfd, monkeypatch, model, ckpt):
    from asl_edge.train.cli import main as train_main

    other = tmp_path / "other"
    tiny_checkpoint(other / "last.ckpt")
    before = (other / "last.ckpt").read_bytes()
    one_error(call(capfd, train_main, "--resume", ckpt, "--out", other), "--force", str(other))
    assert (other / "last.ckpt").read_bytes() == before


@case
def train_out_under_a_file(tmp_path, capfd, monkeypatch, model, ckpt):
    from asl_edge.train.cli import main as train_main

    (tmp_path / "f").write_text("x")
    res = call(capfd, train_main, "--data", ckpt.parent.parent / "data", "--arch", "efficientnet_lite0",
               "--weights", "none", "--img-size", "32", "--out", tmp_path / "f" / "run", "--cache-dir", tmp_path / "c")
    one_error(res, str(tmp_path / "f"))


@case
def train_without_data(tmp_path, capfd, monkeypatch, model, ckpt):
    from asl_edge.train.cli import main as train_main

    one_error(call(capfd, train_main), "--data", "--resume")


@case
def checkpoint_disk_full_keeps_the_old_file(tmp_path, capfd, monkeypatch, model, ckpt):
    import torch

    from asl_edge.train.checkpoint import save_checkpoint

    path = tmp_path / "last.ckpt"
    path.write_bytes(b"old")

    def full(obj, f, *a, **k):
        Path(f).write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file data/0")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(UserError, match="disk is full"):
        save_checkpoint({"epoch": 1}, path)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


@case
def checkpoint_on_a_really_full_disk(tmp_path, capfd, monkeypatch, model, ckpt):
    """A 1 MB tmpfs (needs mount rights; otherwise the patched case above stands in)."""
    from asl_edge.train.cli import main as train_main

    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        (disk / "last.ckpt").write_bytes(b"old run")
        # --resume into a full folder: the checkpoint write fails, the old file stays
        res = call(capfd, train_main, "--resume", ckpt, "--out", disk, "--force", "--epochs", "2",
                   "--cache-dir", tmp_path / "cache", "--workers", "0")
        one_error(res, "disk is full")
        assert (disk / "last.ckpt").read_bytes() == b"old run"
        assert sorted(p.name for p in disk.iterdir()) in (["last.ckpt"], ["last.ckpt", "split.csv"])
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@case
def read_only_output_is_one_line(tmp_path, capfd, monkeypatch, model, ckpt):
    from asl_edge.common.fileio import atomic_write

    def ro(src, dst):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", ro)
    with pytest.raises(UserError, match="no permission"):
        atomic_write(tmp_path / "x.json", lambda t: Path(t).write_text("{}"))
    assert list(tmp_path.iterdir()) == []


# --- export, bench, leftovers ------------------------------------------------------------------

@case
def export_out_is_an_existing_folder(tmp_path, capfd, monkeypatch, model, ckpt):
    from asl_edge.export.cli import main as export_main

    (tmp_path / "m.onnx").mkdir()
    one_error(call(capfd, export_main, ckpt, "-o", tmp_path / "m.onnx"), "existing folder")


@case
def export_set_is_replaced_together_or_not_at_all(tmp_path, capfd, monkeypatch, model, ckpt):
    from asl_edge.common import fileio

    work = tmp_path / "work"
    work.mkdir()
    finals = [tmp_path / "m.onnx", tmp_path / "m.int8.onnx", tmp_path / "m.fp16.onnx"]
    for f in finals:
        f.write_text("old")
    tmps = []
    for i in range(3):
        tmps.append(work / f"t{i}")
        tmps[-1].write_text("new")
    real, calls = os.replace, []

    def flaky(a, b):  # the third new file cannot be moved in (the old ones can move back)
        calls.append(b)
        if Path(a) == tmps[2]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(a, b)

    monkeypatch.setattr(fileio.os, "replace", flaky)
    with pytest.raises(UserError, match="disk is full"):
        fileio.replace_set(list(zip(tmps, finals)), work)
    assert [f.read_text() for f in finals] == ["old"] * 3


@case
def bench_out_under_a_file(tmp_path, capfd, monkeypatch, model, ckpt):
    from asl_edge.benchmarks.cli import main as bench_main

    (tmp_path / "f").write_text("x")
    write_image(tmp_path / "d" / "A" / "a.png", RED)
    one_error(call(capfd, bench_main, "--onnx", model, "--data", tmp_path / "d", "--out", tmp_path / "f" / "b"),
              str(tmp_path / "f"))


@case
def bench_shape_mismatch_is_a_failed_row(tmp_path, capfd, monkeypatch, model, ckpt):
    """The branch that crashed with KeyError 'worker_seconds'."""
    from types import SimpleNamespace

    from asl_edge.benchmarks import bench as B
    from asl_edge.benchmarks.models import Model, Row

    def fake_worker(cmd, **kw):  # a worker that answers with 5 columns for a 6-class contract
        out = Path(cmd[cmd.index("--out") + 1])
        (out / "result.json").write_text('{"status": "ok"}')
        np.save(out / "logits_0.npy", np.zeros((2, 5), np.float32))
        return SimpleNamespace(returncode=0)

    monkeypatch.setattr(B.subprocess, "run", fake_worker)
    contract = ModelContract.from_json(contract_json())
    row = Row("m@cpu", Model("onnx", Path(model), contract, "ONNX", 0.0), "cpu")
    ds = B.DataSet("d", "d", ["a", "b"], np.array([0, 1]), {}, {"float": tmp_path / "x.npy"})
    B.run_worker(row, 0, [ds], B.BenchConfig(ckpt=None, onnx=[str(model)], data=["d"], threads=1), tmp_path)
    assert row.result["status"] == "failed" and "output shape" in row.result["reason"]
    assert "worker_seconds" in row.result


@case
def capture_out_under_a_file(tmp_path, capfd, monkeypatch, model, ckpt):
    from asl_edge.runtime.capture import main as capture_main

    (tmp_path / "f").write_text("x")
    video = write_video(tmp_path / "v.avi", [RED] * 3, size=64)
    one_error(call(capfd, capture_main, "--camera", video, "--out", tmp_path / "f" / "hand", "--no-display"),
              str(tmp_path / "f"))


@case
def bench_threads_capped(tmp_path, capfd, monkeypatch, model, ckpt):
    from asl_edge.common.limits import cap_threads, max_threads

    with captured_logs() as notes:
        assert cap_threads(100000) == max_threads() and "capped" in notes[0]
        assert cap_threads(2) == 2 and len(notes) == 1


@case
def leftovers_of_killed_runs_are_swept(tmp_path, capfd, monkeypatch, model, ckpt):
    from asl_edge.common.fileio import sweep_temps

    dead = 2 ** 22 + 12345  # above the default pid_max of 4194304: no such process
    (tmp_path / f".last.ckpt.{dead}-abc.tmp").write_text("x")
    (tmp_path / f".asl-export-{dead}-xyz").mkdir()
    (tmp_path / f".asl-bench-{os.getpid()}-live").mkdir()  # a running writer's: kept
    (tmp_path / "last.ckpt").write_text("keep")
    assert sweep_temps(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".asl-bench-{os.getpid()}-live", "last.ckpt"]


@case
def zip_bomb_is_refused_and_not_kept(tmp_path, capfd, monkeypatch, model, ckpt):
    from asl_edge.train import data as D

    monkeypatch.setattr(D, "CACHE_ROOT", tmp_path / "cache")
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("A/a.jpg", b"\0" * (64 << 20))  # 64 MB of zeros packs to ~64 KB
        zf.writestr("A/run.sh", b"echo hi")
    with pytest.raises(UserError, match="would expand"):
        D.find_class_root(z, ["A", "B"])
    assert not any((tmp_path / "cache").rglob("*.jpg"))


@case
def zip_extracts_images_only(tmp_path, capfd, monkeypatch, model, ckpt):
    from asl_edge.train import data as D

    monkeypatch.setattr(D, "CACHE_ROOT", tmp_path / "cache")
    img = write_image(tmp_path / "a.jpg", size=(40, 40)).read_bytes()
    z = tmp_path / "ok.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("A/a.jpg", img)
        zf.writestr("A/../../evil.sh", b"x")
        zf.writestr("B/notes.txt", b"x")
    root = D.find_class_root(z, ["A", "B"])
    assert [p.name for p in root.rglob("*") if p.is_file() and p.name != ".complete"] == ["a.jpg"]


@pytest.mark.parametrize("name", list(CASES))
def test_fault(name, tmp_path, capfd, monkeypatch, model, ckpt):
    CASES[name](tmp_path, capfd, monkeypatch, model, ckpt)
