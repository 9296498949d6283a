"""Feature cache: the frozen part of the backbone (a prefix of its stages) runs once per
image, through onnxruntime on CPU; training then runs only the trainable suffix and the
head on the cached tensors, so ten epochs cost about one backbone pass.

Augmentation keeps this: each training image is cached as K augmented *views* (seeded, so
reproducible), and every epoch draws one view per image. The cache is stored per source
and per view, so adding a source, or more views, reuses what was already computed."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from asl_edge.common.errors import UserError
from asl_edge.common.fileio import sweep_temps
from asl_edge.common.sessions import ort_session

from asl_edge.common.fileio import atomic_write
from .data import CACHE_ROOT, load_image
from .augment import scene as augment_scene
from .presets import SCENE_AUGMENTATIONS, EvalPreset, TrainPreset
from .progress import progress

log = logging.getLogger(__name__)

FEATURE_VERSION = 2


class ImageDataset(Dataset):
    """Images through a preset. `view` (an int) makes the random augmentation of each image
    a pure function of (seed, view, index), so a cached view can be recomputed exactly."""

    def __init__(self, samples, transform, box_jitter=0.0, seed=0, view=None, augment=()):
        self.samples, self.transform, self.box_jitter, self.seed = samples, transform, box_jitter, seed
        self.margin = transform.contract.crop_margin  # the model's own crop (its contract)
        self.view = view
        self.scene_augment = tuple(a for a in augment if a in SCENE_AUGMENTATIONS)
        self.epoch = 0

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        s = self.samples[i]
        salt = self.epoch if self.view is None else 1_000_003 + self.view
        rng = np.random.default_rng((self.seed, salt, i)) if self.box_jitter else None
        scene = None
        if self.scene_augment:  # its own generator: views of the other augmentations stay as they were
            scene_rng = np.random.default_rng((self.seed, salt, i, 1))
            scene = lambda rgb, points: augment_scene(rgb, points, self.scene_augment, scene_rng)  # noqa: E731
        image = load_image(s, self.margin, jitter=self.box_jitter, rng=rng, scene=scene)
        if self.view is None:
            return self.transform(image), s.label, i
        with torch.random.fork_rng(devices=[]):  # torchvision's random ops draw from torch's global RNG
            torch.manual_seed(hash((self.seed, self.view, i)) & 0x7FFF_FFFF)
            return self.transform(image), s.label, i


class ViewDataset(Dataset):
    """Cached tensors (views, N, ...): one view per sample per epoch, drawn by set_epoch; with each
    sample its label, loss weight and landmark row ((N, 0) for an image-only model)."""

    def __init__(self, features, labels, weights, landmarks=None):
        self.features, self.labels, self.weights = features, labels, weights
        self.landmarks = landmarks if landmarks is not None else torch.zeros(len(labels), 0)
        self.pick = torch.zeros(len(labels), dtype=torch.long)

    def set_epoch(self, epoch: int, generator):
        views = self.features.shape[0]
        self.pick = torch.randint(views, (len(self.labels),), generator=generator) if views > 1 else self.pick

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.features[self.pick[i], i].float(), self.labels[i], self.weights[i], self.landmarks[i]


def module_identity(module: torch.nn.Module) -> str:
    """A hash of the module's parameters and buffers: the same frozen weights give the same
    cache whether they came from ImageNet, a weights file or an --init checkpoint."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(name.encode("utf-8", "surrogateescape"))
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def cache_key(samples, arch, prefix_id, contract, view_spec) -> str:
    h = hashlib.sha256()
    # the landmark input does not change the image features: image-only and landmark runs share them
    image = contract.with_landmarks(0).to_dict()
    h.update(json.dumps([FEATURE_VERSION, arch, prefix_id, image, view_spec], sort_keys=True).encode("utf-8", "surrogateescape"))
    for s in samples:
        st = os.stat(s.path)
        h.update(f"{s.path}|{st.st_size}|{st.st_mtime_ns}|{s.box}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:24]


def _onnx_session(prefix, input_size, threads):
    """The frozen prefix through onnxruntime: measured ~2x faster than torch eager on CPU."""
    import io

    buf = io.BytesIO()  # in memory: no temp file to leave behind (it used to stay in /tmp, 13 MB a run)
    dummy = torch.zeros(1, 3, input_size, input_size)
    with warnings.catch_warnings():  # TorchScript exporter chatter, not actionable for the user
        warnings.simplefilter("ignore")
        torch.onnx.export(prefix, (dummy,), buf, input_names=["x"], output_names=["f"],
                          dynamic_axes={"x": {0: "n"}, "f": {0: "n"}}, opset_version=17, dynamo=False)
    return ort_session(buf.getvalue(), threads)


class PrefixRunner:
    """Runs the frozen prefix on batches: onnxruntime on CPU (checked against torch on the
    first batch), torch otherwise."""

    def __init__(self, prefix, input_size, device, engine="auto"):
        self.prefix, self.device = prefix.eval().to(device), device
        self.sess, self.checked = None, False
        if engine == "ort" or (engine == "auto" and device.type == "cpu"):
            try:
                self.sess = _onnx_session(prefix.cpu(), input_size, torch.get_num_threads())
            except Exception as e:  # fall back rather than fail: torch gives the same numbers
                log.info(f"note: onnxruntime backbone unavailable ({type(e).__name__}); using torch")
            self.prefix.to(device)

    @torch.no_grad()
    def __call__(self, x):
        if self.sess is None:
            return self.prefix(x.to(self.device)).float().cpu()
        f = torch.from_numpy(self.sess.run(None, {"x": x.numpy()})[0])
        if not self.checked:  # the ONNX prefix must agree with torch before we trust it
            ref = self.prefix(x[:4].to(self.device)).float().cpu()
            err = (f[:4] - ref).abs().max().item()
            if err > 1e-3 * max(1.0, ref.abs().max().item()):
                log.info(f"note: onnxruntime backbone differs from torch by {err:.2e}; using torch")
                self.sess = None
                return self.prefix(x.to(self.device)).float().cpu()
            self.checked = True
        return f


def _compute(runner, dataset, batch_size, workers, desc):
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=False)
    out = []
    for x, _, _ in progress(loader, desc=desc, unit="batch"):
        f = runner(x)
        out.append(f.half() if f.dim() > 2 else f)  # spatial maps in fp16: half the memory and disk
    return torch.cat(out)


class FeatureStore:
    """Computes or loads the prefix output of sample groups, one cache file per (group, view)."""

    def __init__(self, prefix, arch, contract, device, cache_dir=None, engine="auto", workers=2,
                 batch_size=32):
        self.prefix, self.arch, self.contract, self.device = prefix, arch, contract, device
        self.cache_dir = Path(cache_dir or CACHE_ROOT / "features")
        sweep_temps(self.cache_dir)  # feature files half-written by killed runs
        self.engine, self.workers, self.batch_size = engine, workers, batch_size
        self.prefix_id = f"{len(prefix.stages)}stages:{module_identity(prefix)}"
        self._runner = None
        self.info = {"computed": 0, "loaded": 0, "seconds": 0.0, "images": 0, "files": []}

    @property
    def cache_hit(self):
        return self.info["computed"] == 0

    def _run(self):
        if self._runner is None:
            self._runner = PrefixRunner(self.prefix, self.contract.input_size, self.device, self.engine)
        return self._runner

    def get(self, samples, view_spec: dict, dataset_factory, label):
        key = cache_key(samples, self.arch, self.prefix_id, self.contract, view_spec)
        path = self.cache_dir / f"{self.arch}-{key}.pt"
        self.info["files"].append(str(path))
        if path.is_file():
            try:
                feats = torch.load(path, map_location="cpu", weights_only=True)["features"]
                if feats.shape[0] == len(samples):
                    self.info["loaded"] += 1
                    return feats
            except Exception:
                log.info(f"feature cache: {path} unreadable, recomputing")
        t0 = time.perf_counter()
        feats = _compute(self._run(), dataset_factory(), self.batch_size, self.workers, label)
        dt = time.perf_counter() - t0
        try:
            atomic_write(path, lambda tmp: torch.save({"features": feats}, tmp))
        except UserError as e:  # a cache is an optimisation: train on, recompute next time
            log.warning(f"warning: feature cache not saved ({e}); continuing without it")
        self.info["computed"] += 1
        self.info["seconds"] += dt
        self.info["images"] += len(samples)
        log.info(f"feature cache: {label}: {len(samples)} images in {dt:.1f}s "
                 f"({1000 * dt / max(1, len(samples)):.1f} ms/img)")
        return feats

    def eval_features(self, samples):
        """Un-augmented features, cached per source."""
        return self._by_source(samples, lambda group, src: self.get(
            group, {"view": "eval"}, lambda: ImageDataset(group, EvalPreset(self.contract)), f"source {src}"))[None]

    def view_features(self, samples, augment, views, seed, box_jitter):
        """(views, N, ...) augmented features, cached per source and view."""
        out = []
        for v in range(views):
            spec = {"augment": list(augment), "view": v, "seed": seed, "box_jitter": box_jitter}
            out.append(self._by_source(samples, lambda group, src, v=v, spec=spec: self.get(
                group, spec, lambda: ImageDataset(group, TrainPreset(self.contract, augment), box_jitter, seed, view=v,
                                                  augment=augment),
                f"source {src} view {v + 1}/{views}")))
        return torch.stack(out)

    @staticmethod
    def _by_source(samples, fetch):
        order, groups = [], {}
        for i, s in enumerate(samples):
            groups.setdefault(s.source, []).append(i)
        parts = []
        for src, idx in groups.items():
            parts.append((idx, fetch([samples[i] for i in idx], src)))
            order += idx
        if not parts:
            return torch.zeros(0)
        feats = torch.cat([p for _, p in parts])
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order)] = torch.arange(len(order))
        return feats[inverse]  # back in the samples' order
