"""asl-bench --loop VIDEO: the whole camera loop, stage by stage, as `asl-run --camera VIDEO --no-display` runs it.

The video is read frame by frame (every frame, video time) through runtime/live.run_live with the hand
finder, the classifier and the default speller; the loop's own counters split each frame's time into
the frame source (decoding), palm detection, hand landmarks, the rest of the hand finder (colour
conversion, the hand's square), crop and preprocessing, the classifier and the decoder (top-k, motion
spotter, speller). Each thread count runs in a fresh classifier and hand finder, one after the other.
"""
from __future__ import annotations

import io
import json
import platform
from pathlib import Path

from asl_edge.runtime.camera import GuideBox, VideoFileSource
from asl_edge.runtime.cpu import int8_isa
from asl_edge.runtime.fileio import atomic_write
from asl_edge.runtime.hands import HandFinder, HandRoi
from asl_edge.runtime.live import run_live
from asl_edge.runtime.model import OnnxClassifier
from asl_edge.runtime.spelling import make_speller

STAGES = ("read", "palm", "landmarks", "hand_other", "preprocess", "classifier", "decoder", "other")
LABELS = {"read": "frame source (decode)", "palm": "palm detection", "landmarks": "hand landmarks",
          "hand_other": "hand finder, the rest", "preprocess": "crop + preprocessing", "classifier": "classifier",
          "decoder": "decoder (top-k, motion, speller)", "other": "loop, the rest"}


def measure_loop(model, video, threads: int, max_frames=None, hand_model=None, log=print, hand_threads: int = 1) -> dict:
    clf = OnnxClassifier(model, provider="cpu", threads=threads, log=log)
    clf.warmup()
    # the hand finder at one thread, as asl-run runs it (--threads is the classifier's): measured, a second
    # thread of its own slows the loop on 2 cores (benchmarks/README.md, "The camera loop, stage by stage")
    finder = HandFinder(video=True, landmark_model=hand_model or ("full" if clf.uses_landmarks else "lite"),
                        threads=hand_threads, zoom=True)
    source = VideoFileSource(Path(video))
    speller = make_speller("evidence")
    try:
        stats = run_live(clf, source, speller, HandRoi(finder, GuideBox()), max_frames=max_frames, out=io.StringIO())
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
    return {"threads": threads, "hand_threads": hand_threads, "frames": stats.frames, "seconds": stats.seconds, "fps": stats.fps(),
            "ms_per_frame": {k: 1000 * v / n for k, v in seconds.items()},
            "palm_runs": tracker.palm_runs, "landmark_runs": tracker.landmark_runs,
            "hand_frames": stats.hand_frames, "hand_model": tracker.landmark_model, "text": speller.text}


def loop_report(model, video, threads_list, max_frames=None, hand_model=None, log=print, hand_threads=1) -> dict:
    runs = []
    for t in threads_list:
        r = measure_loop(model, video, t, max_frames, hand_model, log, hand_threads)
        log(f"--loop {video}, {t} thread(s): {r['frames']} frames, {r['fps']:.1f} fps end to end; "
            + ", ".join(f"{k} {v:.2f} ms" for k, v in r["ms_per_frame"].items()))
        runs.append(r)
    return {"schema": "asl-edge-loop/1", "video": str(video), "model": str(model or "(shipped default)"),
            "cpu": platform.processor() or platform.machine(), "int8_isa": int8_isa(), "runs": runs}


def loop_markdown(report: dict) -> str:
    runs = report["runs"]
    head = "| stage (ms per frame) | " + " | ".join(
        f"classifier {r['threads']} thread(s), hand finder {r['hand_threads']}" for r in runs) + " |"
    lines = [f"Video `{report['video']}`, model `{report['model']}`, CPU {report['cpu']} ({report['int8_isa']})", "",
             head, "|---|" + "---|" * len(runs)]
    for k in STAGES:
        lines.append(f"| {LABELS[k]} | " + " | ".join(f"{r['ms_per_frame'][k]:.2f}" for r in runs) + " |")
    lines.append("| **end to end (fps)** | " + " | ".join(f"**{r['fps']:.1f}**" for r in runs) + " |")
    lines.append("| palm detections / landmark runs / frames | "
                 + " | ".join(f"{r['palm_runs']} / {r['landmark_runs']} / {r['frames']}" for r in runs) + " |")
    lines.append("| typed | " + " | ".join(f"`{r['text']}`" for r in runs) + " |")
    return "\n".join(lines) + "\n"


def write_loop(out: Path, report: dict) -> str:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = loop_markdown(report)
    atomic_write(out / "loop.json", lambda tmp: Path(tmp).write_text(json.dumps(report, indent=1)))
    atomic_write(out / "loop.md", lambda tmp: Path(tmp).write_text(md))
    return md
