"""A personal profile: a small linear head on the model's embedding, fitted in numpy on one person's
enrolled frames (asl-enroll), fused with the model's own probabilities at run time (asl-run --profile).

The head scores the enrolled classes from the embedding (each part L2-normalised, so its scores are
cosines scaled by a temperature). Fused, an enrolled class c gets

    p(c) = P_model(enrolled) * softmax_enrolled(base_weight * log p_model(c) + head(c))

and a class never enrolled keeps the model's probability. The fit chooses the temperature and
base_weight on its own held-out check (the last quarter of each class's frames in time order) and
records that check in the file. The file is an .npz without pickles, bound to one model file by its
SHA-256.
"""
from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asl_edge.common.errors import UserError, has_control
from asl_edge.common.fileio import atomic_write

PROFILE_VERSION = 1
METHODS = ("prototypes", "ridge")
TEMPERATURES = (5.0, 10.0, 20.0, 40.0, 80.0)  # the head's scale on cosine scores, chosen by the check
BASE_WEIGHTS = (0.0, 0.5, 1.0)                 # the model's log-probabilities in the fusion, likewise
CHECK_FRACTION = 0.25
RIDGE_LAMBDA = 1.0
MIN_FRAMES = 4  # per class: enough for a fit part and a check part
MAX_BYTES = 8 << 20


def normalized(embedding: np.ndarray, parts, use) -> np.ndarray:
    """(N, width) embedding -> (N, D) the used parts' columns, each part L2-normalised and scaled so the
    row has norm 1 (every part weighs the same)."""
    embedding = np.asarray(embedding, np.float32)
    out, start = [], 0
    for name, width in parts:
        if name in use:
            block = embedding[:, start:start + width]
            out.append(block / np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-6))
        start += width
    return np.concatenate(out, 1) / np.float32(math.sqrt(len(out)))


def _log(p):
    return np.log(np.maximum(p, 1e-12))


def fuse(base_probs: np.ndarray, head_scores: np.ndarray, columns: np.ndarray, base_weight: float) -> np.ndarray:
    """The model's probabilities (N, C) and the head's scores (N, k) for the classes at `columns` -> fused (N, C)."""
    base = np.asarray(base_probs, np.float64)
    z = base_weight * _log(base[:, columns]) + head_scores
    z = np.exp(z - z.max(1, keepdims=True))
    out = base.copy()
    out[:, columns] = base[:, columns].sum(1, keepdims=True) * z / z.sum(1, keepdims=True)
    return out.astype(np.float32)


@dataclass(frozen=True)
class Profile:
    model_sha256: str
    classes: tuple          # the enrolled classes, in the model's order
    parts: tuple            # the embedding parts used ("image", "landmarks")
    weights: np.ndarray     # (k, D) float32, temperature included
    bias: np.ndarray        # (k,) float32
    base_weight: float
    counts: tuple           # frames enrolled per class
    method: str
    check: dict = field(default_factory=dict)  # the fit's held-out check (fit_profile)

    def scores(self, probs: np.ndarray, embedding: np.ndarray, model_classes, model_parts) -> np.ndarray:
        """The model's calibrated probabilities (N, C) and embedding (N, width) -> fused probabilities."""
        columns = np.array([list(model_classes).index(c) for c in self.classes])
        z = normalized(embedding, model_parts, self.parts)
        return fuse(probs, z @ self.weights.T + self.bias, columns, self.base_weight)

    def check_model(self, sha256: str, contract, path) -> "Profile":
        """Refuses, in one line, a profile made for another model file."""
        if sha256 != self.model_sha256:
            raise UserError(f"{path}: this profile was made for another model file (SHA-256 {self.model_sha256[:12]}..., "
                            f"this one is {sha256[:12]}...); enroll again with asl-enroll --model for this model")
        widths = dict(contract.embedding)
        if any(c not in contract.classes for c in self.classes) or any(p not in widths for p in self.parts) \
                or self.weights.shape[1] != sum(widths[p] for p in self.parts):
            raise UserError(f"{path}: the profile does not fit its model's classes or embedding; enroll again")
        return self

    def save(self, path) -> Path:
        arrays = {"version": np.array(PROFILE_VERSION), "model_sha256": np.array(self.model_sha256),
                  "classes": np.array(self.classes), "parts": np.array(self.parts),
                  "weights": self.weights.astype(np.float32), "bias": self.bias.astype(np.float32),
                  "base_weight": np.array(self.base_weight), "counts": np.array(self.counts, np.int64),
                  "method": np.array(self.method), "check": np.array(json.dumps(self.check, sort_keys=True))}
        return atomic_write(path, lambda tmp: np.savez(open(tmp, "wb"), **arrays))

    @classmethod
    def load(cls, path) -> "Profile":
        path = Path(path)
        if not path.is_file():
            raise UserError(f"profile not found: {path} (make one with asl-enroll --out {path.name})")

        def bad(why):
            return UserError(f"{path}: not a usable asl-edge profile ({why}); make it again with asl-enroll")

        if path.stat().st_size > MAX_BYTES:
            raise bad(f"{path.stat().st_size} bytes, more than a profile's {MAX_BYTES >> 20} MB")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except ValueError as e:  # a pickle, or an .npy holding objects
            raise bad("it holds pickled objects" if "pickle" in str(e) else str(e)[:120]) from None
        except (OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
            raise bad(f"unreadable: {type(e).__name__}") from None
        if not isinstance(arrays, dict) or "version" not in arrays:
            raise bad("no version")
        try:
            version = int(arrays["version"])
            if version != PROFILE_VERSION:
                raise bad(f"version {version}; this asl-edge reads version {PROFILE_VERSION}")
            with np.errstate(over="ignore", invalid="ignore"):  # out of float32's range -> inf, refused below
                weights = np.asarray(arrays["weights"], np.float32)
                bias = np.asarray(arrays["bias"], np.float32)
            classes = tuple(str(c) for c in arrays["classes"].reshape(-1))
            parts = tuple(str(p) for p in arrays["parts"].reshape(-1))
            counts = tuple(int(n) for n in arrays["counts"].reshape(-1))
            check = json.loads(str(arrays["check"]))
            profile = cls(str(arrays["model_sha256"]), classes, parts, weights, bias,
                          float(arrays["base_weight"]), counts, str(arrays["method"]), check)
        except UserError:
            raise
        except (KeyError, ValueError, TypeError, OverflowError) as e:  # OverflowError: int(inf)
            raise bad(f"missing or malformed field ({type(e).__name__}: {str(e)[:80]})") from None
        k = len(classes)
        if weights.ndim != 2 or weights.shape[0] != k or bias.shape != (k,) or len(counts) != k or k == 0 \
                or len(set(classes)) != k or any(has_control(c) for c in classes) \
                or not np.isfinite(weights).all() or not np.isfinite(bias).all() \
                or not math.isfinite(profile.base_weight) or not 0 <= profile.base_weight <= 10 \
                or profile.method not in METHODS or not parts or len(profile.model_sha256) != 64:
            raise bad("its fields do not fit together")
        return profile


@dataclass(frozen=True)
class Enrollment:
    """One person's frames: the model's embedding, calibrated probabilities and the class signed, in time order."""
    embedding: np.ndarray  # (N, width)
    probs: np.ndarray      # (N, C)
    labels: np.ndarray     # (N,) class indices of the model


def time_split(labels: np.ndarray, fraction: float = CHECK_FRACTION):
    """Per class, its first frames for the fit and its last `fraction` for the check (frames of one
    person are near-duplicates of their neighbours, so a random split would check on copies)."""
    fit = np.ones(len(labels), bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        fit[idx[len(idx) - max(1, round(fraction * len(idx))):]] = False
    return fit, ~fit


def _head(z, labels, classes_idx, method):
    """Unit-scale linear head (k, D), (k,) on normalised rows."""
    k = len(classes_idx)
    y = np.searchsorted(classes_idx, labels)
    if method == "prototypes":
        means = np.stack([z[y == j].mean(0) for j in range(k)])
        return means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-6), np.zeros(k, np.float32)
    # ridge on centred one-hot targets, in the dual when there are fewer rows than columns
    targets = np.eye(k, dtype=np.float64)[y] - 1.0 / k
    zc = z.astype(np.float64)
    if len(zc) < zc.shape[1]:
        w = (zc.T @ np.linalg.solve(zc @ zc.T + RIDGE_LAMBDA * np.eye(len(zc)), targets)).T
    else:
        w = np.linalg.solve(zc.T @ zc + RIDGE_LAMBDA * np.eye(zc.shape[1]), zc.T @ targets).T
    return w.astype(np.float32), np.zeros(k, np.float32)


def _nll(probs, labels):
    return float(-_log(probs[np.arange(len(labels)), labels]).mean())


def fit_profile(data: Enrollment, model_classes, model_parts, model_sha256: str, *, parts=None,
                method: str = "prototypes", temperatures=TEMPERATURES, base_weights=BASE_WEIGHTS) -> Profile:
    """The head, its temperature and the fusion weight chosen on the check frames, then refitted on every frame."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    parts = tuple(parts or [n for n, _ in model_parts])
    labels = np.asarray(data.labels)
    classes_idx = np.unique(labels)
    counts = [int((labels == c).sum()) for c in classes_idx]
    if min(counts) < MIN_FRAMES:
        few = [model_classes[c] for c, n in zip(classes_idx, counts) if n < MIN_FRAMES]
        raise UserError(f"too few frames with a hand for {', '.join(few)} (at least {MIN_FRAMES} each); "
                        "record those letters again")
    z = normalized(data.embedding, model_parts, parts)
    fit, check = time_split(labels)
    w, b = _head(z[fit], labels[fit], classes_idx, method)
    best = None
    for t in temperatures:
        for a in base_weights:
            fused = fuse(data.probs[check], t * (z[check] @ w.T + b), classes_idx, a)
            loss = _nll(fused, labels[check])
            if best is None or loss < best[0]:
                best = (loss, t, a, fused)
    _, t, a, fused = best
    check_report = {"frames": int(check.sum()), "model_top1": float((data.probs[check].argmax(1) == labels[check]).mean()),
                    "profile_top1": float((fused.argmax(1) == labels[check]).mean()), "temperature": t}
    w, b = _head(z, labels, classes_idx, method)
    return Profile(model_sha256, tuple(model_classes[c] for c in classes_idx), parts, (t * w).astype(np.float32),
                   (t * b).astype(np.float32), float(a), tuple(counts), method, check_report)
