"""Accuracy, agreement and pass/fail floors from saved logits (numpy only)."""
from __future__ import annotations

import numpy as np

from asl_edge.runtime.model import softmax


def accuracy_report(logits: np.ndarray, labels: np.ndarray, classes) -> dict:
    """Top-1/top-5, per-class accuracy (classes present in the data only), the confusion
    matrix (rows: true class, columns: predicted, over all model classes) and the per-image
    top-1 predictions, so anyone can recount from the JSON."""
    labels = np.asarray(labels)
    pred = logits.argmax(1)
    k = min(5, logits.shape[1])
    topk = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    per_class = {}
    for c in np.unique(labels):
        n, correct = int(confusion[c].sum()), int(confusion[c, c])
        per_class[classes[c]] = {"n": n, "correct": correct, "acc_pct": 100.0 * correct / n}
    return {"n": int(len(labels)), "top1_pct": 100.0 * float((pred == labels).mean()),
            "top5_pct": 100.0 * float((topk == labels[:, None]).any(1).mean()), "top5_k": k,
            "per_class": per_class, "confusion": confusion.tolist(), "predictions": pred.tolist()}


def agreement(reference: np.ndarray, candidate: np.ndarray) -> dict:
    """How closely a model reproduces the reference on the same images. (export's compare()
    has no probability diff and imports torch; the ONNX-only bench must not need torch.)"""
    diff = np.abs(reference.astype(np.float64) - candidate)
    pdiff = np.abs(softmax(reference.astype(np.float64)) - softmax(candidate.astype(np.float64)))
    return {"top1_pct": 100.0 * float((reference.argmax(1) == candidate.argmax(1)).mean()),
            "max_abs_logit_diff": float(diff.max()), "mean_abs_logit_diff": float(diff.mean()),
            "max_prob_diff": float(pdiff.max())}


def check_floors(datasets: list, min_agreement: float | None, max_drop: float | None) -> list:
    """Violations of --min-agreement / --max-drop, one message each, for every measured model
    on every data set (the reference passes trivially: 100% agreement, no drop)."""
    out = []
    for ds in datasets:
        for row_id, r in ds["results"].items():
            if r.get("agreement") is None:  # no reference logits (the reference failed): reported elsewhere
                continue
            if min_agreement is not None and r["agreement"]["top1_pct"] < min_agreement:
                out.append(f"{row_id} on {ds['name']}: top-1 agreement {r['agreement']['top1_pct']:.2f}% "
                           f"< --min-agreement {min_agreement:g}%")
            if max_drop is not None and r["acc_drop_pts"] > max_drop:
                out.append(f"{row_id} on {ds['name']}: top-1 accuracy {r['top1_pct']:.2f}% is "
                           f"{r['acc_drop_pts']:.2f} points below the reference (> --max-drop {max_drop:g})")
    return out
