"""Decision record: how the hand crop is resized to the model's input.

Question: OpenCV's INTER_AREA at a ratio that is not a whole number takes its general path: about 1 ms for
a webcam hand's 300-450 px crop, against the issue's 0.5 ms for all of the crop's preprocessing. Does a
cheaper rule cost accuracy? Options (runtime/contract.py INTERPOLATIONS): "area_down_linear_up" (what the
shipped model was validated with; its training views were torchvision's antialiased bilinear resize) and
"binned_linear" (whole-factor pixel binning, OpenCV's fast INTER_AREA path, then linear).
Method: the same found hand's crop resized both ways and classified by the same model, (1) for people left
out of training: every `--step`th frame of each letter video of each --fold person, tracked as asl-run
does, by the fold's model; (2) with --split: the shipped model on its run's held-out (val) frame blocks.
Decision and figures: benchmarks/RESULTS.md, "The crop's resize".

    python -m asl_edge.benchmarks.studies.crop_resize ../shared/data/webcam_recordings \
        --fold gunsai75=runs/lopo_web/lo-gunsai75/last.int8.onnx --fold lolzorus=... --fold meyyappan=... \
        --split runs/default/split.csv --model runtime/models/default.onnx
"""
from __future__ import annotations

import time
from pathlib import Path

import click

from asl_edge.benchmarks.studies.crop_edge import source_name, val_rows
from asl_edge.benchmarks.studies.webcam_fusion import tracked_letter_frames
from asl_edge.runtime.cli import load_model
from asl_edge.runtime.contract import INTERPOLATIONS, read_rgb
from asl_edge.runtime.hands import HandFinder, crop_box
from asl_edge.runtime.landmarks import of_hand


class Rules:
    """The model's contract under each interpolation; the crop through each, timed."""

    def __init__(self, clf):
        self.clf = clf
        self.contracts = {name: clf.contract.with_fields(interpolation=name) for name in INTERPOLATIONS}
        self.seconds = dict.fromkeys(INTERPOLATIONS, 0.0)
        self.right = dict.fromkeys(INTERPOLATIONS, 0)
        self.count = 0

    def score(self, crop, landmarks, label: str):
        self.count += 1
        for name, contract in self.contracts.items():
            t0 = time.perf_counter()
            x = contract.preprocess(crop)[None]
            self.seconds[name] += time.perf_counter() - t0
            top = self.clf.classify(x, landmarks).probs[0].argmax()
            self.right[name] += self.clf.classes[int(top)] == label

    def row(self, name: str) -> str:
        n = max(self.count, 1)
        return f"| {name} | {self.count} | " + " | ".join(
            f"{100 * self.right[r] / n:.1f}% ({1000 * self.seconds[r] / n:.2f} ms)" for r in INTERPOLATIONS) + " |"


def strangers(person_dir: Path, model: str, step: int) -> Rules:
    clf = load_model(model, "cpu", 1)[0]
    rules = Rules(clf)
    for letter, p in tracked_letter_frames(person_dir, clf, step):
        x0, y0, x1, y1 = p.region.box
        rules.score(p.region.rgb[y0:y1, x0:x1], p.landmarks, letter)
    return rules


def held_out(model: str, split_csv: str, per_source: int) -> dict:
    clf = load_model(model, "cpu", 1)[0]
    finder = HandFinder(clf.contract.crop_margin, video=False)
    out = {}
    for source, rows in val_rows(split_csv, per_source):
        rules = out[f"{source} ({source_name(rows[0]['path'])})"] = Rules(clf)
        for row in rows:
            rgb = read_rgb(row["path"])
            found = finder.locate(rgb)
            if found is not None:
                rules.score(crop_box(rgb, found.square), of_hand(found.hand)[None], row["class"])
    return out


@click.command()
@click.argument("recordings", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--fold", "folds", multiple=True, metavar="PERSON=MODEL", help="A person and the model that left them out.")
@click.option("--step", default=2, show_default=True, type=click.IntRange(1, 100), help="Every Nth frame.")
@click.option("--split", "split_csv", help="split.csv of --model's run: its val images too.")
@click.option("--model", help="With --split: the model file of that run.")
@click.option("--per-source", default=300, show_default=True, help="Val images drawn per source.")
def main(recordings, folds, step, split_csv, model, per_source):
    print("| person or source | crops with a hand | " + " | ".join(f"{r}: top-1 (resize + normalise)" for r in INTERPOLATIONS)
          + " |\n|---|---|" + "---|" * len(INTERPOLATIONS), flush=True)
    for spec in folds:
        person, _, path = spec.partition("=")
        print(strangers(recordings / person, path, step).row(f"{person}, left out"), flush=True)
    if split_csv:
        for name, rules in held_out(model, split_csv, per_source).items():
            print(rules.row(name), flush=True)


if __name__ == "__main__":
    main()
