"""asl-run: classify images, folders and videos, or spell from a camera, with an asl-edge ONNX model.

Torch-free on purpose: this is what runs on a Raspberry Pi (onnxruntime, numpy, OpenCV, click).
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import cv2

from asl_edge.common import limits
from .camera import DEFAULT_TIMEOUT_S, GuideBox, open_source
from asl_edge.common.errors import UserError, cli_errors, command, say
from .files import FilesRun, collect_inputs
from .contract import CROP_MARGIN
from .hands import LANDMARK_MODELS, HandFinder, HandRoi, default_landmark_model
from asl_edge.common.cpu import int8_isa
from .live import LoopThreads, run_live, summary_line
from .model import OnnxClassifier
from .overlay import Window, display_unavailable_reason
from .spelling import DECODERS, EvidenceSpeller, Hold, make_speller
from .options import FiniteFloat

log = logging.getLogger(__spec__.name)  # its package name also when run with python -m


def load_model(model, provider, threads, roi="hand", profile=None, take_turns=False) -> tuple[OnnxClassifier, float]:
    clf = OnnxClassifier(model, provider=provider, threads=threads, take_turns=take_turns)
    if profile is not None:
        p = clf.use_profile(profile)
        log.info(f"profile {profile}: {len(p.classes)} letters enrolled ({''.join(c for c in p.classes if len(c) == 1)}); "
                 "the others and frames without a hand keep the model's scores")
    if clf.uses_landmarks and not wants_hand(roi):
        log.info(f"note: {clf.path.name} also reads the hand's landmarks, which only --roi hand finds; "
                 "with this --roi it classifies from the image alone")
    first = clf.warmup()  # the first run pays for graph optimisation; keep it out of the timings
    return clf, first


def describe_model(clf, first) -> str:
    c = clf.contract
    lm = " + hand landmarks" if c.landmarks else ""
    return (f"model {clf.path}: {c.num_classes} classes, {c.input_size}px {c.input_format} input{lm}, "
            f"on {clf.providers[0]} ({int8_isa()}); load {1000 * clf.load_seconds:.0f} ms, first inference {1000 * first:.1f} ms")


@command()
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--model", "-m", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="ONNX model made by asl-export (default: the shipped model).")
@click.option("--camera", "-c", default=None, metavar="INDEX|PATH|URL|picam",
              help="Camera mode: a camera index, a video file (read frame by frame), a stream URL, "
                   "or picam. Default when no INPUTS are given: 0.")
@click.option("--provider", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="onnxruntime execution provider of the classifier and the hand finder; auto uses CUDA when available.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="onnxruntime intra-op threads (default: onnxruntime's choice; capped at 4 per core). Camera mode "
                   "with the hand finder: the loop's threads (default: the cores, at most 4), which the hand "
                   "finder and the classifier take in turns, or with overlap one for the hand finder and the "
                   "rest for the classifier.")
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (summary goes to stderr).")
@click.option("--no-display", is_flag=True, help="Camera mode: never open a window; print to the terminal.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None,
              help="Stop after N frames (camera mode; in files mode, per video).")
@click.option("--every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Files mode: classify every Nth frame of a video.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Files mode: images per onnxruntime call.")
@click.option("--decoder", type=click.Choice(DECODERS), default="evidence", show_default=True,
              help="Spelling: 'evidence' types the letter whose mean probability over the last --hold passes "
                   "--threshold with --margin over the runner-up; 'hold' (the earlier rule) types a letter that "
                   "stays top-1 above --threshold for --hold on frames where the model's two classifiers agree. "
                   "benchmarks/RESULTS.md, \"The decoder on the shipped recipe's folds\".")
@click.option("--hold", default=None, show_default="0.9s for evidence, 0.6s for hold",
              help="Spelling: how long a letter must be shown: frames (8) or seconds (0.6s).")
@click.option("--threshold", type=FiniteFloat(0, 1), default=None,
              show_default="the decoder's own: 0.6 for evidence, 0.7 for hold",
              help="Spelling: minimum (mean) probability for a letter to count.")
@click.option("--margin", type=FiniteFloat(0, 1), default=None, show_default="0.3",
              help="Spelling with --decoder evidence: how far the letter's mean must lead the runner-up's.")
@click.option("--slide", type=FiniteFloat(0, 10), default=None, show_default="0: off",
              help="Spelling with --decoder evidence: a doubled letter (LL) is typed again when the hand slides this "
                   "many hand sizes (wrist to middle knuckle) aside and holds it there; 0: never.")
@click.option("--agreement/--no-agreement", "require_agreement", default=None,
              show_default="the decoder's own: asked by hold, not by evidence",
              help="Spelling with a landmark model: with --agreement, frames where its image and hand-shape "
                   "classifiers name different letters are skipped by --decoder hold and count half in "
                   "--decoder evidence's mean; with --no-agreement every frame counts fully.")
@click.option("--roi", default="hand", show_default=True,
              help="What to classify. 'hand': find the hand (shipped ONNX hand models, onnxruntime only) "
                   "and classify a square around it; when none is found, the 0.6 guide box (camera mode) "
                   "or the whole image (files mode). Or a fixed guide box: a centred square as a fraction "
                   "of the shorter side, 'full', or pixels x,y,w,h (camera mode; files mode then "
                   "classifies whole images).")
@click.option("--hand-model", type=click.Choice(sorted(LANDMARK_MODELS)), default=None,
              help="Hand landmark model for --roi hand: full (MediaPipe's default), lite (faster; hand boxes as "
                   "good, landmarks less so), or full-int8 (full quantized: faster, as close to full as full is to "
                   "itself; benchmarks/RESULTS.md, \"INT8 hands: the float model's own drift\"). Default: full in "
                   "files mode; in camera mode full-int8, or lite for an image-only model.")
@click.option("--zoom/--no-zoom", default=True, show_default=True,
              help="--roi hand: when the whole frame shows no hand, search overlapping squares of it for a "
                   "small, far one (files: all of them; camera: one per frame, in turn). --no-zoom: the whole "
                   "frame only, faster on frames without a hand.")
@click.option("--timeout", type=FiniteFloat(0.1, 600), default=DEFAULT_TIMEOUT_S, show_default=True,
              help="Camera mode: seconds to wait for a stream to open and for each frame; a stalled "
                   "stream then ends the run with its summary.")
@click.option("--max-megapixels", type=FiniteFloat(0, limits.LIMIT_CEILING, min_open=True), default=None,
              help=f"Refuse images with more pixels (default {limits.DEFAULT_MAX_MEGAPIXELS:g}, "
                   f"or ${limits.MAX_PIXELS_ENV}); checked from the header before decoding.")
@click.option("--profile", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A personal profile made by asl-enroll for this model: fused with its scores on frames with a hand.")
@click.option("--overlap/--no-overlap", default=None,
              help="Camera mode with --roi hand: find the hand in the next frame on a thread of its own while "
                   "this one is classified (more frames per second; each result comes one frame later). Default: "
                   "on for a video file with 2 or more CPU cores, off for a live camera (a Pi's choice: --overlap).")
@cli_errors
def cli(inputs, model, camera, provider, threads, top_k, as_json, no_display, max_frames, every,
        batch_size, hold, threshold, roi, hand_model, zoom, timeout, max_megapixels, require_agreement=None,
        decoder="evidence", margin=None, profile=None, overlap=None, slide=None):
    """Classify INPUTS (images, folders, videos), or spell from --camera.

    In files mode, images inside a folder named after a class (A/, B/, space/ ...) are
    scored: the summary then includes accuracy. In camera mode, press q to quit and c to
    clear the text; headless, stop with Ctrl-C or --max-frames.
    """
    if inputs and camera is not None:
        raise UserError("give either INPUTS (files mode) or --camera (camera mode), not both")
    limits.set_max_megapixels(max_megapixels)
    opts = RunOptions(model=model, provider=provider, threads=limits.cap_threads(threads), top_k=top_k,
                      as_json=as_json, no_display=no_display, max_frames=max_frames, every=every,
                      batch_size=batch_size, hold=hold, threshold=threshold, roi=roi, timeout=timeout,
                      hand_model=hand_model, zoom=zoom, require_agreement=require_agreement, decoder=decoder,
                      margin=margin, profile=profile, overlap=overlap, slide=slide)
    if inputs:
        run_files(inputs, opts)
    else:
        if camera is None:
            log.info("no INPUTS given: opening camera 0 (see --camera)")
            camera = "0"
        run_camera(camera, opts)


@dataclass(frozen=True)
class RunOptions:
    """asl-run's settings, as given on the command line, for both modes."""
    model: Path | None = None
    provider: str = "auto"
    threads: int | None = None
    top_k: int = 3
    as_json: bool = False
    no_display: bool = False
    max_frames: int | None = None
    every: int = 1
    batch_size: int = 16
    hold: str | None = None         # None: the decoder's own
    threshold: float | None = None
    decoder: str = "evidence"
    margin: float | None = None
    slide: float | None = None      # None: the decoder's own
    roi: str = "hand"
    # the landmark model of --roi hand; None: full in files mode; in camera mode full for a model that
    # reads landmarks (it was trained on full's), else lite (about half the time per frame)
    hand_model: str | None = None
    zoom: bool = True  # the hand finder's zoomed search for small, far hands (runtime/hands/)
    timeout: float = DEFAULT_TIMEOUT_S
    require_agreement: bool | None = None  # None: the decoder's own (spelling.make_speller)
    profile: Path | None = None  # asl-enroll's personal profile
    overlap: bool | None = None     # camera mode: None = on for a video file with 2+ cores (camera_overlap)

    @property
    def out(self):
        """Summary lines go to stderr when stdout carries JSON lines."""
        return sys.stderr if self.as_json else sys.stdout


def wants_hand(roi) -> bool:
    return str(roi).strip().lower() == "hand"


def parse_region(roi, hand_model="full", provider="cpu", zoom=True, margin=CROP_MARGIN,
                 threads: LoopThreads = LoopThreads(None, 1)) -> GuideBox | HandRoi:
    """--roi -> the fixed guide box, or the hand finder (cropping with the model's `margin`, on the loop's
    `threads`) that falls back to the default guide box."""
    if wants_hand(roi):
        return HandRoi(HandFinder(margin, video=True, landmark_model=hand_model, provider=provider, zoom=zoom,
                                  threads=threads.hand, take_turns=threads.take_turns),
                       GuideBox())
    try:
        return GuideBox.parse(roi)
    except UserError as e:
        raise UserError(f"{e}; or 'hand' to find the hand") from None


def run_files(inputs, opts: RunOptions):
    found = collect_inputs(inputs)  # bad paths fail before the model loads
    if not wants_hand(opts.roi):
        parse_region(opts.roi)  # a bad value fails in one line, before the model loads
    clf, first = load_model(opts.model, opts.provider, opts.threads, opts.roi, opts.profile)
    finder = (HandFinder(clf.contract.crop_margin, video=False, landmark_model=opts.hand_model or "full",
                         provider=opts.provider, zoom=opts.zoom) if wants_hand(opts.roi) else None)
    run = FilesRun(clf, top_k=opts.top_k, as_json=opts.as_json, batch_size=opts.batch_size, every=opts.every,
                   max_frames=opts.max_frames, finder=finder)
    run.run(found)
    # Reported at the end, so a bad file named on the command line still fails in one line.
    for line in [describe_model(clf, first)] + run.summary_lines():
        say(line, file=opts.out)


def run_camera(camera, opts: RunOptions):
    try:
        speller = make_speller(opts.decoder, opts.threshold, Hold.parse(opts.hold) if opts.hold else None,
                               opts.require_agreement, opts.margin, slide=opts.slide)
    except ValueError as e:
        raise UserError(f"--hold: {e}") from None
    if not wants_hand(opts.roi):
        parse_region(opts.roi)  # a bad value fails in one line, before the camera opens
    run_camera_source(camera, opts, speller)


def camera_hand_model(opts: RunOptions, clf) -> str:
    return opts.hand_model or default_landmark_model(clf.uses_landmarks)


def camera_overlap(opts: RunOptions, live: bool) -> bool:
    """--overlap, else on for a video file with two or more cores and the hand finder (a first stage to
    overlap). A video file is read frame by frame, so only throughput counts; from a live camera, overlap
    adds a few ms of latency where the loop keeps up (benchmarks/RESULTS.md, "Overlap")."""
    if not wants_hand(opts.roi):
        return False
    if opts.overlap is not None:
        return opts.overlap
    cores = os.cpu_count() or 1
    # --threads taking every core leaves the hand finder none to overlap on: they would only contend
    return not live and cores >= 2 and (opts.threads is None or opts.threads < cores)


def run_camera_source(camera, opts: RunOptions, speller):
    source = open_source(camera, opts.timeout)  # before the model: a wrong --camera fails at once, in one line
    guide = None
    overlap = camera_overlap(opts, source.live)
    threads = LoopThreads.plan(opts.threads, overlap) if wants_hand(opts.roi) else LoopThreads(opts.threads, 1)
    try:
        clf, first = load_model(opts.model, opts.provider, threads.classifier, opts.roi, opts.profile,
                                threads.take_turns)
        log.info(describe_model(clf, first))
        guide = parse_region(opts.roi, camera_hand_model(opts, clf), opts.provider, opts.zoom, clf.contract.crop_margin,
                             threads)
        window = open_window(opts.no_display)
        log.info(f"reading {source.name}" + (" (newest frame only)" if source.live else " (every frame)") +
                 f"; {describe_speller(speller)}")
        if isinstance(guide, HandRoi):
            log.info(f"finding the hand with {guide.finder.name}; the {guide.fallback.fraction:g} guide box "
                     f"when none is found; {threads.describe()}" + (", overlapped" if overlap else ""))
        try:
            stats = run_live(clf, source, speller, guide, top_k=opts.top_k, window=window,
                             max_frames=opts.max_frames, as_json=opts.as_json, overlap=overlap)
        finally:
            if window is not None:
                window.close()
    finally:
        if isinstance(guide, HandRoi):
            guide.close()
        source.close()
    say(summary_line(stats, first, source.dropped, speller.text), file=opts.out)
    if stats.error is not None:  # a stalled stream: summary and text first, then one error line
        raise stats.error
    if stats.frames == 0 and not stats.interrupted:
        raise UserError(f"{source.name} gave no frames (an empty or unreadable video, or a stream that "
                        "ended at once); check it, or try another --camera")


def describe_speller(speller) -> str:
    if isinstance(speller, EvidenceSpeller):
        return (f"decoder evidence: mean over {speller.hold}, threshold {speller.threshold:g}, margin {speller.margin:g}"
                f", disagreeing frames weigh {speller.disagree_weight:g}"
                + (f", a letter typed again after a {speller.slide:g} hand-size slide" if speller.slide else ""))
    return (f"decoder hold: {speller.hold}, threshold {speller.threshold:g}"
            + ("" if speller.require_agreement else ", agreement not required"))


def open_window(no_display) -> Window | None:
    if no_display:
        log.info("display off (--no-display): printing predictions; stop with Ctrl-C or --max-frames")
        return None
    reason = display_unavailable_reason()
    if reason:
        log.info(f"no window: {reason}; printing predictions instead")
        return None
    return Window()


@cli_errors
def main(argv=None):
    # Keep OpenCV's own logging to real errors; UserError lines are the user-facing messages.
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:  # builds without the logging bindings
        pass
    cli.main(args=argv, prog_name="asl-run")


if __name__ == "__main__":
    main()
