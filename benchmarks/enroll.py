"""Enrollment benchmark: how much a personal profile (asl-enroll) helps one person, on frames it never saw.

For each person (a folder of letter videos, `<CLASS>.mp4` or `<CLASS>/*.mp4`): enroll on the first
`--enroll-part` of each letter's frames, test on the last `--test-part`, through asl-run's own frame
pipeline. Per-frame top-1 of the model alone and with profiles of every --method and --parts; then
the stranger speller (benchmarks/speller.py) on sequences made from the test part only, without and
with the first profile (traces in OUT/traces/, for `python -m asl_edge.benchmarks.speller --replay`). `--fold PERSON=MODEL` uses the model that never saw PERSON.

    python -m asl_edge.benchmarks.enroll ../shared/data/webcam_recordings/gunsai75 \
        --fold gunsai75=runs/emb/lo-gunsai75.int8.onnx --out runs/enroll
"""
from __future__ import annotations

import logging
import shlex
import sys
import time
from pathlib import Path

import click

from asl_edge.runtime.cli import load_model, parse_region
from asl_edge.runtime.enroll import record_folder
from asl_edge.common.errors import UserError, cli_errors, command, say
from asl_edge.common.fileio import atomic_write, json_text
from asl_edge.runtime.options import FiniteFloat
from asl_edge.runtime.profile import METHODS, fit_profile

from .speller import parse_decoder, run_person, save_trace

log = logging.getLogger(__spec__.name)  # its package name also when run with python -m


def frame_scores(profile, clf, test) -> dict:
    fused = profile.scores(test.probs, test.embedding, clf.classes, clf.contract.embedding)
    return {"top1": float((fused.argmax(1) == test.labels).mean())}


def run_one(clf, folder: Path, variants: list, enroll_part: float, test_part: float, speller_opts: dict,
            fit_opts: dict, traces_dir: Path) -> dict:
    letters = [c for c in clf.classes if len(c) == 1]
    t0 = time.perf_counter()
    enroll = record_folder(clf, folder, letters, 0.0, enroll_part).enrollment()
    test = record_folder(clf, folder, letters, 1.0 - test_part, 1.0).enrollment()
    log.info("%s: %d enrollment frames, %d test frames with a hand (%.0f s)", folder.name, len(enroll.labels),
             len(test.labels), time.perf_counter() - t0)
    out = {"enroll_frames": len(enroll.labels), "test_frames": len(test.labels),
           "model_top1": float((test.probs.argmax(1) == test.labels).mean()), "profiles": {}}
    first = None
    for method, parts in variants:
        t1 = time.perf_counter()
        profile = fit_profile(enroll, clf.classes, clf.contract.embedding, clf.sha256, parts=parts, method=method,
                              **fit_opts)
        fit_s = time.perf_counter() - t1
        name = f"{method}:{'+'.join(parts)}"
        out["profiles"][name] = {**frame_scores(profile, clf, test), "fit_s": fit_s, "check": profile.check,
                                 "base_weight": profile.base_weight}
        log.info("  %s: top-1 %.1f%% (model %.1f%%), fit %.2f s, base weight %g", name,
                 100 * out["profiles"][name]["top1"], 100 * out["model_top1"], fit_s, profile.base_weight)
        first = first or (name, profile)
    decoders = [parse_decoder("evidence")]
    seq = dict(speller_opts, part=(1.0 - test_part, 1.0))
    for label, profile in (("model", None), (first[0], first[1])):
        clf.profile = profile
        r, traces = run_person(clf, lambda: parse_region("hand", "full", "cpu", True, clf.contract.crop_margin), folder, decoders, seq)
        traces_dir.mkdir(parents=True, exist_ok=True)
        save_trace(traces_dir / f"{folder.name}-{'model' if profile is None else 'profile'}.npz", traces, clf.classes)
        d = r["decoders"]["evidence"]
        out.setdefault("speller", {})[label] = {k: d[k] for k in ("right", "signed", "typed", "recall", "precision")}
        out["speller"][label]["frame_top1"] = r["frame_top1"]
        out["speller"][label]["texts"] = d["text"]
        log.info("  speller with %s: %d/%d right (recall %.1f%%), precision %.1f%%", label, d["right"], d["signed"],
                 100 * d["recall"], 100 * d["precision"])
    clf.profile = None
    return out


def table(results: dict) -> str:
    lines = ["| person | model | enroll / test frames | profile | frame top-1 model -> profile | fit s |",
             "|---|---|---|---|---|---|"]
    for person, r in results.items():
        for name, p in r["profiles"].items():
            lines.append(f"| {person} | {r['model']} | {r['enroll_frames']} / {r['test_frames']} | {name} | "
                         f"{100 * r['model_top1']:.1f}% -> {100 * p['top1']:.1f}% | {p['fit_s']:.2f} |")
    lines += ["", "| person | speller (evidence) | right / signed (recall) | right / typed (precision) | held-frame top-1 |",
              "|---|---|---|---|---|"]
    for person, r in results.items():
        for name, d in r["speller"].items():
            lines.append(f"| {person} | {name} | {d['right']}/{d['signed']} ({100 * d['recall']:.1f}%) | "
                         f"{d['right']}/{d['typed']} ({100 * d['precision']:.1f}%) | {100 * d['frame_top1']:.1f}% |")
    return "\n".join(lines)


@command()
@click.argument("people", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--model", "-m", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--fold", "folds", multiple=True, metavar="PERSON=MODEL", help="The model that never saw PERSON.")
@click.option("--method", "methods", multiple=True, type=click.Choice(METHODS),
              help="Profile heads compared [default: all]; the first (with the first --parts) runs the speller.")
@click.option("--parts", "parts_list", multiple=True, metavar="image+landmarks",
              help="Embedding parts a profile uses [default: image+landmarks, image, landmarks].")
@click.option("--enroll-part", default=1 / 3, show_default=True, type=FiniteFloat(0.05, 0.9))
@click.option("--test-part", default=0.5, show_default=True, type=FiniteFloat(0.05, 0.9))
@click.option("--sequences", default=2, show_default=True, type=click.IntRange(1, 50))
@click.option("--temperature", "temperatures", multiple=True, type=FiniteFloat(0.1, 1000),
              help="The profile's temperatures its fit chooses from [default: runtime/profile.TEMPERATURES].")
@click.option("--base-weight", "base_weights", multiple=True, type=FiniteFloat(0, 10),
              help="Likewise for the model's weight in the fusion [default: runtime/profile.BASE_WEIGHTS].")
@click.option("--out", default="runs/enroll", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@cli_errors
def main(people, model, folds, methods, parts_list, enroll_part, test_part, sequences, temperatures, base_weights, out):
    """Score personal profiles for PEOPLE (folders of letter videos): model alone vs with a profile."""
    if enroll_part + test_part > 1:
        raise UserError("--enroll-part and --test-part overlap: their sum must be at most 1")
    fold_models = dict(f.split("=", 1) for f in folds if "=" in f)
    variants = [(m, tuple(p.split("+"))) for m in (methods or METHODS)
                for p in (parts_list or ("image+landmarks", "image", "landmarks"))]
    results = {}
    for folder in people:
        clf, _ = load_model(fold_models.get(folder.name, model), "cpu", None)
        if not clf.contract.embedding:
            raise UserError(f"{clf.path} has no embedding output; re-export it with this asl-export")
        unknown = {p for _, ps in variants for p in ps} - {n for n, _ in clf.contract.embedding}
        if unknown:
            raise UserError(f"--parts: {', '.join(sorted(unknown))} not in {clf.path.name}'s embedding")
        r = run_one(clf, folder, variants, enroll_part, test_part,
                    dict(seed=0, sequences=sequences, hold_s=1.5, transition_s=0.3, doubles=4),
                    {k: v for k, v in (("temperatures", temperatures), ("base_weights", base_weights)) if v},
                    out / "traces")
        results[folder.name] = {**r, "model": clf.path.name}
    command = "python -m asl_edge.benchmarks.enroll " + shlex.join(sys.argv[1:])
    md = f"`{command}`\n\n{table(results)}\n"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "enroll.md", lambda tmp: Path(tmp).write_text(md))
    atomic_write(out / "enroll.json", lambda tmp: Path(tmp).write_text(json_text(
        {"command": command, "results": results}, indent=1)))
    for line in md.splitlines():
        say(line)


if __name__ == "__main__":
    main()
