"""asl-train --val-source: a whole source held out as validation, never trained on."""
import csv
import shutil

import numpy as np
import pytest

from asl_edge.common.errors import UserError
from asl_edge.train.cli import config_from_args
from asl_edge.train.engine import TrainConfig, Trainer

from conftest import KAGGLE_TRAIN, assert_one_line_error, need, run_cli


def _other_signer(root, per_class=3):
    """A second 'source': a few Kaggle frames per class copied to their own folder."""
    for cls in ("A", "B", "C", "L", "Y"):
        (root / cls).mkdir(parents=True)
        for f in sorted((KAGGLE_TRAIN / cls).iterdir())[-per_class:]:
            shutil.copy(f, root / cls / f.name)
    return root


def test_left_out_source_is_never_trained_on_and_chooses_the_checkpoint(tmp_path, cache_dir, logged):
    need(KAGGLE_TRAIN)
    other = _other_signer(tmp_path / "other")
    cfg = TrainConfig(data=[str(KAGGLE_TRAIN), str(other)], val_source=1, arch="efficientnet_lite0", img_size=64,
                      max_per_class=4, epochs=3, workers=0, cache_dir=str(cache_dir), hand_boxes=False,
                      out=str(tmp_path / "run"))
    summary = Trainer(cfg).fit()
    lines = logged
    with open(tmp_path / "run" / "split.csv") as f:
        rows = list(csv.DictReader(f))
    left = [r for r in rows if r["source"] == "1"]
    assert len(left) == 15 and all(r["split"] == "val" for r in left)
    assert any(r["split"] == "val" and r["source"] == "0" for r in rows)   # in-source val still exists
    hist = summary["history"]
    assert all({"val_acc_in_source", "val_acc_left_out"} <= set(h) for h in hist)
    best = int(np.argmax([h["val_acc_left_out"] for h in hist])) + 1
    assert summary["best_epoch"] == best
    epoch_lines = [ln for ln in lines if ln.startswith("epoch")]
    assert len(epoch_lines) == 3 and all("vs left-out src1" in ln and "gap" in ln for ln in epoch_lines)


@pytest.mark.parametrize("args,fragment", [
    (["--data", "a", "--val-source", "0"], "at least two"),
    (["--data", "a", "--data", "b", "--val-source", "2"], "numbered 0..1"),
    (["--data", "a", "--data", "b", "--val-source", "1", "--val-data", "c"], "give one"),
])
def test_bad_val_source(args, fragment):
    with pytest.raises(UserError, match=fragment):
        config_from_args(args)


def test_bad_val_source_is_one_line_on_the_command_line(tmp_path):
    assert_one_line_error(run_cli("asl_edge.train.cli", "--data", tmp_path, "--val-source", "0"), "at least two")
