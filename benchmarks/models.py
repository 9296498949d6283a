"""The models under test: reading their contracts, checking they match, one row per provider."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asl_edge.common.errors import UserError, printable
from asl_edge.runtime.model import export_settings

# What must match for models to be compared on one preprocessed batch (input_format may differ:
# uint8-input models get the same images resized, before normalisation).
CONTRACT_FIELDS = ("classes", "input_size", "mean", "std", "resize", "interpolation", "color_order", "layout")


@dataclass
class Model:
    """One model file (checkpoint or ONNX) and the contract it carries."""
    kind: str  # "torch" or "onnx"
    path: Path
    contract: object
    format: str
    size_mb: float


@dataclass
class Row:
    """One measurement: a model on one provider, in its own worker process."""
    id: str
    model: Model
    provider: str
    result: dict = field(default_factory=dict)
    logits: list = field(default_factory=list)

    @property
    def ok(self):
        return self.result.get("status") == "ok"


def parse_providers(text: str) -> list | None:
    """'auto' -> None (CPU, plus CUDA where present); else a list from 'cpu,cuda'."""
    if text.strip().lower() == "auto":
        return None
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    bad = [p for p in names if p not in ("cpu", "cuda")]
    if bad or not names:
        raise UserError(f"--providers takes auto or a comma list of cpu,cuda; not {text!r}")
    return sorted(set(names), key=["cpu", "cuda"].index)  # CPU first: it holds the reference row


def _mb(path) -> float:
    return Path(path).stat().st_size / 1e6


def _onnx_format(metadata: dict) -> str:
    precision = export_settings(metadata).get("precision")  # the runtime's guarded reader: a file may lie
    return f"ONNX {printable(precision).upper()}" if isinstance(precision, str) and precision else "ONNX"


def load_models(ckpt: str | None, onnx_paths) -> list:
    """Read each model's contract (and fail early on a corrupt file); the weights are loaded
    again, for measuring, in the workers."""
    models = []
    if ckpt:
        from asl_edge.train.checkpoint import checkpoint_contract, load_checkpoint

        contract = checkpoint_contract(load_checkpoint(ckpt))
        models.append(Model("torch", Path(ckpt), contract, "PyTorch", _mb(ckpt)))
    seen = set()
    for p in onnx_paths:
        if Path(p).resolve() in seen:
            continue
        seen.add(Path(p).resolve())
        from asl_edge.runtime.model import OnnxClassifier

        clf = OnnxClassifier(p, provider="cpu")
        models.append(Model("onnx", Path(p), clf.contract, _onnx_format(clf.metadata), _mb(p)))
    return models


def _show(field_name, value):
    if field_name == "classes" and len(value) > 6:
        return f"{len(value)} classes ({', '.join(value[:3])}, ..., {value[-1]})"
    return str(list(value) if isinstance(value, tuple) else value)


def check_contracts(models: list):
    ref = models[0]
    for m in models[1:]:
        for f in CONTRACT_FIELDS:
            a, b = getattr(ref.contract, f), getattr(m.contract, f)
            same = np.allclose(a, b, rtol=0, atol=1e-6) if f in ("mean", "std") else a == b
            if not same:
                raise UserError(f"models do not share a contract: {m.path.name} has {f} {_show(f, b)} but "
                                f"{ref.path.name} has {f} {_show(f, a)}; asl-bench compares models with the same "
                                "classes and preprocessing")


def _available(kind: str, provider: str) -> bool:
    if provider == "cpu":
        return True
    if kind == "torch":
        import torch

        return torch.cuda.is_available()
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def plan_rows(models: list, providers: list | None) -> list:
    """One row per model and provider, CPU first; rows[0] (the first model on CPU) is the
    reference. With 'auto', CUDA rows appear only where CUDA works; a CUDA asked for by name but missing
    shows as a skipped row."""
    rows, ids = [], set()
    for m in models:
        for prov in (providers or ["cpu", "cuda"]):
            usable = _available(m.kind, prov)
            if providers is None and not usable:
                continue
            rid, n = f"{m.path.name}@{prov}", 1
            while rid in ids:  # same file name in two folders
                n += 1
                rid = f"{m.path.name}#{n}@{prov}"
            ids.add(rid)
            row = Row(rid, m, prov)
            if not usable:
                row.result = {"status": "skipped", "reason": f"{'torch' if m.kind == 'torch' else 'onnxruntime'} "
                                                             "has no CUDA here"}
            rows.append(row)
    return rows


def input_format(model: Model) -> str:
    """Which preprocessed batch a model takes: normalised float NCHW, or uint8 NHWC for ONNX
    files exported with the normalisation inside the graph."""
    return "uint8" if model.kind == "onnx" and model.contract.input_format == "uint8" else "float"
