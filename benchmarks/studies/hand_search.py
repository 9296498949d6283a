"""Small, far hands: what the zoomed palm search (runtime/hands/, step 3) finds, misses and costs.

    python -m asl_edge.benchmarks.studies.hand_search --kaggle ../shared/data/asl_alphabet \
        --roboflow ../shared/data/roboflow_asl_letters/train --frames 300

1. Files mode on camera-like 640x480 frames (hand_scenes.py: Roboflow photos of people pasted at
   several sizes on a Kaggle background; true hand box from boxes.csv), each searched without and
   with zoom: hands found with IoU >= 0.5 to the true box, by the true box's long side, and ms per
   frame. Frames with no hand at all (backgrounds only): how often something is "found" there.
2. The Roboflow photos themselves (full resolution, `--photos` spread over the set): the same counts.
3. Camera mode on a video of those scenes (30 drifting frames each): frames with the hand found,
   frames from a hand's appearance to its first detection, ms per frame.
With `--model` (default: the shipped one), files mode also classifies each frame as asl-run does
(the hand's square and landmarks, the whole frame where none is found) and reports top-1; with
`--split` (a run's split.csv), only the Roboflow photos that run held out are used (photos it never
saw; Roboflow names no people, so use a model trained without Roboflow for true strangers).
Torch-free: onnxruntime, numpy, OpenCV.
"""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import click
import numpy as np

from asl_edge.benchmarks.studies.hand_scenes import background, load_boxes, scenes
from asl_edge.runtime.contract import read_rgb
from asl_edge.runtime.hands import ZOOM_TILES, HandFinder, HandTracker, crop_box, iou_xyxy, search_tiles
from asl_edge.runtime.landmarks import of_hand
from asl_edge.runtime.model import OnnxClassifier

SIZE_BINS = ((0, 100), (100, 150), (150, 200), (200, 250), (250, 10_000))


def hit(hand, true, width: int, height: int) -> bool:
    """Found, and its tight box overlaps the true box with IoU >= 0.5."""
    if hand is None or true is None:
        return False
    box = hand.box(width, height)
    if box is None:
        return False
    x, y, w, h = box
    return float(iou_xyxy(np.array(true, float), np.array([[x, y, x + w, y + h]], float))[0]) >= 0.5


def squares(rgb, zoom: tuple) -> int:
    return sum(len(search_tiles(rgb.shape[1], rgb.shape[0], t)) for t in zoom)


def classify(clf, rgb, box, hand) -> str:
    """asl-run's files path: the hand's square `box` (HandFinder.find) and its landmarks, or the whole frame."""
    crop = crop_box(rgb, box)
    rows = of_hand(hand)[None] if clf.uses_landmarks else None
    return clf.classes[int(clf.predict([crop], rows)[0].argmax())]


def files_mode(items, zoom: tuple, threads: int, clf=None) -> dict:
    """items: (rgb, true box or None, class or None); zoom: the squares' sizes, () for none. Counts
    per size bin, false finds on empty frames, ms of hand finding, top-1 of `clf` where given."""
    tracker = HandTracker("full", video=False, threads=threads, zoom=bool(zoom), zoom_tiles=zoom)
    finder = HandFinder(tracker=tracker)
    tracker.process(items[0][0])  # warm-up
    bins = {b: [0, 0] for b in SIZE_BINS}
    right = {b: 0 for b in SIZE_BINS}  # top-1 per size bin
    empty, false_finds, ms, correct, labelled = 0, 0, [], 0, 0
    for rgb, true, label in items:
        t0 = time.perf_counter()
        box = finder.find(rgb)  # the hand finder once; its hand and square serve both the count and the classifier
        ms.append(1000 * (time.perf_counter() - t0))
        hand = finder.hand
        ok = False
        if clf is not None and label is not None:
            labelled += 1
            ok = classify(clf, rgb, box, hand) == label
            correct += ok
        if true is None:
            empty += 1
            false_finds += hand is not None
            continue
        side = max(true[2] - true[0], true[3] - true[1])
        b = next(b for b in SIZE_BINS if b[0] <= side < b[1])
        bins[b][0] += hit(hand, true, rgb.shape[1], rgb.shape[0])
        bins[b][1] += 1
        right[b] += ok
    found = sum(v[0] for v in bins.values())
    total = sum(v[1] for v in bins.values())
    return {"zoom": zoom, "tiles": squares(items[0][0], zoom),
            "found": found, "hands": total, "by_size": {f"{a}-{b}": v for (a, b), v in bins.items()},
            "empty_frames": empty, "false_finds": false_finds, "ms_median": float(np.median(ms)),
            "ms_mean": float(np.mean(ms)), "correct": correct, "labelled": labelled,
            "top1_by_size": {f"{a}-{b}": [right[(a, b)], bins[(a, b)][1]] for a, b in SIZE_BINS}}


def camera_mode(frames, zoom: tuple, threads: int) -> dict:
    """frames: (rgb, true, photo name), 30 per photo. Hand frames found, delay to first find."""
    tracker = HandTracker("full", video=True, threads=threads, zoom=bool(zoom), zoom_tiles=zoom)
    found, hands, delays, ms = 0, 0, [], []
    current, waiting = None, 0
    for rgb, true, name in frames:
        if name != current:  # a new photo: the hand appears now
            current, waiting = name, 0
            tracker.reset()
        t0 = time.perf_counter()
        hand = tracker.process(rgb)
        ms.append(1000 * (time.perf_counter() - t0))
        if true is None:
            continue
        hands += 1
        ok = hit(hand, true, rgb.shape[1], rgb.shape[0])
        found += ok
        if waiting is not None:
            if ok:
                delays.append(waiting)
                waiting = None
            else:
                waiting += 1
    photos = len({n for _, t, n in frames if t is not None})
    return {"zoom": zoom, "tiles": squares(frames[0][0], zoom),
            "found": found, "hand_frames": hands, "photos": photos, "photos_found": len(delays),
            "delay_median": float(np.median(delays)) if delays else None,
            "delay_max": max(delays) if delays else None, "ms_median": float(np.median(ms)),
            "ms_mean": float(np.mean(ms))}


def heldout_photos(split_csv: Path, roboflow: Path) -> list[str]:
    """The Roboflow photos (names relative to `roboflow`) a run's split.csv put in val."""
    root = roboflow.resolve()
    out = []
    with open(split_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            path = Path(row["path"]).resolve()
            if row["split"] == "val" and path.is_relative_to(root):
                out.append(path.relative_to(root).as_posix())
    return out


def zoom_name(r) -> str:
    return f"{'+'.join(f'{t:g}' for t in r['zoom'])} ({r['tiles']})" if r["zoom"] else "off"


def pct(a, b) -> str:
    return f"{100 * a / b:.1f}% ({a}/{b})" if b else "-"


@click.command()
@click.option("--kaggle", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--roboflow", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--frames", type=int, default=300, show_default=True, help="Made 640x480 frames (one per photo).")
@click.option("--empty", type=int, default=40, show_default=True, help="Frames with no hand (backgrounds).")
@click.option("--photos", type=int, default=300, show_default=True, help="Roboflow photos at full size.")
@click.option("--videos", type=int, default=12, show_default=True, help="Photos in the camera-mode video (30 frames each).")
@click.option("--seed", type=int, default=1, show_default=True, help="Placement of the pasted photos.")
@click.option("--zoom", "zooms", multiple=True, default=("+".join(map(str, ZOOM_TILES)),), show_default=True,
              help="Zoomed squares' sides as fractions of the frame's shorter side, coarse first, joined "
                   "by '+' (0.75+0.5); repeat to compare. 'off' is always measured.")
@click.option("--model", default="default", show_default=True,
              help="ONNX model to classify the frames with ('none': hand finding only).")
@click.option("--split", "split_csv", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="A run's split.csv: use only the Roboflow photos it held out.")
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(kaggle, roboflow, frames, empty, photos, videos, seed, zooms, model, split_csv, threads, json_out):
    held_out = heldout_photos(split_csv, roboflow) if split_csv else None
    made = [(rgb, true, name.split("/")[0]) for rgb, true, name in
            scenes(roboflow, kaggle, frames, seed=seed, names=held_out)][:-1]
    made += [(background(kaggle, frames + 7 * i), None, None) for i in range(empty)]
    boxes = load_boxes(roboflow)
    names = sorted(boxes if held_out is None else set(held_out) & set(boxes))
    names = [names[i] for i in np.linspace(0, len(names) - 1, min(photos, len(names))).round().astype(int)]
    real = [(read_rgb(roboflow / n), boxes[n], n.split("/")[0]) for n in names]
    video = list(scenes(roboflow, kaggle, videos, frames_each=30, seed=seed + 1, names=held_out))
    clf = None if model == "none" else OnnxClassifier(None if model == "default" else model, provider="cpu",
                                                      threads=threads)
    try:
        zooms = [()] + [tuple(float(t) for t in z.split("+")) for z in zooms]
    except ValueError:
        raise click.BadParameter("--zoom takes fractions joined by '+', e.g. 0.75+0.5") from None
    result = {"made": [files_mode(made, z, threads, clf) for z in zooms],
              "photos": [files_mode(real, z, threads, clf) for z in zooms],
              "camera": [camera_mode(video, z, threads) for z in zooms]}
    which = "the held-out" if held_out is not None else "all"
    print(f"made 640x480 frames ({frames} hands from {which} Roboflow photos, {empty} empty), files mode"
          + (f"; top-1 of {clf.path.name}" if clf else "") + ":")
    print("| zoom (squares per 640x480 frame) | " + " | ".join(f"hand {k} px" for k in result["made"][0]["by_size"]) +
          " | all | false finds on empty | ms median / mean |" + (" top-1 |" if clf else ""))
    print("|---" * (len(SIZE_BINS) + 4 + bool(clf)) + "|")
    for r in result["made"]:
        print(f"| {zoom_name(r)} | " + " | ".join(pct(*v) for v in r["by_size"].values()) +
              f" | {pct(r['found'], r['hands'])} | {r['false_finds']}/{r['empty_frames']} | "
              f"{r['ms_median']:.1f} / {r['ms_mean']:.1f} |" + (f" {pct(r['correct'], r['labelled'])} |" if clf else ""))
    if clf:
        print("\ntop-1 by the hand's size: " + "; ".join(
            f"{zoom_name(r)}: " + ", ".join(f"{k} px {pct(*v)}" for k, v in r["top1_by_size"].items())
            for r in result["made"]))
    print(f"\nRoboflow photos at full size ({len(real)}):")
    for r in result["photos"]:
        print(f"  zoom {zoom_name(r)}: {pct(r['found'], r['hands'])}, "
              + (f"top-1 {pct(r['correct'], r['labelled'])}, " if clf else "")
              + f"ms median {r['ms_median']:.1f} / mean {r['ms_mean']:.1f}")
    print(f"\ncamera mode ({videos} photos x 30 frames):")
    for r in result["camera"]:
        print(f"  zoom {zoom_name(r)}: hand frames found {pct(r['found'], r['hand_frames'])}, "
              f"photos found {r['photos_found']}/{r['photos']}, frames to first find median {r['delay_median']} "
              f"max {r['delay_max']}, ms median {r['ms_median']:.1f} / mean {r['ms_mean']:.1f}")
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
