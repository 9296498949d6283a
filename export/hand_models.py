"""INT8 hand landmark models, made the way every INT8 file of this project is made (export/quantize.py:
QDQ, pair-safe per-channel weights, calibrated on real hands, checked for AVX2 overflow), then checked
against the float model on real hands it was not calibrated on.

    python -m asl_edge.export.hand_models --data ../shared/data/webcam_recordings --data DIR ... \\
        [--model full --model lite] [--items 40] [--out runtime/models]

The calibration inputs are what the runtime feeds the landmark model: the float hand finder runs over
the frames (videos, frame after frame, as the camera loop tracks) and images of --data, and the hands
it finds give their crops (10 per video). Every fifth video or image is kept out of calibration for the parity check.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import numpy as np
import onnx

from asl_edge.runtime.camera import VIDEO_EXTENSIONS, video_frames
from asl_edge.runtime.contract import IMAGE_EXTENSIONS, bgr_to_rgb
from asl_edge.common.errors import UserError, cli_errors, command
from asl_edge.common.fileio import atomic_write, file_sha256
from asl_edge.runtime.hands import LANDMARK_MODELS, HandTracker
from asl_edge.common.safeio import read_image_rgb
from asl_edge.common.sessions import ort_session

from .quantize import _BatchReader, name_nodes, quantize_qdq
from .saturation import overflow_risk

log = logging.getLogger(__spec__.name)  # its package name also when run with python -m

# The stem and the first high-resolution blocks stay float, as in the classifier: with the first 6 convs
# float the landmarks moved a third as far from the float model's as with none, at the same speed
# (benchmarks/RESULTS.md, "INT8 hand landmark models").
FLOAT_CONVS = 6
HEAD_OPS = ("Gemm", "Sigmoid")
# Refused above these, on the held-out crops: median landmark error (fraction of the 224 px crop), and the
# share of crops where float and INT8 disagree on whether a hand is present.
MAX_MEDIAN_ERROR, MAX_PRESENCE_FLIPS = 0.005, 0.01
METADATA_KEY = "asl_edge.hand_int8"


@dataclass(frozen=True)
class HandCrops:
    calibration: np.ndarray  # (N, 224, 224, 3) float32 in [0, 1], as the runtime feeds the landmark model
    check: np.ndarray        # the same from the items kept out of calibration
    items: int               # videos and images read


@dataclass(frozen=True)
class Parity:
    crops: int
    median_error: float      # mean landmark distance / crop side, median over crops
    p95_error: float
    max_error: float
    presence_flips: float    # share of crops where one model sees a hand and the other does not


def source_items(folders, per_folder: int) -> list[Path]:
    """Videos and images under each folder, sorted, `per_folder` of each spread evenly over it."""
    items = []
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            raise UserError(f"--data {folder}: no such file or folder")
        found = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
        found = [p for p in found if p.suffix.lower() in VIDEO_EXTENSIONS + IMAGE_EXTENSIONS]
        if not found:
            raise UserError(f"--data {folder}: no videos or images found")
        pick = np.linspace(0, len(found) - 1, min(per_folder, len(found))).round().astype(int)
        items += [found[i] for i in sorted(set(pick))]
    return items


def hand_crops(items, frames_per_video: int = 10) -> HandCrops:
    """The landmark model's inputs where the float hand finder finds a hand: every frame of a video is
    tracked, as in the camera loop, and `frames_per_video` of them spread over it are kept."""
    tracker = HandTracker("full", video=True)
    calib, check = [], []
    for i, item in enumerate(items):
        video = item.suffix.lower() in VIDEO_EXTENSIONS
        try:
            frames = video_frames(item) if video else [read_image_rgb(item)]
        except UserError as e:
            log.warning("skipped %s: %s", item, e)
            continue
        keep = set(np.linspace(0, len(frames) - 1, min(frames_per_video, len(frames))).round().astype(int).tolist())
        tracker.reset()
        tracker.video = video
        for k, frame in enumerate(frames):
            rgb = bgr_to_rgb(frame) if video else frame  # videos decode to BGR, photos read as RGB
            hand = tracker.process(rgb)
            if hand is not None and k in keep:
                (check if i % 5 == 4 else calib).append(tracker.landmark_input(rgb, hand.crop)[0][0])
        if (i + 1) % 20 == 0 or i + 1 == len(items):
            log.info("hand crops: %d/%d items, %d crops", i + 1, len(items), len(calib) + len(check))
    if len(calib) < 16 or not check:
        raise UserError(f"only {len(calib)} calibration and {len(check)} check hand crops found in --data: "
                        "give folders with more hands (at least 16 and 1)")
    return HandCrops(np.stack(calib), np.stack(check), len(items))


def parity(float_path, int8_path, crops: np.ndarray) -> Parity:
    def run(path):
        sess = ort_session(path)
        out = [sess.run(["landmarks", "presence"], {"input": c[None]}) for c in crops]
        return np.array([o[0].reshape(21, 3)[:, :2] for o in out]), np.array([float(o[1].ravel()[0]) for o in out])

    (la, pa), (lb, pb) = run(float_path), run(int8_path)
    err = np.linalg.norm(la - lb, axis=2).mean(axis=1) / crops.shape[1]
    flips = float(np.mean((pa >= 0.5) != (pb >= 0.5)))
    return Parity(len(crops), float(np.median(err)), float(np.percentile(err, 95)), float(err.max()), flips)


def quantize_landmark_model(src, out, crops: HandCrops) -> dict:
    """src (a float landmark model) -> out (INT8), refused unless it passes the overflow and parity checks.
    -> the metadata written into it."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="asl-hand-int8-") as tmp:
        named, pre, q = Path(tmp, "named.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        onnx.save(name_nodes(onnx.load(str(src))), str(named))
        quant_pre_process(str(named), str(pre), skip_symbolic_shape=False)
        nodes = onnx.load(str(pre)).graph.node
        convs = [n.name for n in nodes if n.op_type == "Conv"]
        # The heads stay float. Calibrated on hands only, the presence logit's range has no negative side,
        # so an INT8 presence never falls under 0.5 and a lost hand is tracked on for ever.
        heads = [n.name for n in nodes if n.op_type in HEAD_OPS]
        quantize_qdq(pre, q, _BatchReader({"input": crops.calibration}, chunk=1), convs[:FLOAT_CONVS] + heads)
        s, can = overflow_risk(q, crops.check, chunk=1)  # the graph takes one crop at a time
        if s["saturated_pair_sums"] or can:
            raise UserError(f"{Path(src).name}: {s['saturated_pair_sums']} AVX2 pair sums overflow, {can} channels could; "
                            "not written (a bug in the pair-safe weights, please report it)")
        p = parity(src, q, crops.check)
        log.info("%s INT8 against float on %d held-out hand crops: landmark error median %.2f%%, p95 %.2f%%, max "
                 "%.2f%% of the crop; presence flips %.1f%%", Path(src).name, p.crops, 100 * p.median_error,
                 100 * p.p95_error, 100 * p.max_error, 100 * p.presence_flips)
        if p.median_error > MAX_MEDIAN_ERROR or p.presence_flips > MAX_PRESENCE_FLIPS:
            raise UserError(f"{Path(src).name}: INT8 landmarks too far from float's (median {100 * p.median_error:.2f}% "
                            f"of the crop, presence flips {100 * p.presence_flips:.1f}%); not written")
        meta = {"source": Path(src).name, "source_sha256": file_sha256(src), "float_convs": FLOAT_CONVS,
                "float_heads": list(HEAD_OPS), "weight_range": "pair-safe", "calibration_crops": len(crops.calibration), "items": crops.items,
                "avx2_overflow_pair_sums": 0, "parity": asdict(p), "date": dt.date.today().isoformat()}
        model = onnx.load(str(q))
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(meta)
        atomic_write(out, lambda tmp_path: onnx.save(model, tmp_path))
    return meta


def int8_path(name: str) -> Path:
    """Where asl-run finds the INT8 file of a float landmark model ("full" -> hand_landmark_full.int8.onnx)."""
    return LANDMARK_MODELS[name].with_suffix(".int8.onnx")


@command()
@click.option("--data", "folders", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Folders (or files) of videos and images with hands: calibration and the parity check.")
@click.option("--model", "models", multiple=True, type=click.Choice(["full", "lite"]), default=("full", "lite"),
              show_default=True, help="Which float landmark models to quantize.")
@click.option("--items", default=40, show_default=True, type=click.IntRange(1, 100_000),
              help="Videos and images read from each --data, spread evenly over it.")
@click.option("--out", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for hand_landmark_<model>.int8.onnx [default: next to the float models, where asl-run finds them].")
@cli_errors
def main(folders, models, items, out):
    """Quantize the hand landmark models to INT8 and check them against the float ones."""
    crops = hand_crops(source_items(folders, items))
    for name in models:
        dest = (out / int8_path(name).name) if out else int8_path(name)
        meta = quantize_landmark_model(LANDMARK_MODELS[name], dest, crops)
        log.info("wrote %s (%d calibration crops)", dest, meta["calibration_crops"])


if __name__ == "__main__":
    main()
