"""Shared fixtures: the real data beside the project, and a small model trained on it."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ASL_SHARED_DATA", REPO.parent / "shared" / "data"))
KAGGLE_TRAIN = DATA / "asl_alphabet" / "train"
KAGGLE_TEST = DATA / "asl_alphabet" / "test"
ROBOFLOW_TRAIN = DATA / "roboflow_asl_letters" / "train"
CLOSEUP = DATA / "t32rahman_closeup"


@contextlib.contextmanager
def captured_logs():
    """The messages the asl_edge loggers give inside the block (what a command prints as it works)."""
    import logging

    lines = []

    class Lines(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler, root = Lines(logging.INFO), logging.getLogger("asl_edge")
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def logged():
    with captured_logs() as lines:
        yield lines


def need(path: Path):
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (expected ../shared/data beside the project; "
                    "set ASL_SHARED_DATA to its location)")
    return path


def run_cli(module, *args, env=None, check=False, timeout=600):
    """Run a CLI module in a fresh interpreter, like a user would."""
    proc = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, cwd=REPO)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    err = [l for l in proc.stderr.strip().splitlines() if l.startswith("error:")]
    assert len(err) == 1, proc.stderr
    for f in fragments:
        assert f in err[0], err[0]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("feature-cache")


@pytest.fixture(scope="session")
def small_run(tmp_path_factory, cache_dir):
    """EfficientNet-Lite0 (ImageNet, frozen) + linear head on 20 real frames per class, 96 px."""
    need(KAGGLE_TRAIN)
    from asl_edge.train.engine import TrainConfig, Trainer

    out = tmp_path_factory.mktemp("small-run")
    cfg = TrainConfig(data=[str(KAGGLE_TRAIN)], arch="efficientnet_lite0", weights="imagenet", epochs=12,
                      img_size=96, max_per_class=20, out=str(out), cache_dir=str(cache_dir), workers=0)
    summary = Trainer(cfg).fit()
    return out, summary


@pytest.fixture(scope="session")
def exported(small_run):
    """The small run exported to FP32 and INT8 ONNX."""
    out, _ = small_run
    run_cli("asl_edge.export.cli", out / "best.ckpt", "--quantize", "int8", "--calib-count", "120", check=True)
    return out / "best.onnx", out / "best.int8.onnx"


@pytest.fixture(scope="session")
def landmark_run(tmp_path_factory, cache_dir):
    """EfficientNet-Lite0 (frozen) + FusionHead on 8 close-ups per letter of one signer, 96 px,
    landmark rows turned by the pose augmentation, exported to FP32 and INT8."""
    need(CLOSEUP)
    from asl_edge.train.engine import TrainConfig, Trainer

    out = tmp_path_factory.mktemp("landmark-run")
    cfg = TrainConfig(data=[str(CLOSEUP)], arch="efficientnet_lite0", weights="imagenet", epochs=15, img_size=96,
                      max_per_class=8, out=str(out), cache_dir=str(cache_dir), workers=0, landmarks=True,
                      augment=("pose",))
    summary = Trainer(cfg).fit()
    run_cli("asl_edge.export.cli", out / "best.ckpt", "--quantize", "int8", "--calib-count", "100", check=True)
    return out, summary
