"""Synthesised landmark tracks for J and Z: a 21-point hand model moved so that one fingertip
draws a given path. Used by tests/test_motion.py, and run as a script it measures how often
hands wandering at random are read as J or Z:

    python -m asl_edge.benchmarks.studies.motion_tracks --walks 300
"""
from __future__ import annotations

import argparse

import numpy as np

from asl_edge.runtime.motion import MotionSpotter

FPS = 30.0


def hand(out=("index", "middle", "ring", "pinky")) -> np.ndarray:
    """(21, 2) landmarks in hand sizes (wrist -> middle knuckle = 1), fingers up (-y)."""
    lm = np.zeros((21, 2))
    lm[1:5] = [[-0.35, -0.2], [-0.55, -0.45], [-0.65, -0.7], [-0.7, -0.9]]  # thumb
    for i, (name, x) in enumerate(zip(("index", "middle", "ring", "pinky"), (-0.3, 0.0, 0.25, 0.45))):
        mcp = 5 + 4 * i
        if name in out:
            ys = [-1.0, -1.45, -1.7, -1.9]
        else:  # curled: the finger folds back over the palm
            ys = [-1.0, -1.25, -1.0, -0.8]
        lm[mcp:mcp + 4] = [[x, y] for y in ys]
    return lm


J_HAND, Z_HAND, OPEN = hand(("pinky",)), hand(("index",)), hand()


def track(shape, tip, path, size=80.0, at=(320, 240), mirror=False, angle=0.0):
    """Landmark frames (pixels) whose landmark `tip` follows path (N, 2, in hand sizes)."""
    c, s = np.cos(angle), np.sin(angle)
    pose = shape @ np.array([[c, s], [-s, c]])
    if mirror:
        pose = pose * [-1, 1]
        path = path * [-1, 1]
    frames = []
    for p in path:
        frames.append((pose - pose[tip] + p) * size + at)
    return frames


def polyline(corners, per_unit=12):
    """Points along straight strokes between corners (hand sizes), about per_unit per hand size."""
    pts = [np.asarray(corners[0], float)]
    for a, b in zip(corners, corners[1:]):
        a, b = np.asarray(a, float), np.asarray(b, float)
        n = max(2, int(np.hypot(*(b - a)) * per_unit))
        pts += [a + (b - a) * t for t in np.linspace(0, 1, n + 1)[1:]]
    return np.array(pts)


def j_path(n=30):
    """Down 1.2 hand sizes, then a hook curving to the left and up (pinky's J)."""
    down = np.stack([np.zeros(n // 2), np.linspace(0, 1.2, n // 2)], 1)
    t = np.linspace(0, np.pi, n // 2)
    hook = np.stack([-0.4 * (1 - np.cos(t)), 1.2 + 0.4 * np.sin(t)], 1)
    return np.concatenate([down, hook])


Z_PATH = polyline([(0, 0), (1.2, 0), (0, 1.0), (1.2, 1.0)])
STILL = np.zeros((40, 2))


def spot(frames, spotter=None, start=0.0):
    """Letters a MotionSpotter reads from landmark frames at FPS."""
    spotter = spotter or MotionSpotter()
    got = []
    for i, lm in enumerate(frames):
        g = spotter.update(lm, start + i / FPS)
        if g:
            got.append(g)
    return got


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
