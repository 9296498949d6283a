"""A confidence temperature in an existing asl-edge ONNX file's contract: given, or fitted.

    python -m asl_edge.export.temperature runtime/models/default.onnx 1.7
    python -m asl_edge.export.temperature MODEL.onnx auto --data PERSON_DIR [--data ...] [--per-class 20]

The graph is untouched; only the contract in metadata_props changes, so the runtime's
probabilities become softmax(logits / T). `auto` fits T on people the model never saw: each --data is a
folder of <CLASS>/ images or <CLASS>.mp4 videos (what asl-capture writes), run through the camera
loop's own frame pipeline (the hand finder, tracking in videos); T minimises the negative
log-likelihood of the true classes over the frames with a hand (a 1-D search, deterministic).
Runtime only: no torch.
"""
from __future__ import annotations

import os
from pathlib import Path

import click
import numpy as np

from asl_edge.runtime.contract import CONTRACT_KEY, ModelContract
from asl_edge.common.errors import UserError, cli_errors, command, first_line
from asl_edge.runtime.options import FiniteFloat


GRID = np.exp(np.linspace(np.log(0.2), np.log(10.0), 801))  # candidate temperatures, 0.5% apart


def log_softmax(logits: np.ndarray, t: float) -> np.ndarray:
    z = logits.astype(np.float64) / t
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def nll(logits, labels, t: float = 1.0) -> float:
    return float(-log_softmax(logits, t)[np.arange(len(labels)), labels].mean())


def fit_temperature(logits, labels) -> float:
    """The T on GRID with the lowest NLL (NLL is convex in 1/T, so the grid minimum is the one)."""
    losses = [nll(logits, labels, t) for t in GRID]
    return float(GRID[int(np.argmin(losses))])


def ece(probs, labels, bins: int = 15) -> float:
    """Expected calibration error: mean |accuracy - confidence| over confidence bins, weighted."""
    conf, right = probs.max(1), probs.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(right[m].mean() - conf[m].mean())
    return float(total)


def held_out_logits(model, folders, per_class: int) -> tuple:
    """(logits, labels) of up to `per_class` frames with a hand per class and folder, spread over each
    class's frames, through the camera loop's frame pipeline."""
    from asl_edge.runtime.enroll import record_folder
    from asl_edge.runtime.model import OnnxClassifier

    clf = OnnxClassifier(model, provider="cpu")
    logits, labels = [], []
    for folder in folders:
        rec = record_folder(clf, Path(folder), clf.classes)
        z, y = rec.labelled_logits()
        for c in np.unique(y):
            rows = np.flatnonzero(y == c)
            keep = rows[np.linspace(0, len(rows) - 1, min(per_class, len(rows))).round().astype(int)]
            logits.append(z[keep])
            labels.append(y[keep])
    return np.concatenate(logits), np.concatenate(labels)


def set_temperature(path, temperature: float) -> ModelContract:
    """Rewrite PATH's contract with this temperature (atomically); returns the new contract."""
    return restamp(path, temperature=temperature)


def restamp(path, **changes) -> ModelContract:
    """Rewrite fields of PATH's contract (atomically; the graph untouched); returns the new contract."""
    import onnx

    from .onnx_export import add_metadata

    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file not found: {path}")
    try:
        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    except Exception as e:
        raise UserError(f"cannot read ONNX file {path}: {first_line(e, 200)}") from None
    if CONTRACT_KEY not in meta:
        raise UserError(f"{path} is not an asl-edge model (no {CONTRACT_KEY} in its metadata)")
    contract = ModelContract.from_json(meta[CONTRACT_KEY]).with_fields(**changes)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(path.read_bytes())
    try:
        add_metadata(tmp, {CONTRACT_KEY: contract.to_json()})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return contract


@command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("temperature", metavar="T|auto")
@click.option("--data", "folders", multiple=True, type=click.Path(file_okay=False),
              help="auto: a person the model never saw, <CLASS>/ images or <CLASS>.mp4 videos (repeat).")
@click.option("--per-class", default=20, show_default=True, type=click.IntRange(1, 100_000),
              help="auto: frames with a hand per class and --data, spread over the class's frames.")
@click.option("--dry-run", is_flag=True, help="auto: report the fitted T, write nothing.")
@cli_errors
def main(model, temperature, folders, per_class, dry_run):
    """Set MODEL's confidence temperature T (1 = plain softmax) in its contract, or fit it (auto) on --data."""
    if temperature.strip().lower() != "auto":
        if folders:
            raise UserError("--data is for T = auto (fitting); a number is written as it is")
        t = FiniteFloat().convert(temperature, None, None)
        click.echo(f"{model}: temperature {set_temperature(model, t).temperature:g}")
        return
    if not folders:
        raise UserError("auto fits T on people the model never saw: give --data FOLDER (repeat)")
    logits, labels = held_out_logits(model, folders, per_class)
    t = fit_temperature(logits, labels)
    before, after = (ece(np.exp(log_softmax(logits, x)), labels) for x in (1.0, t))
    click.echo(f"{model}: T {t:.2f} fitted on {len(labels)} frames of {len(folders)} folder(s): NLL "
               f"{nll(logits, labels):.3f} -> {nll(logits, labels, t):.3f}, ECE {100 * before:.1f}% -> {100 * after:.1f}%")
    if t in (GRID[0], GRID[-1]):
        click.echo(f"warning: T {t:.2f} is at the end of the search ({GRID[0]:g}-{GRID[-1]:g}): these frames are too "
                   "easy (or too hard) to calibrate on; give people the model never saw", err=True)
    if not dry_run:
        click.echo(f"{model}: temperature {set_temperature(model, t).temperature:g}")


if __name__ == "__main__":
    main()
