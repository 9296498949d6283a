"""Shared fixtures: the real data beside the project (and its hand photos), a small model trained on
it, and the fault catalogue's tiny model and checkpoint."""
from __future__ import annotations

import contextlib
import csv
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


def iou(a, b):
    """Boxes (x, y, w, h)."""
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    ix = max(0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    iy = max(0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    return ix * iy / (aw * ah + bw * bh - ix * iy)


def photos(n, step=150):
    """n Roboflow photos with their boxes.csv box (x, y, w, h), or a skip without the data."""
    if not (ROBOFLOW_TRAIN / "boxes.csv").is_file():
        pytest.skip(f"real hand photos not found at {ROBOFLOW_TRAIN}")
    from asl_edge.runtime.contract import read_rgb
    with open(ROBOFLOW_TRAIN / "boxes.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))[::step][:n]
    out = []
    for r in rows:
        x0, y0, x1, y1 = (float(r[k]) for k in ("x_min", "y_min", "x_max", "y_max"))
        out.append((read_rgb(ROBOFLOW_TRAIN / r["file"]), (x0, y0, x1 - x0, y1 - y0)))
    return out


def paste(photo, at, size=(640, 480), side=None, background=90):
    """photo (scaled so its longer side is `side`) pasted at `at` (may reach past the frame edge)."""
    import cv2
    import numpy as np

    if side:
        s = side / max(photo.shape[:2])
        photo = cv2.resize(photo, (round(photo.shape[1] * s), round(photo.shape[0] * s)), interpolation=cv2.INTER_AREA)
    frame = np.full((size[1], size[0], 3), background, np.uint8)
    x, y = at
    ph, pw = photo.shape[:2]
    fx0, fy0, fx1, fy1 = max(x, 0), max(y, 0), min(x + pw, size[0]), min(y + ph, size[1])
    frame[fy0:fy1, fx0:fx1] = photo[fy0 - y:fy1 - y, fx0 - x:fx1 - x]
    return frame


def clear_photo():
    """A photo whose hand the palm detector finds at every scale these tests paste it at
    (detection rate itself is test_finds_real_hands_and_frames_them_like_training's business)."""
    return photos(5)[4]


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


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The fault catalogue's colour model (tests/onnx_fixtures.py), one per test module."""
    from onnx_fixtures import make_tiny_onnx

    return make_tiny_onnx(tmp_path_factory.mktemp("m") / "color.onnx", kind="color")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """The fault catalogue's tiny checkpoint, trained on nothing but naming a data folder of two
    40 px images for each of A, B and C; one per test module."""
    from faults import tiny_checkpoint
    from onnx_fixtures import write_image

    d = tmp_path_factory.mktemp("ck")
    for c in "ABC":
        for i in range(2):
            write_image(d / "data" / c / f"{c}{i}.jpg", size=(40, 40), seed=i)
    return tiny_checkpoint(d / "run" / "last.ckpt", data=[d / "data"])
