"""Camera-like test frames made from real photos: Roboflow hand photos pasted at several places
and scales on a 640x480 background (a Kaggle "nothing" frame, enlarged), drifting a few pixels per
frame, with the true hand box carried along. Used by hands_parity.py and hands_bench.py."""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from asl_edge.runtime.contract import read_rgb

SIZE = (640, 480)
SIDES = (140, 200, 280, 380)  # pasted photo side in pixels (the hand is about half to 3/4 of it)


def load_boxes(root: Path) -> dict:
    with open(root / "boxes.csv", newline="") as fh:
        return {r["file"]: tuple(float(r[k]) for k in ("x_min", "y_min", "x_max", "y_max"))
                for r in csv.DictReader(fh)}


def background(kaggle: Path, index: int = 0) -> np.ndarray:
    files = sorted((kaggle / "train" / "nothing").glob("*.jpg"))
    if not files:
        return np.full((SIZE[1], SIZE[0], 3), 110, np.uint8)
    bg = read_rgb(files[(index * 37) % len(files)])
    return cv2.resize(bg, SIZE, interpolation=cv2.INTER_LINEAR)


def scenes(roboflow: Path, kaggle: Path, count: int, frames_each: int = 1, seed: int = 0, names=None,
           side_index: int = 0):
    """Yield (rgb 480x640, true box (x0, y0, x1, y1) or None, photo name) for `count` photos
    spread over `names` (default: all of boxes.csv), `frames_each` consecutive frames per photo
    (drifting 3 px/frame); then one empty frame. Photo k gets size and background number
    k + side_index (a caller pasting one photo at a time passes its own count)."""
    rng = np.random.default_rng(seed)
    boxes = load_boxes(roboflow)
    names = sorted(boxes if names is None else set(names) & set(boxes))
    picked = [names[i] for i in np.linspace(0, len(names) - 1, count).round().astype(int)]
    W, H = SIZE
    for k, name in enumerate(picked, start=side_index):
        photo = read_rgb(roboflow / name)
        side = SIDES[k % len(SIDES)]
        ph, pw = photo.shape[:2]
        s = side / max(ph, pw)
        photo = cv2.resize(photo, (max(1, round(pw * s)), max(1, round(ph * s))), interpolation=cv2.INTER_AREA)
        ph, pw = photo.shape[:2]
        x = int(rng.integers(0, W - pw + 1))
        y = int(rng.integers(0, H - ph + 1))
        dx = 3 if x + pw + 3 * frames_each < W else -3 if x >= 3 * frames_each else 0  # stay inside the frame
        bg = background(kaggle, k)
        b = np.array(boxes[name]) * s
        for f in range(frames_each):
            xf = x + dx * f
            frame = bg.copy()
            frame[y:y + ph, xf:xf + pw] = photo
            yield frame, (b[0] + xf, b[1] + y, b[2] + xf, b[3] + y), name
    yield background(kaggle, count), None, "(no hand)"


def write_video(path: Path, frames, fps: float = 30.0) -> int:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, SIZE)
    n = 0
    for rgb, _, _ in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        n += 1
    writer.release()
    return n
