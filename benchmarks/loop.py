"""asl-bench --loop VIDEO: the whole camera loop, stage by stage, as `asl-run --camera VIDEO --no-display` runs it.

The video is read frame by frame (every frame, video time) through runtime/live.run_live with the hand
finder, the classifier and the default speller; the loop's own counters split each frame's time into
the frame source (decoding), palm detection, hand landmarks, the rest of the hand finder (colour
conversion, the hand's square), crop and preprocessing, the classifier and the decoder (top-k, motion
spotter, speller). Each thread count runs in a fresh classifier and hand finder, one after the other.
"""
from __future__ import annotations

import io
import logging
import platform
from pathlib import Path

import numpy as np

from asl_edge.runtime.camera import VideoFileSource
from asl_edge.common.cpu import int8_isa
from asl_edge.common.fileio import atomic_write, json_text
from asl_edge.runtime.hands import default_landmark_model
from asl_edge.runtime.hands.geometry import iou_xyxy
from asl_edge.runtime.live import LoopThreads, run_live
from asl_edge.runtime.cli import parse_region
from asl_edge.runtime.model import OnnxClassifier
from asl_edge.runtime.pipeline import FramePipeline
from asl_edge.runtime.spelling import make_speller

log = logging.getLogger(__name__)

STAGES = ("read", "palm", "landmarks", "hand_other", "preprocess", "classifier", "decoder", "other")
LABELS = {"read": "frame source (decode)", "palm": "palm detection", "landmarks": "hand landmarks",
          "hand_other": "hand finder, the rest", "preprocess": "crop + preprocessing", "classifier": "classifier",
          "decoder": "decoder (top-k, motion, speller)", "other": "loop, the rest"}


def measure_loop(model, video, threads: int, max_frames=None, hand_model=None, hand_threads: int | None = None,
                 overlap: bool = False) -> dict:
    """hand_threads None: the threads as asl-run --threads plans them (runtime/live.LoopThreads); a number: the
    hand finder on that many threads and the classifier on `threads`, each pool spinning as onnxruntime's do."""
    plan = LoopThreads.plan(threads, overlap) if hand_threads is None else LoopThreads(threads, hand_threads)
    clf = OnnxClassifier(model, provider="cpu", threads=plan.classifier, take_turns=plan.take_turns)
    clf.warmup()
    region = parse_region("hand", hand_model or default_landmark_model(clf.uses_landmarks),
                          margin=clf.contract.crop_margin, threads=plan)
    finder = region.finder
    source = VideoFileSource(Path(video))
    speller = make_speller("evidence")
    try:
        stats = run_live(clf, source, speller, region, max_frames=max_frames, out=io.StringIO(), overlap=overlap)
    finally:
        source.close()
    if stats.interrupted:
        raise KeyboardInterrupt
    n = max(stats.frames, 1)
    tracker = finder.tracker
    seconds = {"read": stats.read_s, "palm": tracker.palm_s, "landmarks": tracker.landmark_s,
               "hand_other": stats.hand_s - tracker.palm_s - tracker.landmark_s,
               "preprocess": stats.preprocess_s, "classifier": stats.model_s, "decoder": stats.decoder_s}
    seconds["other"] = max(0.0, stats.seconds - sum(seconds.values()))
    return {"threads": threads, "hand_threads": plan.hand, "take_turns": plan.take_turns, "overlap": overlap, "frames": stats.frames, "seconds": stats.seconds, "fps": stats.fps(), "latency_ms": 1000 * stats.latency_s / n,
            "ms_per_frame": {k: 1000 * v / n for k, v in seconds.items()},
            "palm_runs": tracker.palm_runs, "landmark_runs": tracker.landmark_runs,
            "hand_frames": stats.hand_frames, "hand_model": tracker.landmark_model, "text": speller.text}


def loop_report(model, video, threads_list, max_frames=None, hand_models=(None,), hand_threads=None,
                overlaps=(False,)) -> dict:
    """One run per hand model, overlap setting and thread count, alternating within each thread count (the
    VM's speed drifts); with two or more hand models, the others' parity against the first."""
    runs = []
    for t in threads_list:
        for hand_model in hand_models:
            for overlap in overlaps:
                r = measure_loop(model, video, t, max_frames, hand_model, hand_threads, overlap)
                log.info(f"--loop {video}, {r['hand_model']}{', overlap' if overlap else ''}, {t} thread(s): {r['frames']} "
                         f"frames, {r['fps']:.1f} fps end to end; "
                         + ", ".join(f"{k} {v:.2f} ms" for k, v in r["ms_per_frame"].items()))
                runs.append(r)
    parity = [hand_parity(model, video, hand_models[0], other, max_frames) for other in hand_models[1:]]
    return {"schema": "asl-edge-loop/2", "video": str(video), "model": str(model or "(shipped default)"),
            "cpu": platform.processor() or platform.machine(), "int8_isa": int8_isa(), "runs": runs,
            "hand_parity": parity}


class HandParity:
    """Two camera loops' results on the same frames, frame by frame: hands found, the tight hand box's IoU, the
    landmarks' mean distance as a share of the reference box's longer side, and the fused top-1 of the classifier."""

    def __init__(self):
        self.frames = self.found = self.both = self.same = 0
        self.ious, self.errors = [], []

    def add(self, a, b):
        """a, b: FrameResults of the reference and the candidate loop for one frame."""
        self.frames += 1
        self.same += int(a.probs.argmax() == b.probs.argmax())
        if a.landmarks is None:
            return
        self.found += 1
        if b.landmarks is not None:
            self.both += 1
            boxes = [(*lm.min(0), *lm.max(0)) for lm in (a.landmarks, b.landmarks)]
            self.ious.append(float(iou_xyxy(np.array(boxes[0]), np.array([boxes[1]]))[0]))
            side = max(boxes[0][2] - boxes[0][0], boxes[0][3] - boxes[0][1], 1.0)
            self.errors.append(float(np.linalg.norm(a.landmarks - b.landmarks, axis=1).mean() / side))

    def summary(self) -> dict:
        ious, errors, both = np.array(self.ious), np.array(self.errors), self.both
        return {"frames": self.frames, "reference_hands": self.found,
                "both_hands": both, "box_iou_0.9": float(np.mean(ious >= 0.9)) if both else None,
                "landmark_error_median": float(np.median(errors)) if both else None,
                "landmark_error_1pct": float(np.mean(errors <= 0.01)) if both else None,
                "top1_same": self.same / max(self.frames, 1)}


def hand_pipeline(clf, landmark_model) -> FramePipeline:
    """asl-run --camera's frame pipeline with this hand landmark model (None: the model's default)."""
    return FramePipeline(clf, parse_region("hand", landmark_model or default_landmark_model(clf.uses_landmarks),
                                           margin=clf.contract.crop_margin))


def hand_parity(model, video, reference, candidate, max_frames=None) -> dict:
    """The same frames through two camera loops that differ only in the hand landmark model, each tracking on
    its own as asl-run would (HandParity)."""
    clf = OnnxClassifier(model, provider="cpu", threads=1)
    pipes = [hand_pipeline(clf, m) for m in (reference, candidate)]
    names = [p.region.finder.tracker.landmark_model for p in pipes]
    source = VideoFileSource(Path(video))
    parity = HandParity()
    try:
        while (got := source.read()) is not None and (max_frames is None or parity.frames < max_frames):
            parity.add(*(p(got[0]) for p in pipes))
    finally:
        source.close()
    return {"reference": names[0], "candidate": names[1], **parity.summary()}


def loop_markdown(report: dict) -> str:
    runs = report["runs"]
    head = "| stage (ms per frame) | " + " | ".join(
        f"{r['hand_model']}{', overlap' if r.get('overlap') else ''}, " + (
            f"both on {r['threads']} threads, taking turns" if r.get("take_turns") else
            f"classifier {r['threads']} thread(s), hand finder {r['hand_threads']}") for r in runs) + " |"
    lines = [f"Video `{report['video']}`, model `{report['model']}`, CPU {report['cpu']} ({report['int8_isa']})", "",
             head, "|---|" + "---|" * len(runs)]
    for k in STAGES:
        lines.append(f"| {LABELS[k]} | " + " | ".join(f"{r['ms_per_frame'][k]:.2f}" for r in runs) + " |")
    lines.append("| **end to end (fps)** | " + " | ".join(f"**{r['fps']:.1f}**" for r in runs) + " |")
    lines.append("| latency, a frame's arrival to its letter (ms) | "
                 + " | ".join(f"{r['latency_ms']:.1f}" for r in runs) + " |")
    lines.append("| palm detections / landmark runs / frames | "
                 + " | ".join(f"{r['palm_runs']} / {r['landmark_runs']} / {r['frames']}" for r in runs) + " |")
    lines.append("| typed | " + " | ".join(f"`{r['text']}`" for r in runs) + " |")
    for p in report.get("hand_parity", []):
        pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
        lines += ["", f"Hand model {p['candidate']} against {p['reference']}, {p['frames']} frames: hands found "
                  f"{p['both_hands']}/{p['reference_hands']} of the reference's; hand box IoU >= 0.9 on "
                  f"{pct(p['box_iou_0.9'])}; landmark error median {pct(p['landmark_error_median'])} of the box, "
                  f"<= 1% on {pct(p['landmark_error_1pct'])}; fused top-1 the same on {pct(p['top1_same'])} of frames."]
    return "\n".join(lines) + "\n"


def write_loop(out: Path, report: dict) -> str:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = loop_markdown(report)
    atomic_write(out / "loop.json", lambda tmp: Path(tmp).write_text(json_text(report, indent=1)))
    atomic_write(out / "loop.md", lambda tmp: Path(tmp).write_text(md))
    return md
