"""Hand boxes for images without a boxes.csv, from the runtime's own hand finder (runtime/hands.py),
so training crops the hand the way asl-run does. Computed once per image and cached.

The cache is one JSON file per source folder in CACHE/hand_boxes/, keyed by each image's path, size
and modification time, and named after the finder's settings (model files, padding, threshold):
a changed image or finder computes again, nothing else does.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

from asl_edge.runtime.contract import read_rgb
from asl_edge.runtime.errors import UserError
from asl_edge.runtime.hands import LANDMARK_MODELS, MODELS, PALM_MODEL, HandFinder

LANDMARK_MODEL = "full"  # files mode's default: what asl-run uses on photos
PAD = 0.15


def finder_key() -> str:
    prov = json.loads((MODELS / "hand_models_provenance.json").read_text())["models"]
    parts = [prov[PALM_MODEL.name]["onnx_sha256"], prov[LANDMARK_MODELS[LANDMARK_MODEL].name]["onnx_sha256"],
             f"pad={PAD}", "min_score=0.5", "min_presence=0.5", "v1"]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _image_key(path: str) -> str:
    st = os.stat(path)
    return f"{path}|{st.st_size}|{st.st_mtime_ns}"


def fill_hand_boxes(samples, cache_dir: Path, log=print, label: str = "") -> tuple[list, dict]:
    """samples -> (samples with .box set from the hand finder where they had none, counts).
    Images where no hand is found keep box None (trained on the whole image, as asl-run's
    files mode classifies them)."""
    todo = [s for s in samples if s.box is None]
    counts = {"without_boxes_csv": len(todo), "found": 0, "no_hand": 0, "computed": 0}
    if not todo:
        return samples, counts
    root = str(Path(os.path.commonpath([s.path for s in todo])))
    cache_dir = Path(cache_dir)
    cache_file = cache_dir / f"{finder_key()}-{hashlib.sha256(root.encode()).hexdigest()[:16]}.json"
    try:
        cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    except (OSError, ValueError):
        cache = {}
    finder = None
    out = []
    for s in samples:
        if s.box is not None:
            out.append(s)
            continue
        key = _image_key(s.path)
        if key not in cache:
            if finder is None:
                finder = HandFinder(video=False, landmark_model=LANDMARK_MODEL, pad=PAD)
            try:
                hand = finder.find_hand(read_rgb(s.path))
            except UserError:
                hand = None
            cache[key] = None if hand is None else [hand[0], hand[1], hand[0] + hand[2], hand[1] + hand[3]]
            counts["computed"] += 1
        box = cache[key]
        counts["found" if box is not None else "no_hand"] += 1
        out.append(s if box is None else dataclasses.replace(s, box=tuple(float(v) for v in box)))
    if counts["computed"]:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, cache_file)
    log(f"{label}hand boxes from the hand finder for {counts['without_boxes_csv']} images without boxes.csv: "
        f"{counts['found']} found, {counts['no_hand']} with no hand found (whole image); "
        f"{counts['computed']} computed, {counts['without_boxes_csv'] - counts['computed']} from the cache")
    return out, counts
