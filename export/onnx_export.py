"""PyTorch checkpoint -> one self-contained FP32 ONNX file with the model contract inside."""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

import asl_edge
from asl_edge.runtime.contract import AGREEMENT_OUTPUT, CONTRACT_KEY, EMBEDDING_OUTPUT
from asl_edge.common.errors import UserError
from asl_edge.common.sessions import ort_session

from .feeds import INPUT_NAME, LANDMARKS_NAME, as_feeds, chunks

OUTPUT_NAME = "logits"
DEFAULT_OPSET = 20
INPUT_FORMATS = ("float", "uint8")
INPUT_DESCRIPTION = {"float": "float32 NCHW normalised", "uint8": "uint8 NHWC RGB, normalised in the graph"}


class Uint8Input(torch.nn.Module):
    """uint8 NHWC RGB at input_size (what contract.resize_rgb gives) -> the contract's
    normalisation and NHWC->NCHW transpose -> the network. Exported, these become the first
    nodes of the graph (Transpose, Cast, Mul, Sub, Div), in the same order and float32
    arithmetic as ModelContract.normalize, so both input formats see the same tensor."""

    def __init__(self, net, contract):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(contract.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(contract.std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x, landmarks=None):
        # contiguous(): a permuted NHWC tensor has channels-last strides, which torch.export
        # carries through the network into an as_strided (Range, Gather) before the classifier.
        x = x.permute(0, 3, 1, 2).contiguous().to(torch.float32) * (1.0 / 255.0)
        x = (x - self.mean) / self.std
        return self.net(x) if landmarks is None else self.net(x, landmarks)


class WithOutputs(torch.nn.Module):
    """The network with its extra outputs: a landmark model's agreement of its image and landmark
    classifiers (ModelContract.agreement; FusionHead.forward), then the embedding a personal profile
    is fitted on (ModelContract.embedding, runtime/profile.py): the pooled image features and, for a
    landmark model, the landmark classifier's last hidden layer."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, landmarks=None):
        features = self.net.backbone(x)
        if not self.net.uses_landmarks:
            return self.net.head(features), features
        fused, agree = self.net.head(features, landmarks, with_agreement=True)
        return fused, agree, torch.cat([features, self.net.head.hidden(landmarks)], 1)


def embedding_parts(net) -> tuple:
    """What the embedding output's columns are, in order: ((name, width), ...)."""
    parts = (("image", net.feature_dim),)
    if net.uses_landmarks:
        parts += (("landmarks", net.head.landmarks[-1].in_features),)
    return parts


def for_input_format(model, contract, input_format: str):
    """The module to export and the contract to store for --input-format (with the extra outputs,
    WithOutputs)."""
    if input_format not in INPUT_FORMATS:
        raise UserError(f"unknown input format {input_format!r}: use float or uint8")
    contract = contract.with_input_format(input_format).with_embedding(embedding_parts(model))
    if contract.landmarks:
        contract = contract.with_agreement(True)
    model = WithOutputs(model).eval()
    return (Uint8Input(model, contract).eval() if input_format == "uint8" else model), contract


def export_fp32(model, contract, path, opset=DEFAULT_OPSET):
    """Export with the dynamo exporter (torch.export): it is torch's default and maintained
    path, while the TorchScript exporter is deprecated; weights are embedded
    (external_data=False) so the model is one file. The dummy input follows
    contract.input_format: float32 NCHW, or uint8 NHWC for a model wrapped in Uint8Input; a
    landmark model (contract.landmarks) takes the (N, 66 or 64) landmark rows as a second input."""
    s = contract.input_size
    dummy = (torch.zeros(2, s, s, 3, dtype=torch.uint8) if contract.input_format == "uint8"
             else torch.zeros(2, 3, s, s))
    batch = torch.export.Dim("batch", min=1, max=4096)
    args, names, shapes = (dummy,), [INPUT_NAME], {"x": {0: batch}}
    if contract.landmarks:
        args += (torch.zeros(2, contract.landmarks),)
        names.append(LANDMARKS_NAME)
        shapes["landmarks"] = {0: batch}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model.eval(), args, input_names=names, dynamic_shapes=shapes,
            output_names=[OUTPUT_NAME] + ([AGREEMENT_OUTPUT] if contract.agreement else [])
            + ([EMBEDDING_OUTPUT] if contract.embedding else []),
            dynamo=True, external_data=False, opset_version=opset, verbose=False, optimize=True)
    program.save(str(path), external_data=False)
    m = onnx.load(str(path))
    onnx.checker.check_model(m, full_check=True)
    return m


def add_metadata(path, meta: dict):
    """Write metadata_props (string values) into an ONNX file in place."""
    m = onnx.load(str(path))
    existing = {p.key: p for p in m.metadata_props}
    for k, v in meta.items():
        v = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
        if k in existing:
            existing[k].value = v
        else:
            m.metadata_props.add(key=k, value=v)
    m.producer_name = "asl-edge"
    m.producer_version = asl_edge.__version__
    onnx.save(m, str(path))


def build_metadata(ckpt, contract, ckpt_sha, settings: dict) -> dict:
    hist = ckpt.get("history") or []
    metrics = {"best_val_acc": ckpt.get("best_val_acc"), "best_epoch": ckpt.get("best_epoch"),
               "epochs": ckpt.get("epoch"), "split": ckpt.get("split", {}).get("method"),
               "last": hist[-1] if hist else None}
    return {
        CONTRACT_KEY: contract.to_json(),
        "asl_edge.arch": ckpt["arch"],
        "asl_edge.source_checkpoint_sha256": ckpt_sha,
        "asl_edge.train_metrics": metrics,
        "asl_edge.export": settings,
        "asl_edge.version": asl_edge.__version__,
        "asl_edge.created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def ort_logits(path_or_session, inputs, chunk=32):
    """Logits of an ONNX model for a batch or feeds (the graph's inputs are fed by name)."""
    sess = ort_session(path_or_session) if isinstance(path_or_session, (str, Path)) else path_or_session
    feeds = as_feeds(inputs)
    if list(feeds) == [INPUT_NAME]:
        feeds = {sess.get_inputs()[0].name: feeds[INPUT_NAME]}
    return np.concatenate([sess.run(None, part)[0] for part in chunks(feeds, chunk)])


@torch.no_grad()
def torch_logits(model, inputs, chunk=32):
    """The same for the PyTorch model: the feeds in order (image, then landmarks)."""
    outs = [model(*(torch.from_numpy(v) for v in part.values())) for part in chunks(as_feeds(inputs), chunk)]
    return np.concatenate([(o[0] if isinstance(o, tuple) else o).numpy() for o in outs])


def compare(reference: np.ndarray, candidate: np.ndarray) -> dict:
    diff = np.abs(reference - candidate)
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "top1_agreement": float((reference.argmax(1) == candidate.argmax(1)).mean()), "n": int(len(reference))}


def accuracy(logits, labels) -> float | None:
    if labels is None or len(labels) == 0:
        return None
    return float((logits.argmax(1) == np.asarray(labels)).mean())


def check_fp32_parity(stats: dict, ref_logits: np.ndarray, tol: float = 1e-3):
    """FP32 ONNX must match PyTorch: every top-1 equal, logits within tol (relative to their scale)."""
    # nan compares false with every bound: a model that answers nan would pass the checks below
    if not (np.isfinite(ref_logits).all() and np.isfinite(stats["max_abs_diff"])):
        raise UserError("FP32 parity failed: the model's logits are not finite numbers (nan or inf) in PyTorch or "
                        "ONNX, so its weights are broken; retrain it (the file was not kept)")
    scale = max(1.0, float(np.abs(ref_logits).max()))
    if stats["top1_agreement"] < 1.0 or stats["max_abs_diff"] > tol * scale:
        raise UserError(f"FP32 ONNX disagrees with PyTorch (max |logit diff| {stats['max_abs_diff']:.3g}, "
                        f"top-1 agreement {100 * stats['top1_agreement']:.1f}%); the file was not kept")
