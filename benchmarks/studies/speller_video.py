"""The speller with its hold, on people the model never saw, in a made camera video: how many of the
letters it types are right, and how many of the shown letters it types.

    python -m asl_edge.export.temperature runs/lopo/zoom-lo1/strangers.int8.onnx 2.78  # a copy of last.int8.onnx
    python -m asl_edge.benchmarks.studies.speller_video --model runs/lopo/zoom-lo1/strangers.int8.onnx \\
        --roboflow ../shared/data/roboflow_asl_letters/train --kaggle ../shared/data/asl_alphabet \\
        --per-letter 4 --threshold 0.7 --threshold 0.8

The video (640x480, 30 fps, hand_scenes.py): Roboflow photos pasted at 140-380 px on a room
background, each held for --seconds while drifting 3 px a frame, then --gap seconds of the
background alone (the hand lowered). Letters take turns (A, B, ..., Y, A, ...), so no letter
follows itself; J and Z are left out (in camera mode they are motions, runtime/motion.py). Each
setting runs `asl-run --camera VIDEO --no-display --json` with the file's defaults otherwise (hand
finder, hold 0.6 s) and scores every accepted letter against the photo on screen at that frame.
With a leave-one-source-out fold model that never saw Roboflow (`--val-source 1`), every photo is a
stranger's. Still photos stand in for held letters: a real signer's hand moves and changes shape
between letters, so read these as the speller's behaviour on strangers' hand shapes, not on their
video.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import click
import numpy as np

from asl_edge.benchmarks.studies.hand_scenes import background, load_boxes, scenes, write_video
from asl_edge.common.errors import UserError, cli_errors

FPS = 30.0
SKIP = ("J", "Z")


def pick_photos(boxes: dict, per_letter: int) -> list:
    """`per_letter` photos of each letter but J and Z (one per original photo: Roboflow keeps three
    augmented copies of each, named ORIGINAL.rf.HASH), in turns A, B, ..., Y, A, ..."""
    by_letter = {}
    for name in sorted(boxes):
        letter, original = Path(name).parent.name, Path(name).name.split(".rf.")[0]
        if letter not in SKIP:
            by_letter.setdefault(letter, {}).setdefault(original, name)
    chosen = {}
    for letter, originals in by_letter.items():
        names = list(originals.values())
        idx = np.linspace(0, len(names) - 1, min(per_letter, len(names))).round().astype(int)
        chosen[letter] = [names[i] for i in idx]
    return [chosen[letter][k] for k in range(per_letter) for letter in sorted(chosen) if k < len(chosen[letter])]


def make_video(path: Path, roboflow: Path, kaggle: Path, photos: list, seconds: float, gap: float, seed: int) -> list:
    """Write the video; -> the letter on screen per frame (None in the gaps)."""
    hold, rest = max(1, round(seconds * FPS)), max(1, round(gap * FPS))
    truth = []

    def frames():
        for k, name in enumerate(photos):
            shown = scenes(roboflow, kaggle, 1, frames_each=hold, seed=seed + k, names=[name], side_index=k)
            for rgb, _, _ in list(shown)[:-1]:  # scenes ends with an empty frame: the gap below replaces it
                truth.append(Path(name).parent.name)
                yield rgb, None, name
            empty = background(kaggle, k)
            for _ in range(rest):
                truth.append(None)
                yield empty, None, ""

    write_video(path, frames(), FPS)
    return truth


def pct(v) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def typed_letters(model: Path, video: Path, threshold: float, agreement: bool) -> list:
    """asl-run on the video -> [(frame, accepted letter)]."""
    cmd = [sys.executable, "-m", "asl_edge.runtime.cli", "--model", str(model), "--camera", str(video), "--no-display",
           "--json", "--threshold", str(threshold), "--agreement" if agreement else "--no-agreement"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"asl-run failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return [(r["frame"], r["accepted"]) for r in map(json.loads, proc.stdout.splitlines()) if r.get("accepted")]


def score(typed: list, truth: list) -> dict:
    """Typed letters against the letter on screen: precision, the shown letters typed at least once
    (recall), and the letters typed where none was shown (in a gap)."""
    segments, current, start = [], None, 0
    for i, letter in enumerate(truth + [None]):
        if letter != current:
            if current is not None:
                segments.append((start, i, current))
            current, start = letter, i
    right = sum(1 for f, letter in typed if f < len(truth) and truth[f] == letter)
    hit = sum(1 for a, b, letter in segments if any(a <= f < b and t == letter for f, t in typed))
    return {"typed": len(typed), "right": right, "precision": right / len(typed) if typed else None,
            "shown": len(segments), "typed_right": hit, "recall": hit / len(segments) if segments else None,
            "in_gaps": sum(1 for f, _ in typed if f >= len(truth) or truth[f] is None)}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--roboflow", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--kaggle", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Kaggle's folder (its train/nothing frames are the room).")
@click.option("--per-letter", default=4, show_default=True, type=click.IntRange(1))
@click.option("--seconds", default=1.5, show_default=True, type=click.FloatRange(0.1), help="Each letter held this long.")
@click.option("--gap", default=0.5, show_default=True, type=click.FloatRange(0.05), help="Hand lowered between letters.")
@click.option("--threshold", "thresholds", multiple=True, type=click.FloatRange(0, 1), default=(0.7, 0.8), show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the results as JSON.")
@cli_errors
def main(model, roboflow, kaggle, per_letter, seconds, gap, thresholds, seed, out):
    """Typed-letter precision and recall of asl-run's speller on a video of strangers' hand photos."""
    photos = pick_photos(load_boxes(roboflow), per_letter)
    if not photos:
        raise UserError(f"{roboflow}: no photos in boxes.csv")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "letters.avi"
        truth = make_video(video, roboflow, kaggle, photos, seconds, gap, seed)
        print(f"{len(photos)} photos, {len(truth)} frames ({len(truth) / FPS:.0f} s), model {model}")
        print("\n| threshold | views agree | typed | right (precision) | shown letters typed (recall) | typed in gaps |")
        print("|---|---|---|---|---|---|")
        for threshold in thresholds:
            for agreement in (True, False):
                s = score(typed_letters(model, video, threshold, agreement), truth)
                results.append({"threshold": threshold, "agreement": agreement, **s})
                print(f"| {threshold:g} | {'yes' if agreement else 'no'} | {s['typed']} | {s['right']} "
                      f"({pct(s['precision'])}) | {s['typed_right']}/{s['shown']} ({pct(s['recall'])}) | "
                      f"{s['in_gaps']} |", flush=True)
    if out:
        out.write_text(json.dumps({"model": str(model), "photos": photos, "results": results}, indent=1))


if __name__ == "__main__":
    main()
