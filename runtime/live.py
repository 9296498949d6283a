"""Camera mode: classify the guide box of each frame, spell letters into text, show or print it."""
from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from asl_edge.common.fileio import json_text
from .camera import GuideBox, StreamStalled
from .hands import HandRoi
from .motion import MOTION_POSES, HandSpeed, MotionSpotter, hand_place
from .overlay import Window, draw_overlay
from .pipeline import FramePipeline
from .spelling import Speller

STATUS_EVERY_S = 2.0  # headless: how often to print an FPS line
DEFAULT_LOOP_THREADS = 4  # without --threads: the cores, at most this many (a Pi's four)


@dataclass(frozen=True)
class LoopThreads:
    """The camera loop's onnxruntime threads: the classifier's, the hand finder's, and whether the two take
    turns on the same cores (their threads then stop spinning after each run: common/sessions)."""
    classifier: int | None
    hand: int
    take_turns: bool = False

    @classmethod
    def plan(cls, threads: int | None, overlap: bool) -> "LoopThreads":
        """threads: asl-run --threads (None: the cores, at most DEFAULT_LOOP_THREADS). Overlapped, the hand
        finder keeps one core of its own and the classifier the rest (more would only contend). One after the
        other, each takes all of them in turn (benchmarks/RESULTS.md, "Two models taking turns on two
        threads")."""
        cores = os.cpu_count() or 1
        if overlap:
            return cls(threads or max(1, cores - 1), 1)
        want = threads or min(cores, DEFAULT_LOOP_THREADS)
        return cls(want, want, take_turns=True) if want >= 2 else cls(threads, 1)

    def describe(self) -> str:
        if self.take_turns:
            return f"the hand finder and the classifier take turns on {self.classifier} threads"
        classifier = self.classifier or "onnxruntime's default number of"
        return f"the classifier on {classifier} thread(s), the hand finder on {self.hand}"


class LiveStats:
    def __init__(self):
        self.frames = 0
        self.model_s = 0.0       # onnxruntime only
        self.preprocess_s = 0.0  # crop, colour convert, resize, normalise
        self.hand_s = 0.0        # hand finding (--roi hand)
        self.read_s = 0.0        # the frame source: decoding a video, or waiting for a camera's next frame
        self.decoder_s = 0.0     # top-k, motion spotter and speller
        self.latency_s = 0.0     # summed over frames: from a frame's arrival to its letter (spelled, shown)
        self.hand_frames = None  # frames where a hand gave the box; None without hand finding
        self.started = None
        self.ended = None
        self.interrupted = False
        self.error = None        # why the stream stopped early (a StreamStalled), raised after the summary

    @property
    def seconds(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended or time.perf_counter()) - self.started

    def fps(self) -> float:
        return self.frames / self.seconds if self.frames and self.seconds > 0 else 0.0


def run_live(clf, source, speller: Speller, guide: GuideBox | HandRoi, *, top_k=3,
             window: Window | None = None, max_frames=None, as_json=False, out=None, overlap=False) -> LiveStats:
    """The loop. Stops at end of a video, on q / window close, at max_frames, or on Ctrl-C.

    guide: a fixed GuideBox, or a HandRoi (the found hand, the guide box when none). With a
    HandRoi the tracked landmarks also spell J and Z from their motion (runtime/motion.py).
    overlap: find the hand in frame t+1 (on a thread of its own) while frame t is classified; each
    frame's result then comes one frame later, and the same (benchmarks/RESULTS.md, "Overlap")."""
    out = out or sys.stdout
    k = min(top_k, len(clf.classes))
    stats = LiveStats()
    pipeline = FramePipeline(clf, guide)
    hands = pipeline.hands
    spotter = speed_meter = None
    if hands is not None:
        stats.hand_frames = 0
        spotter, speed_meter = MotionSpotter(), HandSpeed()
    last_status = time.perf_counter()

    def deliver(frame, timestamp, r, arrived) -> bool:
        """One classified frame: spell, print or draw it. False when the window was closed."""
        nonlocal last_status
        box, probs, agree = r.box, r.probs, r.agree
        stats.hand_frames = None if hands is None else stats.hand_frames + r.hand
        stats.hand_s += r.hand_s
        stats.preprocess_s += r.preprocess_s
        stats.model_s += r.model_s
        stats.frames += 1

        t_decode = time.perf_counter()
        top = clf.top_k(probs, k)
        label, prob = top[0]
        motion = spotter.update(r.landmarks, timestamp) if spotter else None
        speed = speed_meter.update(r.landmarks, timestamp) if speed_meter and timestamp is not None else None
        accepted = spell_frame(speller, probs, clf.classes, timestamp, agree,
                               motion, spotter.window_s if spotter else 0.0, speed, hand_place(r.landmarks))
        stats.decoder_s += time.perf_counter() - t_decode

        if as_json:
            rec = {"frame": stats.frames - 1, "label": label, "prob": round(prob, 6),
                   "top_k": [[n, round(p, 6)] for n, p in top],
                   "accepted": accepted, "text": speller.text}
            if clf.contract.agreement:
                rec["agree"] = agree
            if hands is not None:
                rec["hand"], rec["box"] = r.hand, list(box)
            print(json_text(rec), file=out, flush=True)
        elif window is None and accepted is not None:
            print(f"frame {stats.frames - 1}: accepted {accepted} ({prob:.2f})  text: {speller.text!r}",
                  file=out, flush=True)

        if window is not None:
            draw_overlay(frame, box, top, fps=stats.fps(), text=speller.text,
                         threshold=speller.threshold, progress=speller.progress(timestamp),
                         hand=r.hand, landmarks=r.landmarks,
                         agree=agree or not speller.weighs_agreement,
                         profile=getattr(clf, "profile", None) is not None)
        go_on = window.show(frame) if window is not None else True
        stats.latency_s += time.perf_counter() - arrived
        if window is None and not as_json and time.perf_counter() - last_status >= STATUS_EVERY_S:
            last_status = time.perf_counter()
            print(f"frame {stats.frames - 1}: {stats.fps():.1f} fps, model "
                  f"{1000 * stats.model_s / stats.frames:.1f} ms; top {label} {prob:.2f}; "
                  f"text: {speller.text!r}", file=out, flush=True)
        return go_on

    # overlap: the hand finder's stage runs on this thread while the loop classifies the frame before
    worker = ThreadPoolExecutor(1, thread_name_prefix="asl-hands") if overlap else None
    pending = None  # (frame, timestamp, Prepared, arrival time): read and prepared, not yet classified
    try:
        while max_frames is None or stats.frames + (pending is not None) < max_frames:
            t_read = time.perf_counter()
            try:
                got = source.read()
            except StreamStalled as e:  # keep what was spelled: the caller prints the summary first
                stats.error = e
                break
            if got is None:
                if source.live:  # a camera or stream does not end by itself: say so after the summary
                    stats.error = StreamStalled(
                        f"{source.name} stopped sending frames after {stats.frames} (it ended, or stalled past "
                        "--timeout); check the camera or stream, then run again")
                break
            frame, timestamp = got
            arrived = time.perf_counter()
            if stats.started is None:
                stats.started = time.perf_counter()
            else:
                stats.read_s += time.perf_counter() - t_read
            if window is not None and window.clear_requested:
                speller.reset()
                if spotter is not None:
                    spotter.reset()
                    speed_meter.reset()
                window.clear_requested = False
            if worker is None:
                if not deliver(frame, timestamp, pipeline(frame), arrived):
                    break
                continue
            future = worker.submit(pipeline.prepare, frame)
            go_on = pending is None or deliver(pending[0], pending[1], pipeline.finish(pending[2]), pending[3])
            pending = (frame, timestamp, future.result(), arrived)
            if not go_on:
                pending = None
                break
        if pending is not None:  # the last frame read
            deliver(pending[0], pending[1], pipeline.finish(pending[2]), pending[3])
    except KeyboardInterrupt:
        stats.interrupted = True  # Ctrl-C is the headless way to stop: still print the summary
    finally:
        if worker is not None:
            worker.shutdown(wait=True)  # its frame's hand finder, at most one frame's time
    stats.ended = time.perf_counter()
    return stats


def spell_frame(speller, probs, classes, timestamp, agree, motion=None, motion_window_s=0.0, speed=None, place=None):
    """One frame's step of the speller: its probabilities (and how fast the hand moves, and where it is),
    then a J or Z the motion spotter saw (which replaces the still letter its start pose typed just before).
    -> the label typed, or None."""
    accepted = speller.update_probs(probs, classes, timestamp, agree, speed, place)
    if motion is not None:
        accepted = speller.type_motion(motion, MOTION_POSES[motion], motion_window_s, timestamp)
    return accepted


def summary_line(stats: LiveStats, first_inference_s: float, dropped: int, text: str) -> str:
    n = max(stats.frames, 1)
    hand = "" if stats.hand_frames is None else (
        f"; hand found in {stats.hand_frames}/{stats.frames} frames ({1000 * stats.hand_s / n:.2f} ms/frame)")
    return (f"summary: {stats.frames} frames in {stats.seconds:.2f} s, {stats.fps():.1f} fps end-to-end; "
            f"model {1000 * stats.model_s / n:.2f} ms/frame (+{1000 * stats.preprocess_s / n:.2f} ms preprocess){hand}; "
            f"first inference {1000 * first_inference_s:.1f} ms; dropped {dropped} camera frames; "
            f"text: {text!r}")
