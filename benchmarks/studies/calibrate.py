"""Fit a confidence temperature on signers the model never trained on, and report what it buys.

    python -m asl_edge.benchmarks.studies.calibrate --model runtime/models/default.onnx \\
        --data ../shared/data/t32rahman_closeup --data ../shared/data/longhongvo23_handcrops --per-class 8

Each --data source is one held-out signer (a folder of class folders). Its images are cropped to
the hand the runtime's hand finder finds (training's framing, cached in the asl-edge cache; the
whole image where none is found) and classified once; the logits are kept. The temperature T
minimises the negative log-likelihood of the true classes (a 1-D search over log T, deterministic).

To see whether T carries over to a stranger, T is also fitted on all sources but one and
measured on the one left out. Reported per source and pooled: expected calibration error (ECE,
15 equal-width confidence bins), NLL, and the speller's precision (accuracy of the accepted
top-1) and coverage (share of frames accepted) at each --threshold, before and after.
This script only measures; write a T into a model with
`python -m asl_edge.export.temperature MODEL.onnx T`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

from asl_edge.common.errors import UserError, cli_errors
from asl_edge.export.temperature import ece, fit_temperature, log_softmax, nll

def speller_view(probs, labels, threshold: float) -> tuple:
    """(precision, coverage) of top-1 at probability >= threshold; precision None when none pass."""
    conf, right = probs.max(1), probs.argmax(1) == labels
    take = conf >= threshold
    return (float(right[take].mean()) if take.any() else None), float(take.mean())


def measure(logits, labels, t: float, thresholds) -> dict:
    probs = np.exp(log_softmax(logits, t))
    return {"temperature": t, "n": int(len(labels)), "accuracy": float((probs.argmax(1) == labels).mean()),
            "ece": ece(probs, labels), "nll": nll(logits, labels, t),
            "speller": {f"{th:g}": dict(zip(("precision", "coverage"), speller_view(probs, labels, th)))
                        for th in thresholds}}


def source_logits(clf, path, per_class: int, log, letters_only: bool = False) -> tuple:
    """Hand-cropped logits and labels of up to per_class images per class of one source."""
    from asl_edge.export.images import stratified
    from asl_edge.train.data import CACHE_ROOT, load_image, scan_source
    from asl_edge.train.hand_boxes import fill_hand_boxes

    samples, _ = scan_source(path, clf.classes)
    if letters_only:  # a model trained without Kaggle has never seen del/nothing/space
        samples = [s for s in samples if len(clf.classes[s.label]) == 1]
    n_classes = len({s.label for s in samples})
    samples = stratified(samples, per_class * n_classes)
    samples, counts = fill_hand_boxes(samples, CACHE_ROOT / "hand_boxes", label=f"{Path(path).name}: ")
    from asl_edge.runtime.landmarks import stack

    chunks = [samples[i:i + 16] for i in range(0, len(samples), 16)]  # a landmark model also gets the rows
    logits = np.concatenate([clf.logits([load_image(s) for s in c], stack([s.hand for s in c], len(c))) for c in chunks])
    return logits, np.array([s.label for s in samples]), counts


def _fmt(x):
    return "-" if x is None else f"{100 * x:.1f}%"


def report_rows(name, before, after, thresholds) -> list:
    rows = []
    for tag, m in (("T=1", before), (f"T={after['temperature']:.2f}", after)):
        cells = [f"{_fmt(m['speller'][f'{th:g}']['precision'])} / {_fmt(m['speller'][f'{th:g}']['coverage'])}"
                 for th in thresholds]
        rows.append(f"| {name} | {tag} | {m['n']} | {_fmt(m['accuracy'])} | {100 * m['ece']:.1f}% | "
                    f"{m['nll']:.3f} | " + " | ".join(cells) + " |")
    return rows


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", default=None, type=click.Path(dir_okay=False), help="ONNX model (default: the shipped one).")
@click.option("--data", "sources", multiple=True, required=True, type=click.Path(),
              help="A held-out signer's folder of class folders (repeat; at least 2 for the leave-one-out fit).")
@click.option("--fold-model", "fold_models", multiple=True, type=click.Path(dir_okay=False),
              help="Leave-one-source-out: the model trained without the matching --data source (repeat, once per "
                   "--data, in order); each source's logits then come from a model that never saw it.")
@click.option("--per-class", default=8, show_default=True, type=click.IntRange(1), help="Images per class per source.")
@click.option("--threshold", "thresholds", multiple=True, type=click.FloatRange(0, 1), default=(0.5, 0.7, 0.9),
              show_default=True)
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1))
@click.option("--letters-only", is_flag=True, help="Only the images of A-Z (for models that never saw del/nothing/space).")
@click.option("--json-out", default=None, type=click.Path(dir_okay=False))
@cli_errors
def main(model, sources, fold_models, per_class, thresholds, threads, letters_only, json_out):
    """Fit and measure a confidence temperature on held-out signers."""
    from asl_edge.runtime.model import OnnxClassifier

    if len(sources) < 2:
        raise UserError("give at least two --data sources (T is also checked on a source left out of its fit)")
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    if fold_models and len(fold_models) != len(sources):
        raise UserError(f"{len(fold_models)} --fold-model for {len(sources)} --data: give one per source, in order")
    models = [OnnxClassifier(m, provider="cpu", threads=threads) for m in (fold_models or [model])]
    for clf in models:
        if clf.contract.temperature != 1.0:
            log(f"note: {clf.path} already has temperature {clf.contract.temperature:g}; fitting on its raw logits")
    clf = models[0]
    data, per_class_acc = {}, {}
    for k, path in enumerate(sources):
        logits, labels, counts = source_logits(models[k] if fold_models else clf, path, per_class, log, letters_only)
        name = Path(path).parent.name if Path(path).name == "train" else Path(path).name
        data[name] = (logits, labels)
        per_class_acc[name] = {clf.classes[c]: float((logits[labels == c].argmax(1) == c).mean())
                               for c in sorted(set(labels.tolist()))}
    names = list(data)
    pooled = (np.concatenate([data[n][0] for n in names]), np.concatenate([data[n][1] for n in names]))
    t_all = fit_temperature(*pooled)
    results = {"model": [str(m.path) for m in models], "per_class": per_class, "fitted_on_all": t_all, "sources": {}}
    head = " | ".join(f"precision / coverage at {th:g}" for th in thresholds)
    lines = [f"| held-out source | temperature | images | top-1 | ECE | NLL | {head} |",
             "|" + "---|" * (6 + len(thresholds))]
    for n in names:
        others = [m for m in names if m != n]
        t_out = fit_temperature(np.concatenate([data[m][0] for m in others]),
                                np.concatenate([data[m][1] for m in others]))
        before, after = measure(*data[n], 1.0, thresholds), measure(*data[n], t_out, thresholds)
        results["sources"][n] = {"fitted_on": others, "before": before, "after": after}
        lines += report_rows(f"{n} (T fitted on the others)", before, after, thresholds)
    before, after = measure(*pooled, 1.0, thresholds), measure(*pooled, t_all, thresholds)
    results["pooled"] = {"before": before, "after": after}
    results["per_class_accuracy"] = per_class_acc
    lines += report_rows("all (T fitted on all)", before, after, thresholds)
    print("\n".join(lines))
    print(f"fitted temperature (all sources): {t_all:.3f}")
    if json_out:
        Path(json_out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
