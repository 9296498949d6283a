"""asl-enroll: learn one person's hand in a minute, on the device (onnxruntime, numpy, OpenCV only).

Guided from a camera (or a video), or from folders of that person's images or videos, it records the
model's embedding and probabilities on frames where the hand is found, through the same frame
pipeline as asl-run --camera, fits a personal profile (runtime/profile.py) and writes it as a small
.npz that `asl-run --profile` fuses with the model. `--check` scores a profile on other frames.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import click
import cv2
import numpy as np

from .camera import DEFAULT_TIMEOUT_S, VIDEO_EXTENSIONS, GuideBox, open_source, video_frames
from .contract import IMAGE_EXTENSIONS, read_rgb
from asl_edge.common.errors import UserError, cli_errors, command, say
from .hands import HandFinder, HandRoi, default_landmark_model
from .model import OnnxClassifier
from .options import FiniteFloat
from .overlay import Window, display_unavailable_reason
from .pipeline import FramePipeline
from .profile import METHODS, Enrollment, Profile, fit_profile

log = logging.getLogger(__spec__.name)  # its package name also when run with python -m

DEFAULT_METHOD = "prototypes"


class Recorder:
    """Frames with a hand, per class, in the order recorded (a redo drops a class's frames)."""

    def __init__(self, clf):
        self.clf = clf
        self.rows: dict = {}

    def add(self, cls: str, result) -> bool:
        if result.landmarks is None:  # no hand in this very frame (a kept box is not enrolled)
            return False
        embedding = None if result.scores.embedding is None else result.scores.embedding[0]
        self.rows.setdefault(cls, []).append((embedding, result.probs, result.scores.logits[0]))
        return True

    def labelled_logits(self) -> tuple:
        """(logits (N, C), class indices (N,)) of every recorded frame: what a temperature is fitted on."""
        rows = [(z, self.clf.classes.index(c)) for c, got in self.rows.items() for _, _, z in got]
        if not rows:
            raise UserError("no frame with a hand was recorded; nothing to fit on")
        return np.stack([r[0] for r in rows]), np.array([r[1] for r in rows])

    def count(self, cls: str) -> int:
        return len(self.rows.get(cls, []))

    def drop(self, cls: str):
        self.rows.pop(cls, None)

    def enrollment(self) -> Enrollment:
        classes = [c for c in self.clf.classes if self.rows.get(c)]
        if not classes:
            raise UserError("no frame with a hand was recorded for any letter; nothing to enroll "
                            "(check the light and that the hand is in view)")
        rows = [(e, p, self.clf.classes.index(c)) for c in classes for e, p, _ in self.rows[c]]
        return Enrollment(np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]),
                          np.array([r[2] for r in rows]))


def hand_pipeline(clf, still: bool) -> FramePipeline:
    """The camera loop's hand region (tracking across a video's frames), or for still images each found
    on its own (no smoothing, nothing kept)."""
    finder = HandFinder(clf.contract.crop_margin, video=not still, landmark_model=default_landmark_model(clf.uses_landmarks),
                        zoom=True)
    roi = HandRoi(finder, GuideBox(), alpha=1.0, keep=0) if still else HandRoi(finder, GuideBox())
    return FramePipeline(clf, roi)


def class_files(folder: Path, classes) -> dict:
    """{class: [image or video files, sorted]} from <CLASS>/ folders or <CLASS>.<video> files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--data: not a folder: {folder}")
    by_name = {c.lower(): c for c in classes}
    found: dict = {}
    for p in sorted(folder.iterdir()):
        cls = by_name.get((p.name if p.is_dir() else p.stem).lower())
        if cls is None:
            continue
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        files = [f for f in files if f.suffix.lower() in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS]
        if files:
            found.setdefault(cls, []).extend(files)
    if not found:
        raise UserError(f"--data {folder}: no <CLASS>/ folders or <CLASS>.mp4 files of the model's classes "
                        f"({', '.join(classes[:5])}, ...) with images or videos")
    return found


def record_folder(clf, folder: Path, classes, frames_from: float = 0.0, frames_to: float = 1.0) -> Recorder:
    """Every class's files in name order; of each video only the frames between the two fractions of its length."""
    rec = Recorder(clf)
    files = class_files(folder, classes)
    video, still = hand_pipeline(clf, still=False), hand_pipeline(clf, still=True)
    for cls, paths in files.items():
        for path in paths:
            if path.suffix.lower() in VIDEO_EXTENSIONS:
                frames = video_frames(path)
                if not frames:
                    log.warning(f"warning: {path} has no readable frames")
                a, b = round(frames_from * len(frames)), round(frames_to * len(frames))
                video.reset()
                for frame in frames[a:b]:
                    rec.add(cls, video(frame))
            else:
                try:
                    rgb = read_rgb(path)
                except UserError as e:
                    log.warning(f"warning: skipped {e}")
                    continue
                still.reset()
                rec.add(cls, still(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)))
        log.info(f"{cls}: {rec.count(cls)} frames with a hand from {len(paths)} file(s)")
    return rec


def record_guided(clf, source, classes, seconds: float, countdown: float, give_up: float,
                  window: Window | None = None) -> Recorder:
    """For each class in turn: `countdown` s to get ready, then frames with a hand until they span `seconds`
    (source time). No hand for `give_up` s skips the letter. In the window: r redoes the letter (or the one
    before, during a countdown), s skips it, q finishes with the letters recorded so far."""
    rec, pipeline = Recorder(clf), hand_pipeline(clf, still=False)
    i, phase_start, announced, last_hand, recorded_s, last_t = 0, None, None, None, 0.0, None
    while i < len(classes):
        got = source.read()
        if got is None:
            log.info(f"the source ended before {', '.join(classes[i:])} (they fall back to the model)")
            break
        frame, t = got
        t = time.perf_counter() if t is None else t
        cls = classes[i]
        if announced != cls:
            motion = " with its motion" if cls in ("J", "Z") else ""
            log.info(f"{cls}: sign {cls}{motion} and hold it ({countdown:g} s to get ready, then {seconds:g} s)")
            announced, phase_start, last_hand, recorded_s, last_t = cls, t, t + countdown, 0.0, None
            rec.drop(cls)
        r = pipeline(frame)
        ready = t - phase_start >= countdown
        if ready and rec.add(cls, r):
            recorded_s += 0.0 if last_t is None else min(t - last_t, 0.2)
            last_t, last_hand = t, t
        elif ready:
            last_t = None
        key = None
        if window is not None:
            left = max(0.0, countdown - (t - phase_start))
            sub = f"get ready: {left:.1f} s" if not ready else f"recording {min(recorded_s / seconds, 1):.0%}"
            if r.landmarks is None:
                sub += "  (no hand found: show your hand)"
            show = frame.copy()
            x0, y0, x1, y1 = r.box
            cv2.rectangle(show, (x0, y0), (x1, y1), (0, 200, 255), 2)
            cv2.putText(show, f"Sign: {cls}  ({i + 1}/{len(classes)})", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.1,
                        (0, 200, 255), 2, cv2.LINE_AA)
            cv2.putText(show, sub + "   r redo, s skip, q finish", (10, 75), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                        (255, 255, 255), 2, cv2.LINE_AA)
            if not window.show(show):
                log.info("finished early: the letters not recorded fall back to the model")
                break
            key = window.key
        if key == "r":
            if not ready and i > 0:
                i -= 1
            announced = None
            continue
        if key == "s" or (ready and t - last_hand > give_up):
            log.info(f"{cls}: skipped" + ("" if key == "s" else f" (no hand found for {give_up:g} s)")
                     + "; it falls back to the model")
            rec.drop(cls)
            i += 1
            continue
        if recorded_s >= seconds:
            log.info(f"{cls}: {rec.count(cls)} frames recorded")
            i += 1
    return rec


def check_lines(profile: Profile, data: Enrollment, clf) -> list:
    """A profile scored on frames it never saw: top-1 of the model alone and with the profile, per class."""
    fused = profile.scores(data.probs, data.embedding, clf.classes, clf.contract.embedding)
    base_right = data.probs.argmax(1) == data.labels
    prof_right = fused.argmax(1) == data.labels
    lines = [f"check: {len(data.labels)} frames with a hand; top-1 model {base_right.mean():.1%}, "
             f"with the profile {prof_right.mean():.1%}"]
    for c in np.unique(data.labels):
        m = data.labels == c
        lines.append(f"  {clf.classes[c]}: {base_right[m].mean():.0%} -> {prof_right[m].mean():.0%} ({m.sum()} frames)")
    return lines


@command()
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The profile to write (.npz); written only when the enrollment succeeds.")
@click.option("--model", "-m", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="ONNX model made by asl-export (default: the shipped model); the profile works with it only.")
@click.option("--camera", "-c", default=None, metavar="INDEX|PATH|URL|picam",
              help="Guided enrollment from a camera (or a video file): it asks for each letter in turn.")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Enroll from <CLASS>/ folders of images or videos, or <CLASS>.mp4 files (what asl-capture writes).")
@click.option("--check", "check_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Score this profile on --data instead of enrolling (model alone vs with the profile).")
@click.option("--classes", default=None, help="Comma list of letters to enroll, in order [default: A-Z].")
@click.option("--seconds", default=2.0, show_default=True, type=FiniteFloat(0.2, 30),
              help="Guided: seconds of frames with a hand recorded per letter.")
@click.option("--countdown", default=2.0, show_default=True, type=FiniteFloat(0, 30),
              help="Guided: seconds to get each letter ready before recording.")
@click.option("--give-up", default=10.0, show_default=True, type=FiniteFloat(1, 600),
              help="Guided: skip a letter after this many seconds without a hand.")
@click.option("--method", type=click.Choice(METHODS), default=DEFAULT_METHOD, show_default=True,
              help="The personal head: class prototypes (cosine) or a ridge head on the embedding.")
@click.option("--no-display", is_flag=True, help="Guided: prompts in the terminal instead of a window.")
@click.option("--timeout", type=FiniteFloat(0.1, 600), default=DEFAULT_TIMEOUT_S, show_default=True,
              help="Seconds to wait for a stream to open and for each frame.")
@cli_errors
def main(out, model, camera, data, check_path, classes, seconds, countdown, give_up, method, no_display, timeout):
    """Fit a personal profile for asl-run --profile from a person's own signing, in about a minute."""
    if (camera is None) == (data is None):
        raise UserError("give one of --camera (guided) or --data DIR")
    if check_path is not None and data is None:
        raise UserError("--check scores a profile on --data DIR")
    if check_path is None and out is None:
        raise UserError("give --out PROFILE.npz (or --check PROFILE.npz --data DIR)")
    if out is not None and out.suffix != ".npz":
        raise UserError(f"--out must end in .npz: {out}")
    if out is not None and out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name")
    if data is not None and not data.is_dir():
        raise UserError(f"--data: not a folder: {data}")
    source = open_source(camera, timeout) if camera is not None else None
    try:
        clf = OnnxClassifier(model, provider="cpu")
        if not clf.contract.embedding:
            raise UserError(f"{clf.path} has no embedding output, so asl-enroll cannot fit a profile for it; "
                            "re-export it with this asl-export")
        profile = Profile.load(check_path).check_model(clf.sha256, clf.contract, check_path) if check_path else None
        letters = [c.strip() for c in classes.split(",")] if classes else [c for c in clf.classes if len(c) == 1]
        unknown = [c for c in letters if c not in clf.classes]
        if unknown or not letters:
            raise UserError(f"--classes: {', '.join(unknown) or '(none)'} not among the model's classes")
        t0 = time.perf_counter()
        if source is not None:
            reason = "--no-display" if no_display else display_unavailable_reason()
            window = Window() if reason is None else None
            if window is None:
                log.info(f"no window ({reason}); prompts go to the terminal")
            try:
                rec = record_guided(clf, source, letters, seconds, countdown, give_up, window)
            finally:
                if window is not None:
                    window.close()
        else:
            rec = record_folder(clf, data, letters)
        enrolled = rec.enrollment()
    finally:
        if source is not None:
            source.close()
    if profile is not None:
        for line in check_lines(profile, enrolled, clf):
            say(line)
        return
    t1 = time.perf_counter()
    profile = fit_profile(enrolled, clf.classes, clf.contract.embedding, clf.sha256, method=method)
    fit_s = time.perf_counter() - t1
    profile.save(out)
    c = profile.check
    missing = [x for x in letters if x not in profile.classes]
    say(f"profile {out}: {len(profile.classes)} letters, {len(enrolled.labels)} frames (recorded in "
        f"{t1 - t0:.0f} s, fitted in {fit_s:.2f} s), {out.stat().st_size / 1e3:.0f} kB; its own check on the last "
        f"quarter of each letter's frames ({c['frames']}): top-1 model {c['model_top1']:.1%}, with the profile "
        f"{c['profile_top1']:.1%}" + (f"; not enrolled (the model alone): {', '.join(missing)}" if missing else ""))
    say(f"next: asl-run --camera 0 --profile {out}" + (f" --model {model}" if model else ""))


if __name__ == "__main__":
    main()
