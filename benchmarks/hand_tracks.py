"""Synthesised landmark tracks: a 21-point hand model moved so that one fingertip draws a given path
(J's hook, Z's strokes, standing still). The tests of the motion spotter and the J/Z study
(benchmarks/studies/motion_tracks.py) are built on them."""
from __future__ import annotations

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
