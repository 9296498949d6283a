"""Hand boxes (for images without a boxes.csv) and hand landmarks, from the runtime's own hand
finder (runtime/hands/), so training crops the hand the way asl-run does and a landmark model sees
the landmarks asl-run will give it. Computed once per image and cached.

The cache is one JSON file per source folder in CACHE/hand_boxes/, keyed by each image's path, size
and modification time, and named after the finder's settings (model files, the tracker's defaults, the crop geometry):
a changed image or finder computes again, nothing else does.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from asl_edge.runtime.contract import read_rgb
from asl_edge.common.errors import UserError
from asl_edge.common.fileio import atomic_write
from asl_edge.runtime.hands import BORDER, LANDMARK_MODELS, MODELS, PALM_MODEL, ZOOM_MIN_SIDE, HandFinder
from asl_edge.runtime.landmarks import hand_features

from .progress import progress

log = logging.getLogger(__name__)

LANDMARK_MODEL = "full"  # files mode's default: what asl-run uses on photos
PAD = 0.15


def finder_settings(border: float = BORDER) -> dict:
    """Everything that decides which hand the finder finds where: the model files, the tracker's own
    defaults (read from its signature, not retyped here) and the geometry's constants."""
    import inspect

    from asl_edge.runtime.hands import geometry
    from asl_edge.runtime.hands.tracker import HandTracker

    prov = json.loads((MODELS / "hand_models_provenance.json").read_text())["models"]
    defaults = {k: p.default for k, p in inspect.signature(HandTracker.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty and k not in ("landmark_model", "video", "threads",
                                                                          "take_turns", "provider", "border")}
    return {"palm": prov[PALM_MODEL.name]["onnx_sha256"], "landmarks": prov[LANDMARK_MODELS[LANDMARK_MODEL].name]["onnx_sha256"],
            "pad": PAD, **{k: repr(v) for k, v in defaults.items()}, "zoom_min_side": ZOOM_MIN_SIDE,
            "min_crop_side": geometry.MIN_CROP_SIDE, "palm_to_crop": geometry.PALM_TO_CROP,
            "landmarks_to_crop": geometry.LANDMARKS_TO_CROP, "border": border if border > 1 else None}


def finder_key(border: float = BORDER) -> str:
    text = json.dumps(finder_settings(border), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _load_cache(cache_dir: Path, root_key: str) -> dict:
    """This finder's cache; when it has none yet, the hands found by the same finder without its
    border step (step 4 runs only where steps 1-3 found nothing, so those hands stay the same)."""
    for key, found_only in ((finder_key(), False), (finder_key(border=0), True)):
        f = cache_dir / f"{key}-{root_key}.json"
        try:
            cache = json.loads(f.read_text()) if f.is_file() else None
        except (OSError, ValueError):
            cache = None
        if isinstance(cache, dict):  # an entry of another shape is as good as missing: found again
            return {k: v for k, v in cache.items() if _is_entry(v) and not (found_only and v is None)}
    return {}


def _is_entry(v) -> bool:
    """What _find writes: None, or a box of 4 numbers, 21 landmarks of 3 numbers and a handedness."""
    def numbers(xs, n):
        return isinstance(xs, list) and len(xs) == n and all(isinstance(x, (int, float)) for x in xs)

    return v is None or (isinstance(v, dict) and numbers(v.get("box"), 4) and isinstance(v.get("handedness"), str)
                         and isinstance(v.get("landmarks"), list) and len(v["landmarks"]) == 21
                         and all(numbers(p, 3) for p in v["landmarks"]))


def _image_key(path: str) -> str:
    st = os.stat(path)
    return f"{path}|{st.st_size}|{st.st_mtime_ns}"


def _find(finder, path):
    """One image -> cache entry: None (no hand) or {"box": [x0, y0, x1, y1], "landmarks": 21 x 3, "handedness"}."""
    try:
        found = finder.locate(read_rgb(path))
    except UserError:
        return None
    if found is None:
        return None
    box, hand = found.box, found.hand
    return {"box": [box[0], box[1], box[0] + box[2], box[1] + box[3]],
            "landmarks": [[round(float(v), 2) for v in p] for p in hand.landmarks],
            "handedness": hand.handedness}


def _save(cache_file: Path, cache: dict) -> None:
    """Write the cache; where it cannot be written, train on without it (a cache only saves time)."""
    try:
        atomic_write(cache_file, lambda tmp: Path(tmp).write_text(json.dumps(cache)))
    except UserError as e:  # atomic_write's one line: the cause and a fix; nothing half-written is left
        log.warning(f"warning: hand-box cache not saved ({e}); continuing without it (the hands are found "
                    "again next run; --cache-dir DIR picks another folder)")


def fill_hand_boxes(samples, cache_dir: Path, label: str = "") -> tuple[list, dict]:
    """samples -> (samples with .box from the hand finder where they had none and .hand set to the
    landmark features where a hand was found, counts). Images where no hand is found keep box None
    (trained on the whole image, as asl-run's files mode classifies them) and hand None."""
    counts = {"images": len(samples), "without_boxes_csv": sum(s.box is None for s in samples),
              "found": 0, "no_hand": 0, "computed": 0}
    if not samples:
        return samples, counts
    root = str(Path(os.path.commonpath([s.path for s in samples])))
    cache_dir = Path(cache_dir)
    root_key = hashlib.sha256(root.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    cache_file = cache_dir / f"{finder_key()}-{root_key}.json"
    cache = _load_cache(cache_dir, root_key)
    finder = None
    out = []
    keys = [_image_key(s.path) for s in samples]
    todo = sum(k not in cache for k in keys)
    if todo:
        log.info(f"{label}hand finder: {todo} of {len(samples)} images not in the cache yet")
    bar = progress(total=todo, desc=f"{label}hand finder", unit="img")
    try:
        for s, key in zip(samples, keys):
            if key not in cache:
                if finder is None:
                    finder = HandFinder(video=False, landmark_model=LANDMARK_MODEL, pad=PAD)
                cache[key] = _find(finder, s.path)
                counts["computed"] += 1
                bar.update()
            entry = cache[key]
            counts["found" if entry is not None else "no_hand"] += 1
            if entry is None:
                out.append(s)
                continue
            box = s.box if s.box is not None else tuple(float(v) for v in entry["box"])
            out.append(dataclasses.replace(s, box=box, hand=hand_features(entry["landmarks"], entry["handedness"]),
                                           points=np.asarray(entry["landmarks"], np.float32)[:, :2]))
    finally:  # an interrupted pass keeps what it computed
        bar.close()
        if counts["computed"]:
            _save(cache_file, cache)
    log.info(f"{label}hand finder on {counts['images']} images ({counts['without_boxes_csv']} without boxes.csv): "
             f"{counts['found']} hands found, {counts['no_hand']} with none (whole image, no landmarks); "
             f"{counts['computed']} computed, {counts['images'] - counts['computed']} from the cache")
    return out, counts
