"""SIGKILL a training at a random moment, then `asl-train --resume last.ckpt` alone: the same final
weights as a straight run, best.ckpt the straight run's best, nothing left behind."""
from __future__ import annotations

import glob
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from asl_edge.train import engine
from asl_edge.train.checkpoint import load_checkpoint
from asl_edge.train.cli import config_from_args
from asl_edge.train.engine import Trainer
from onnx_fixtures import write_image

from conftest import REPO

EPOCHS = 12


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Three classes of noisy colour frames (12 frames each, so the split has frame blocks) and a
    straight run to compare against."""
    root = tmp_path_factory.mktemp("kill")
    colours = {"A": (200, 40, 40), "B": (40, 200, 40), "C": (40, 40, 200)}
    for c, rgb in colours.items():
        for i in range(12):
            img = write_image(root / "data" / c / f"{c}{i}.jpg", rgb, size=(40, 40))
            noise = np.random.default_rng(i).integers(0, 120, (40, 40, 3))
            cv2.imwrite(str(img), (cv2.imread(str(img)) * 0.6 + noise).clip(0, 255).astype("uint8"))
    args = ["--data", root / "data", "--arch", "efficientnet_lite0", "--weights", "imagenet", "--img-size", "64",
            "--epochs", EPOCHS, "--cache-dir", root / "cache", "--workers", "0", "--seed", "1", "--lr", "0.01"]
    straight = Trainer(config_from_args(args + ["--out", root / "straight"])).fit()
    print("straight run val acc:", [round(h["val_acc"], 3) for h in straight["history"]])
    return root, args, straight


def _assert_same_run(out: Path, straight_dir: Path):
    a, b = load_checkpoint(straight_dir / "last.ckpt"), load_checkpoint(out / "last.ckpt")
    assert a["epoch"] == b["epoch"] == EPOCHS
    for k, v in a["model_state_dict"].items():
        torch.testing.assert_close(v, b["model_state_dict"][k], rtol=1e-5, atol=1e-6)
    ba, bb = load_checkpoint(straight_dir / "best.ckpt"), load_checkpoint(out / "best.ckpt")
    assert ba["epoch"] == bb["epoch"] == b["best_epoch"] == a["best_epoch"]
    for k, v in ba["model_state_dict"].items():
        torch.testing.assert_close(v, bb["model_state_dict"][k], rtol=1e-5, atol=1e-6)
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_kill_between_best_and_last_then_resume(setup, tmp_path, monkeypatch):
    """The window issue 13 found: the process dies right after writing one checkpoint file."""
    root, args, straight = setup
    out = tmp_path / "run"
    real, writes = engine.save_checkpoint, []

    class Killed(BaseException):
        pass

    def dying(state, path):  # dies after the first file of an improving epoch (best and last differ then)
        real(state, path)
        writes.append(Path(path).name)
        if state["epoch"] >= 2 and state["best_epoch"] == state["epoch"]:
            raise Killed

    monkeypatch.setattr(engine, "save_checkpoint", dying)
    with pytest.raises(Killed):
        Trainer(config_from_args(args + ["--out", out])).fit()
    monkeypatch.setattr(engine, "save_checkpoint", real)
    Trainer(config_from_args(["--resume", out / "last.ckpt", "--cache-dir", root / "cache", "--workers", "0"])).fit()
    _assert_same_run(out, root / "straight")


@pytest.mark.parametrize("at_epoch", [1, 2])
def test_ctrl_c_between_the_two_writes_names_the_epoch_on_disk(setup, tmp_path, monkeypatch, at_epoch, logged):
    """Ctrl-C right after best.ckpt of an epoch is written: the message names the epoch last.ckpt
    really holds (or best.ckpt, when last.ckpt was never written), never one it does not."""
    root, args, _ = setup
    out, lines = tmp_path / "run", logged
    real = engine.save_checkpoint

    def interrupted(state, path):
        real(state, path)
        if state["epoch"] == at_epoch and Path(path).name == "best.ckpt":
            raise KeyboardInterrupt

    monkeypatch.setattr(engine, "save_checkpoint", interrupted)
    with pytest.raises(SystemExit) as e:
        Trainer(config_from_args(args + ["--out", out, "--epochs", "3"])).fit()
    assert e.value.code == 130
    said = lines[-1]
    if at_epoch == 1:
        assert f"{out / 'best.ckpt'} holds epoch 1" in said and not (out / "last.ckpt").exists()
    else:
        assert f"holds epoch {at_epoch - 1}" in said and load_checkpoint(out / "last.ckpt")["epoch"] == at_epoch - 1


@pytest.mark.parametrize("trial", range(2))
def test_sigkill_at_a_random_moment_then_resume(setup, tmp_path, trial):
    root, args, straight = setup
    out = tmp_path / "run"
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "asl-backbone-*")))
    proc = subprocess.Popen([sys.executable, "-m", "asl_edge.train.cli", *map(str, args), "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    deadline = time.time() + 120
    while not (out / "last.ckpt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    delay = random.Random().uniform(0, 2.5)  # somewhere in the epochs: train, save best, save last
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = load_checkpoint(out / "last.ckpt")["epoch"]
    print(f"killed after {delay:.2f} s at epoch {done}/{EPOCHS}")
    if done < EPOCHS:
        Trainer(config_from_args(["--resume", out / "last.ckpt", "--cache-dir", root / "cache", "--workers", "0"])).fit()
    _assert_same_run(out, root / "straight")
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "asl-backbone-*"))) == before
