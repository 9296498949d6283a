"""Feature cache: with a frozen backbone and no augmentation, the backbone runs once per
image; the head trains on cached vectors, so ten epochs cost about one backbone pass."""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .checkpoint import atomic_write, file_sha256
from .data import CACHE_ROOT, load_image
from .presets import EvalPreset

FEATURE_VERSION = 1


class ImageDataset(Dataset):
    def __init__(self, samples, transform, box_jitter=0.0, seed=0):
        self.samples, self.transform, self.box_jitter, self.seed = samples, transform, box_jitter, seed
        self.epoch = 0

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        s = self.samples[i]
        rng = np.random.default_rng((self.seed, self.epoch, i)) if self.box_jitter else None
        return self.transform(load_image(s, jitter=self.box_jitter, rng=rng)), s.label, i


def weights_identity(weights: str, seed: int) -> str:
    if weights in ("imagenet",):
        return "imagenet"
    if weights == "none":
        return f"none-seed{seed}"
    return "sha256:" + file_sha256(weights)


def cache_key(samples, arch, weights_id, contract, extra="") -> str:
    h = hashlib.sha256()
    h.update(json.dumps([FEATURE_VERSION, arch, weights_id, contract.to_dict(), extra], sort_keys=True).encode())
    for s in samples:
        st = os.stat(s.path)
        h.update(f"{s.path}|{st.st_size}|{st.st_mtime_ns}|{s.box}\n".encode())
    return h.hexdigest()[:24]


def _backbone_onnx_session(backbone, input_size, threads):
    """The frozen backbone through onnxruntime: measured ~2x faster than torch eager on CPU."""
    import tempfile

    import onnxruntime as ort

    tmpdir = tempfile.mkdtemp(prefix="asl-backbone-")
    path = Path(tmpdir) / "backbone.onnx"
    dummy = torch.zeros(1, 3, input_size, input_size)
    with warnings.catch_warnings():  # TorchScript exporter chatter, not actionable for the user
        warnings.simplefilter("ignore")
        torch.onnx.export(backbone, (dummy,), str(path), input_names=["x"], output_names=["f"],
                          dynamic_axes={"x": {0: "n"}, "f": {0: "n"}}, opset_version=17, dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess, path


def compute_features(model, samples, contract, device, batch_size=32, workers=2, engine="auto", log=print):
    """Backbone features for every sample, in order. Returns (features, seconds)."""
    loader = DataLoader(ImageDataset(samples, EvalPreset(contract)), batch_size=batch_size,
                        num_workers=workers, shuffle=False)
    backbone = model.backbone.eval().to(device)
    use_ort = engine == "ort" or (engine == "auto" and device.type == "cpu")
    sess = None
    if use_ort:
        try:
            sess, onnx_path = _backbone_onnx_session(backbone.cpu(), contract.input_size, torch.get_num_threads())
        except Exception as e:  # fall back rather than fail: torch gives the same numbers
            log(f"note: onnxruntime backbone unavailable ({type(e).__name__}); using torch")
            sess = None
    from tqdm import tqdm

    out = []
    t0 = time.perf_counter()
    checked = False
    with torch.no_grad():
        for x, _, _ in tqdm(loader, desc="backbone pass", unit="batch", leave=False, disable=None):
            if sess is not None:
                f = torch.from_numpy(sess.run(None, {"x": x.numpy()})[0])
                if not checked:  # the ONNX backbone must agree with torch before we trust it
                    ref = backbone(x[:4])
                    err = (f[:4] - ref).abs().max().item()
                    if err > 1e-3 * max(1.0, ref.abs().max().item()):
                        log(f"note: onnxruntime backbone differs from torch by {err:.2e}; using torch")
                        sess = None
                        f = backbone(x)
                    checked = True
            else:
                f = backbone(x.to(device)).float().cpu()
            out.append(f)
    seconds = time.perf_counter() - t0
    return torch.cat(out), seconds


def cached_features(model, samples, arch, weights_id, contract, device, cache_dir=None, log=print, **kw):
    """Load features from the cache or compute and store them. Returns (features, info)."""
    cache_dir = Path(cache_dir or CACHE_ROOT / "features")
    key = cache_key(samples, arch, weights_id, contract)
    path = cache_dir / f"{arch}-{key}.pt"
    if path.is_file():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if blob["features"].shape[0] == len(samples):
                log(f"feature cache: hit {path}")
                return blob["features"], {"cache_hit": True, "path": str(path), "seconds": 0.0}
        except Exception:
            log(f"feature cache: {path} unreadable, recomputing")
    feats, seconds = compute_features(model, samples, contract, device, log=log, **kw)
    atomic_write(path, lambda tmp: torch.save({"features": feats}, tmp))
    log(f"feature cache: computed {len(samples)} images in {seconds:.1f}s "
        f"({1000 * seconds / max(1, len(samples)):.1f} ms/img), saved {path}")
    return feats, {"cache_hit": False, "path": str(path), "seconds": seconds}
