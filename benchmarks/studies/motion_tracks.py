"""Decision record: how often hands wandering at random are read as J or Z by the motion spotter
(runtime/motion.py), on the synthesised tracks of benchmarks/hand_tracks.py:

    python -m asl_edge.benchmarks.studies.motion_tracks --walks 300
"""
from __future__ import annotations

import argparse

import numpy as np

from asl_edge.benchmarks.hand_tracks import J_HAND, Z_HAND, spot, track


def wander_rate(step: float, walks: int, frames: int = 90, seed: int = 7) -> dict:
    """Letters read from `walks` random walks (`step` hand sizes a frame, std) per hand shape."""
    rng = np.random.default_rng(seed)
    hits = {"J": 0, "Z": 0}
    for _ in range(walks):
        walk = np.cumsum(rng.normal(0, step, (frames, 2)), axis=0)
        for shape, tip in ((J_HAND, 20), (Z_HAND, 8)):
            for g in spot(track(shape, tip, walk)):
                hits[g] += 1
    return hits


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--walks", type=int, default=300)
    ap.add_argument("--steps", default="0.02,0.03,0.05,0.08", help="walk speeds, hand sizes per frame")
    args = ap.parse_args()
    for step in (float(s) for s in args.steps.split(",")):
        hits = wander_rate(step, args.walks)
        print(f"step {step:g}: {args.walks} walks of 3 s with each of the J and Z hand shapes -> {hits}")


if __name__ == "__main__":
    main()
