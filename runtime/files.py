"""Files mode: classify images, folders of images (recursive) and video frames, in batches."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2

from .camera import VIDEO_EXTENSIONS
from .contract import IMAGE_EXTENSIONS, bgr_to_rgb, read_rgb
from asl_edge.common.errors import UserError, say
from .hands import crop_box
from .landmarks import of_hand, stack
from asl_edge.common.fileio import json_text
from asl_edge.common.native_stderr import quiet_native_stderr


@dataclass(frozen=True)
class Input:
    path: Path
    kind: str       # "image" or "video"
    direct: bool    # named on the command line (errors stop the run) or found in a folder (skipped)


@dataclass
class Item:
    name: str
    rgb: object
    true: str | None
    frame: int | None = None
    hand: tuple | None = None  # square (x, y, w, h) that was classified, with --roi hand
    landmarks: object = None   # the hand's landmark row (runtime/landmarks.py), with --roi hand


def collect_inputs(raw_inputs) -> list[Input]:
    """Expand folders; check every path named directly before any work starts."""
    found = []
    for raw in raw_inputs:
        path = Path(raw)
        if not path.exists():
            raise UserError(f"input not found: {path}")
        if path.is_dir():
            inside = [Input(f, _kind(f), False) for f in sorted(path.rglob("*")) if f.is_file() and _kind(f)]
            if not inside:
                raise UserError(f"no images or videos found in folder {path}")
            found += inside
            continue
        kind = _kind(path)
        if not path.is_file():
            raise UserError(f"not a regular file: {path} (a pipe, socket or device); give image or video files")
        if kind is None:
            raise UserError(f"unsupported file type {path.suffix or '(no extension)'}: {path}; "
                            f"expected an image ({' '.join(IMAGE_EXTENSIONS)}), a video "
                            f"({' '.join(VIDEO_EXTENSIONS)}) or a folder")
        found.append(Input(path, kind, True))
    return found


def _kind(path: Path) -> str | None:
    ext = path.suffix.lower()
    return "image" if ext in IMAGE_EXTENSIONS else "video" if ext in VIDEO_EXTENSIONS else None


def true_label(path: Path, classes) -> str | None:
    """The parent folder's name when it is one of the model's classes (dataset layout)."""
    folder = path.parent.name
    if folder in classes:
        return folder
    matches = [c for c in classes if c.lower() == folder.lower()]
    return matches[0] if len(matches) == 1 else None


def warn(msg: str):
    say(f"warning: {msg}", file=sys.stderr)


class FilesRun:
    """Reads inputs, classifies them in batches and prints one line (or JSON line) each."""

    def __init__(self, clf, *, top_k=3, as_json=False, batch_size=16, every=1, max_frames=None, out=None,
                 finder=None):
        self.clf, self.k, self.as_json = clf, min(top_k, len(clf.classes)), as_json
        self.finder = finder  # a hands.HandFinder: classify the hand's square (whole image when none)
        self.hands_found = 0
        self.hand_seconds = 0.0
        self.batch_size, self.every, self.max_frames = batch_size, every, max_frames
        self.out = out or sys.stdout
        self.count = self.frames = self.skipped = self.labelled = self.correct = self.agreeing = 0
        self.model_seconds = 0.0       # onnxruntime only
        self.preprocess_seconds = 0.0  # crop, resize, normalise

    def items(self, inputs):
        for inp in inputs:
            true = true_label(inp.path, self.clf.classes)
            if inp.kind == "video":
                yield from self._video_items(inp, true)
                continue
            try:
                rgb = read_rgb(inp.path)  # decoder noise is silenced there; the summary counts skips
            except UserError as e:
                if inp.direct:
                    raise
                warn(f"skipped {e}")
                self.skipped += 1
                continue
            yield Item(str(inp.path), rgb, true)

    def _video_items(self, inp, true):
        with quiet_native_stderr():
            cap = cv2.VideoCapture(str(inp.path))
        try:
            if not cap.isOpened():
                if inp.direct:
                    raise UserError(f"cannot open video file {inp.path}: unsupported format or corrupt")
                warn(f"skipped video {inp.path}: cannot open it")
                self.skipped += 1
                return
            index = taken = 0
            while self.max_frames is None or taken < self.max_frames:
                ok, frame = cap.read()
                if not ok:
                    break
                if index % self.every == 0:
                    taken += 1
                    yield Item(str(inp.path), bgr_to_rgb(frame), true, index)
                index += 1
            if index == 0:
                if inp.direct:
                    raise UserError(f"video {inp.path} has no readable frames: empty or corrupt; "
                                    "re-encode it or pass another file")
                warn(f"skipped video {inp.path}: no readable frames")
                self.skipped += 1
        finally:
            cap.release()

    def run(self, inputs):
        t0 = time.perf_counter()
        batch = []
        for item in self.items(inputs):
            batch.append(item)
            if len(batch) == self.batch_size:
                self._classify(batch)
                batch = []
        if batch:
            self._classify(batch)
        self.seconds = time.perf_counter() - t0

    def _crop_hands(self, batch) -> list:
        if self.finder is None:
            return [it.rgb for it in batch]
        t0 = time.perf_counter()
        crops = []
        for it in batch:
            found = self.finder.locate(it.rgb)
            if found is None:
                crops.append(it.rgb)
                continue
            it.hand = found.square
            if getattr(self.clf, "uses_landmarks", False):
                it.landmarks = of_hand(found.hand)
            self.hands_found += 1
            crops.append(crop_box(it.rgb, found.square))
        self.hand_seconds += time.perf_counter() - t0
        return crops

    def _classify(self, batch):
        images = self._crop_hands(batch)
        t0 = time.perf_counter()
        x = self.clf.contract.preprocess_batch(images)
        t1 = time.perf_counter()
        scores = self.clf.classify(x, stack([it.landmarks for it in batch], len(batch)))
        probs, agree = scores.probs, scores.agreement
        self.preprocess_seconds += t1 - t0
        self.model_seconds += time.perf_counter() - t1
        for it, row, agrees in zip(batch, probs, agree):
            top = self.clf.top_k(row, self.k)
            label, prob = top[0]
            self.count += 1
            self.agreeing += bool(agrees)
            self.frames += it.frame is not None
            if it.true is not None:
                self.labelled += 1
                self.correct += label == it.true
            self._print(it, label, prob, top, bool(agrees))

    def _print(self, it, label, prob, top, agree=True):
        if self.as_json:
            rec = {"file": it.name, "label": label, "prob": round(prob, 6),
                   "top_k": [[name, round(p, 6)] for name, p in top]}
            if it.frame is not None:
                rec["frame"] = it.frame
            if it.true is not None:
                rec["true"] = it.true
            if self.finder is not None:
                rec["hand"] = None if it.hand is None else [int(v) for v in it.hand]
            if self.clf.contract.agreement:
                rec["agree"] = agree
            print(json_text(rec), file=self.out, flush=True)
            return
        name = it.name if it.frame is None else f"{it.name}[{it.frame}]"
        tops = ", ".join(f"{n} {p:.3f}" for n, p in top)
        hand = "" if self.finder is None else (
            "  no hand (whole image)" if it.hand is None else "  hand " + ",".join(str(int(v)) for v in it.hand))
        verdict = "" if it.true is None else f"  true {it.true} {'ok' if label == it.true else 'WRONG'}"
        differ = "" if agree else "  (image and hand shape differ)"
        say(f"{name}  {label} {prob:.3f}  top{self.k}: {tops}{hand}{differ}{verdict}", file=self.out)

    def summary_lines(self) -> list[str]:
        secs = max(self.seconds, 1e-9)
        ms = 1000 * self.model_seconds / max(self.count, 1)
        pre_ms = 1000 * self.preprocess_seconds / max(self.count, 1)
        what = f"{self.count} images" + (f" ({self.frames} of them video frames)" if self.frames else "")
        lines = [f"summary: {what} in {self.seconds:.2f} s ({self.count / secs:.1f} img/s end-to-end, "
                 f"model {ms:.2f} ms/img in batches of up to {self.batch_size}, "
                 f"+{pre_ms:.2f} ms preprocess); "
                 f"skipped {self.skipped} unreadable"]
        if self.finder is not None:
            lines.append(f"hands: found in {self.hands_found}/{self.count} images by {self.finder.name} "
                         f"({1000 * self.hand_seconds / max(self.count, 1):.1f} ms/img); "
                         "the whole image was classified where none was found")
        if self.clf.contract.agreement:
            lines.append(f"agreement: image and hand shape name the same class on {self.agreeing}/{self.count} "
                         "images (the speller accepts only those)")
        if self.labelled:
            lines.append(f"accuracy: {self.correct / self.labelled:.4f} "
                         f"({self.correct}/{self.labelled} images in class-named folders)")
        return lines
