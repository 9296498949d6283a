"""asl-capture: record your own hand, letter by letter, into the Kaggle folder layout, so
`asl-train --data my_hand/ --init CKPT` can adapt a model to it."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click
import cv2

from .camera import GuideBox, open_source
from .contract import KAGGLE_CLASSES
from asl_edge.common.errors import UserError, cli_errors, command, say
from asl_edge.common.fileio import ensure_dir, write_error
from .hands import HandFinder, HandRoi
from .overlay import display_unavailable_reason
from .options import FiniteFloat

log = logging.getLogger(__spec__.name)  # its package name also when run with python -m


def _next_index(folder: Path, cls: str) -> int:
    """Continue numbering after earlier sessions instead of overwriting them."""
    nums = [int(p.stem.rsplit("_", 1)[-1]) for p in folder.glob(f"{cls}_capture_*.jpg")
            if p.stem.rsplit("_", 1)[-1].isdigit()]
    return max(nums, default=0) + 1


def _save_new_jpeg(folder: Path, cls: str, image_bgr) -> Path:
    """OUT/<CLASS>/<CLASS>_capture_NNNN.jpg under the next free number. The name is claimed with a hard
    link, which fails on an existing file, so two captures into one folder never overwrite each other."""
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise UserError(f"could not encode a frame for {folder}")
    tmp = folder / f".{cls}_capture.{os.getpid()}.tmp"
    try:
        tmp.write_bytes(buf.tobytes())
        index = _next_index(folder, cls)
        while True:
            path = folder / f"{cls}_capture_{index:04d}.jpg"
            try:
                os.link(tmp, path)
                return path
            except FileExistsError:
                index += 1
    except OSError as e:
        raise write_error(folder, e) from None
    finally:
        tmp.unlink(missing_ok=True)


def _prompt(frame, box, text, sub):
    x0, y0, x1, y1 = box
    cv2.rectangle(frame, (x0, y0), (x1, y1), (0, 200, 255), 2)
    cv2.putText(frame, text, (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (0, 200, 255), 2, cv2.LINE_AA)
    cv2.putText(frame, sub, (10, 75), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
    return frame


def region(roi: GuideBox | HandRoi, frame):
    """(box, ok to save): the found hand's square (saved only when the hand is in this frame), or
    the fixed guide box (always saved)."""
    r = roi.region(frame)
    return r.box, r.found is None or r.hand is not None


def capture(source, out: Path, classes, per_class: int, countdown: float, interval: float,
            roi: GuideBox | HandRoi, window=None) -> dict:
    """For each class: a countdown to get the sign ready, then `per_class` crops of the found hand
    (or the fixed guide box), `interval` seconds apart (source time: video time for files, wall
    time for cameras). With hand finding, frames where no hand is found are not saved."""
    saved = {c: 0 for c in classes}
    queue = list(classes)
    phase_start, last_save, announced = None, None, None
    while queue:
        item = source.read()
        if item is None:
            break
        frame, t = item
        cls = queue[0]
        if announced != cls:
            log.info(f"{cls}: make the sign for '{cls}' inside the box ({countdown:g} s to get ready)")
            announced, phase_start, last_save = cls, t, None
        box, hand_ok = region(roi, frame)
        ready = t - phase_start >= countdown
        if ready and hand_ok and (last_save is None or t - last_save >= interval):
            folder = out / cls
            ensure_dir(folder)
            x0, y0, x1, y1 = box
            _save_new_jpeg(folder, cls, frame[y0:y1, x0:x1])
            saved[cls] += 1
            last_save = t
            if saved[cls] >= per_class:
                log.info(f"{cls}: saved {saved[cls]} images in {out / cls}")
                queue.pop(0)
        if window is not None:
            left = max(0.0, countdown - (t - phase_start))
            sub = f"get ready: {left:.1f} s" if not ready else f"recording {saved[cls]}/{per_class}"
            if not hand_ok:
                sub += "  (no hand found: show your hand)"
            if not window.show(_prompt(frame.copy(), box, f"Sign: {cls}", sub + "   (q quits)")):
                break
    return saved


def _remove_empty(folder: Path):
    """Remove `folder` and its class folders where they hold nothing (this run made them)."""
    for sub in [*sorted(folder.glob("*/")), folder]:
        try:
            sub.rmdir()  # only ever succeeds on an empty folder
        except OSError:
            pass


@command()
@click.option("-c", "--camera", default="0", show_default=True, help="Camera index, video file, URL or picam.")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Folder to fill: OUT/<CLASS>/*.jpg")
@click.option("--classes", default=",".join(KAGGLE_CLASSES), show_default=False,
              help="Comma list of classes to record, in order (default: all 29).")
@click.option("--per-class", default=20, show_default=True, type=click.IntRange(1))
@click.option("--countdown", default=3.0, show_default=True, type=FiniteFloat(0), help="Seconds before recording each class.")
@click.option("--interval", default=0.15, show_default=True, type=FiniteFloat(0), help="Seconds between saved frames.")
@click.option("--roi", default="hand", show_default=True,
              help="'hand': save the square around the found hand (the framing asl-run classifies; frames "
                   "without a hand are not saved). Or a fixed guide box: fraction of the shorter side, full, or x,y,w,h.")
@click.option("--no-display", is_flag=True, help="Print prompts instead of opening a window.")
@cli_errors
def main(camera, out, classes, per_class, countdown, interval, roi, no_display):
    """Guide a signer through the letters and save crops of the hand in the Kaggle layout."""
    wanted = list(dict.fromkeys(c.strip() for c in classes.split(",") if c.strip()))  # A,A,A is A once
    bad = [c for c in wanted if c not in KAGGLE_CLASSES]
    if bad or not wanted:
        raise UserError(f"unknown class(es) {', '.join(bad) or '(none given)'}: use names from {', '.join(KAGGLE_CLASSES)}")
    if str(roi).strip().lower() == "hand":
        box = HandRoi(HandFinder(video=True, landmark_model="lite"), GuideBox(), keep=0)
    else:
        box = GuideBox.parse(roi)
    made = not Path(out).exists()
    ensure_dir(out, "--out")  # a file in the way, or a read-only place, fails before the camera opens
    source = window = None
    try:
        source = open_source(camera)
        reason = "--no-display" if no_display else display_unavailable_reason()
        if reason is None:
            from .overlay import Window
            window = Window()
        else:
            print(f"no window ({reason}); prompts go to the terminal", file=sys.stderr)
        saved = capture(source, Path(out), wanted, per_class, countdown, interval, box, window)
    finally:
        if source is not None:
            source.close()
        if window is not None:
            window.close()
        if made:
            _remove_empty(Path(out))  # a run that saved nothing (no camera, say) leaves no folder behind
    done = [c for c in wanted if saved[c] >= per_class]
    say(f"summary: {sum(saved.values())} images saved in {out} for {len(done)}/{len(wanted)} classes")
    if len(done) < len(wanted):
        missing = [c for c in wanted if saved[c] < per_class]
        say(f"warning: the source ended before {', '.join(missing)} were complete; run again to add more"
              + (" (only frames where a hand was found are saved)" if isinstance(box, HandRoi) else ""),
              file=sys.stderr)
    say(f"next: asl-train --data {out} --init CKPT --epochs 5 --out runs/my_hand")


if __name__ == "__main__":
    main()
