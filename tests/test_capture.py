"""asl-capture: headless on a video file, it fills the Kaggle layout that asl-train reads."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from asl_edge.runtime.contract import KAGGLE_CLASSES

from conftest import KAGGLE_TRAIN, assert_one_line_error, need, run_cli


def _video(path, frames=40, fps=10.0, size=(320, 240)):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    rng = np.random.default_rng(0)
    for _ in range(frames):
        w.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    w.release()
    return path


def test_capture_from_video_fills_the_kaggle_layout(tmp_path):
    from asl_edge.train.data import scan_source

    video = _video(tmp_path / "me.avi", frames=40, fps=10.0)
    out = tmp_path / "my_hand"
    proc = run_cli("asl_edge.runtime.capture", "--camera", video, "--out", out, "--classes", "A,B",
                   "--per-class", "3", "--countdown", "1.0", "--interval", "0.2", "--no-display", "--roi", "0.6")
    assert proc.returncode == 0, proc.stderr
    # 1 s countdown then 3 frames 0.2 s apart = 1.5 s of video per class at 10 fps
    assert sorted(p.name for p in (out / "A").iterdir()) == [f"A_capture_{i:04d}.jpg" for i in (1, 2, 3)]
    assert len(list((out / "B").iterdir())) == 3
    crop = cv2.imread(str(out / "A" / "A_capture_0001.jpg"))
    assert crop.shape[:2] == (144, 144)  # the 0.6 guide box of a 240-px-high frame
    samples, report = scan_source(out, KAGGLE_CLASSES)
    assert len(samples) == 6 and report.counts == {"A": 3, "B": 3}
    assert "summary: 6 images" in proc.stdout
    # a second session adds to the folder instead of overwriting
    run_cli("asl_edge.runtime.capture", "--camera", video, "--out", out, "--classes", "A", "--per-class", "2",
            "--countdown", "0", "--no-display", "--roi", "0.6", check=True)
    assert len(list((out / "A").iterdir())) == 5


def test_capture_short_video_warns_and_bad_class_errors(tmp_path):
    video = _video(tmp_path / "short.avi", frames=5)
    proc = run_cli("asl_edge.runtime.capture", "--camera", video, "--out", tmp_path / "o", "--classes", "A,B",
                   "--per-class", "10", "--countdown", "0", "--interval", "0", "--no-display")
    assert proc.returncode == 0 and "source ended before A, B" in proc.stderr
    assert_one_line_error(run_cli("asl_edge.runtime.capture", "--camera", video, "--out", tmp_path / "o",
                                  "--classes", "A,Banana"), "unknown class", "Banana")
    assert_one_line_error(run_cli("asl_edge.runtime.capture", "--camera", "99", "--out", tmp_path / "o"), "camera")


def test_init_adapts_a_model_to_new_images(small_run, cache_dir, tmp_path):
    """--init starts from a trained checkpoint and keeps its contract; a few epochs on new images run."""
    from asl_edge.train.checkpoint import load_checkpoint
    from asl_edge.train.engine import TrainConfig, Trainer

    base = small_run[0] / "best.ckpt"
    need(KAGGLE_TRAIN)
    cfg = TrainConfig(data=[str(KAGGLE_TRAIN)], init=str(base), arch="efficientnet_lite0", img_size=96,
                      max_per_class=3, epochs=2, out=str(tmp_path / "adapted"), cache_dir=str(cache_dir), workers=0,
                      val_fraction=0.0)
    Trainer(cfg).fit()
    a, b = load_checkpoint(base), load_checkpoint(tmp_path / "adapted" / "last.ckpt")
    assert a["contract"] == b["contract"]
    torch = pytest.importorskip("torch")
    assert not torch.equal(a["model_state_dict"]["head.weight"], b["model_state_dict"]["head.weight"])
    k = "backbone.net._conv_stem.weight"
    assert torch.equal(a["model_state_dict"][k], b["model_state_dict"][k])
