"""How often the J / Z hand-shape gate of runtime/motion.py holds on real photos of each letter.

    python -m asl_edge.benchmarks.studies.motion_shapes --per-class 15 --data ../shared/data/t32rahman_closeup

J's motion starts from I and ends in the J pose, so the J gate should hold on those letters;
Z's is drawn with the index finger out (the Z and D poses). On the other letters it should
mostly not hold: that is what stops a moving open hand from typing. Landmarks come from the
runtime's hand finder (full model, still-image mode); images with no hand found are skipped.
"""
from __future__ import annotations


import click

from asl_edge.benchmarks.studies.landmark_lopo import LETTERS
from asl_edge.common.errors import cli_errors
from asl_edge.runtime.motion import SHAPES, shape_fits


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", "sources", multiple=True, required=True, type=click.Path())
@click.option("--per-class", default=15, show_default=True, type=click.IntRange(1))
@cli_errors
def main(sources, per_class):
    """Share of frames per letter group where the J and Z hand-shape gates hold."""
    from asl_edge.export.images import stratified
    from asl_edge.runtime.contract import read_rgb
    from asl_edge.runtime.hands import HandTracker
    from asl_edge.train.data import scan_source

    groups = {"I, J": ("I", "J"), "D, Z": ("D", "Z"), "other letters": tuple(c for c in LETTERS if c not in "IJDZ")}
    counts = {g: {"frames": 0, **{k: 0 for k in SHAPES}} for g in groups}
    tracker = HandTracker("full", video=False)
    for path in sources:
        samples, _ = scan_source(path, LETTERS, strict_classes=False, check_images=False)
        for s in stratified(samples, per_class * 26):
            hand = tracker.process(read_rgb(s.path))
            if hand is None:
                continue
            group = next(g for g, letters in groups.items() if LETTERS[s.label] in letters)
            counts[group]["frames"] += 1
            for k in SHAPES:
                counts[group][k] += shape_fits(hand.landmarks, k)
    print("| letters | frames with a hand | J gate holds | Z gate holds |")
    print("|---|---|---|---|")
    for g, c in counts.items():
        n = max(c["frames"], 1)
        print(f"| {g} | {c['frames']} | {100 * c['J'] / n:.0f}% | {100 * c['Z'] / n:.0f}% |")


if __name__ == "__main__":
    main()
