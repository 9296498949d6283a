"""Made sequences of held letters from recordings of one person (one video per letter), for the
stranger speller benchmark (benchmarks/speller.py): each letter held as a run of consecutive frames
of its video, letters in a random order, some doubled, joined by a short cross-fade. A doubled letter's
second hold can be slid aside (`slide`), as a person signs LL: the frame moves sideways over the transition."""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from asl_edge.runtime.camera import VIDEO_EXTENSIONS, video_frames
from asl_edge.common.errors import UserError

FPS = 30.0  # the recordings' nominal rate: hold times in seconds are video time at this rate


@dataclass(frozen=True)
class Held:
    letter: str
    video: str
    start: int
    count: int
    shift: float = 0.0  # sideways, a fraction of the frame's width (the second of a doubled letter, slid aside)


def person_videos(folder: Path) -> dict:
    """{letter: video path} of one person's recordings."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"recordings folder not found: {folder}")
    found = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
            letter = p.stem if p.parent == folder else p.parent.name
            if len(letter) == 1 and letter.isalpha():
                found.setdefault(letter.upper(), p)
    if not found:
        raise UserError(f"{folder}: no letter videos (expected A.mp4 ... or A/*.mp4)")
    return found


def read_video(path) -> list:
    frames = video_frames(path)
    if not frames:
        raise UserError(f"{path}: no readable frame")
    return frames


def plan_sequence(lengths: dict, videos: dict, rng: random.Random, hold_frames: int, doubles: int,
                  slide: float = 0.0) -> list:
    """Every letter once in a random order, `doubles` of them signed twice in a row, the second time
    `slide` of the frame's width aside (right and left in turn)."""
    letters = sorted(lengths)
    rng.shuffle(letters)
    twice = set(rng.sample(letters, min(doubles, len(letters))))
    plan = []
    for letter in letters:
        for again in range(2 if letter in twice else 1):
            n = lengths[letter]
            count = min(hold_frames, n)
            start = rng.randrange(0, n - count + 1)
            shift = slide * (-1) ** sum(h.shift != 0 for h in plan) if again else 0.0
            plan.append(Held(letter, str(videos[letter]), start, count, shift))
    return plan


def plan_word(word: str, lengths: dict, videos: dict, hold_frames: int) -> list:
    """The letters of `word` in order, each from the middle of its video (doubled letters from
    its first and last part, so the two are not the same frames)."""
    plan = []
    for i, letter in enumerate(word.upper()):
        if letter not in lengths:
            raise UserError(f"no video of the letter {letter}")
        n = lengths[letter]
        count = min(hold_frames, n)
        repeat = i > 0 and word.upper()[i - 1] == letter
        start = (n - count) if repeat else (0 if i + 1 < len(word) and word.upper()[i + 1] == letter else (n - count) // 2)
        plan.append(Held(letter, str(videos[letter]), start, count))
    return plan


def shifted(frame, shift: float):
    """The frame moved sideways by `shift` of its width (edges repeated)."""
    if not shift:
        return frame
    h, w = frame.shape[:2]
    return cv2.warpAffine(frame, np.float32([[1, 0, shift * w], [0, 1, 0]]), (w, h), borderMode=cv2.BORDER_REPLICATE)


class SequenceSource:
    """The planned held letters as a video file source for run_live (every frame, video time).
    .truth[i] is frame i's letter, None on the cross-fades between letters."""

    live = False
    dropped = 0

    def __init__(self, plan: list, frames: dict, transition: int, name: str):
        self.name, self.truth = name, []
        self._frames = self._build(plan, frames, transition)
        self._i = 0
        self.fps = FPS

    def _build(self, plan, frames, transition):
        seq = []
        for k, h in enumerate(plan):
            clip = [shifted(f, h.shift) for f in frames[h.letter][h.start:h.start + h.count]]
            if k and transition:
                a, b = seq[-1][0], clip[0]
                move = h.shift - plan[k - 1].shift  # a slide: both ends of the fade travel with the hand
                if a.shape == b.shape:
                    for t in range(1, transition + 1):
                        u = t / (transition + 1)
                        seq.append((cv2.addWeighted(shifted(a, move * u), 1 - u, shifted(b, -move * (1 - u)), u, 0),
                                    None))
            seq += [(f, h.letter) for f in clip]
        self.truth = [t for _, t in seq]
        return [f for f, _ in seq]

    def read(self):
        if self._i >= len(self._frames):
            return None
        self._i += 1
        return self._frames[self._i - 1], (self._i - 1) / self.fps

    def close(self):
        pass


def person_sequences(folder: Path, seed: int, sequences: int, hold_s: float, transition_s: float, doubles: int,
                     letters: str = "", part: tuple = (0.0, 1.0), slide: float = 0.0):
    """[(SequenceSource, signed letters)] for one person: the same plans for every model and decoder.
    part: the fractions of each video's length its frames are taken from (enrollment tests on the part
    its profile never saw)."""
    videos = person_videos(folder)
    if letters:
        videos = {c: p for c, p in videos.items() if c in letters.upper()}
        if not videos:
            raise UserError(f"{folder}: no videos of the letters {letters}")
    frames = {c: read_video(p) for c, p in videos.items()}
    frames = {c: f[round(part[0] * len(f)):max(round(part[1] * len(f)), round(part[0] * len(f)) + 1)]
              for c, f in frames.items()}
    rng = random.Random(f"{seed}:{folder.name}")
    out = []
    for k in range(sequences):
        plan = plan_sequence({c: len(f) for c, f in frames.items()}, videos, rng, round(hold_s * FPS), doubles, slide)
        src = SequenceSource(plan, frames, round(transition_s * FPS), f"{folder.name} sequence {k}")
        out.append((src, [h.letter for h in plan]))
    return out
