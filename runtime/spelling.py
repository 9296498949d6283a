"""Fingerspelling to text: turn a stream of per-frame predictions into typed characters.

Two decoders, both fed one frame's class probabilities at a time (update_probs):
- EvidenceSpeller (the default, `--decoder evidence`): the calibrated probabilities averaged over a
  sliding window; a letter is typed when its mean passes a threshold with a margin over the
  runner-up, so a letter the classifier mostly gets right is typed even when some frames flicker.
  A frame where the model's two classifiers disagree can be made to count less (`--agreement`).
- Speller (`--decoder hold`, the earlier rule), described next.

A letter is accepted when it stays top-1 above a probability threshold for a hold time
(frames or seconds). After that it is blocked until re-armed, so a held hand types one
letter, not one per frame; re-arming takes a gap (another label, `nothing`, or low
confidence) lasting a fraction of the hold, so a one-frame flicker does not double it.
`space` types a space, `del` deletes the last character, `nothing` never types.
J and Z, which are motions, come from runtime/motion.py through type_motion().
Pure Python so it is unit-tested without a model or a camera.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

SPACE, DELETE, NOTHING = "space", "del", "nothing"


@dataclass(frozen=True)
class Hold:
    """A duration in frames or in seconds ("8" = 8 frames, "0.6s" = 0.6 seconds)."""

    amount: float
    unit: str = "frames"  # "frames" or "seconds"

    @classmethod
    def parse(cls, text) -> "Hold":
        s = str(text).strip().lower()
        try:
            if s.endswith("s"):
                value, unit = float(s[:-1]), "seconds"
            else:
                value, unit = int(s), "frames"
        except ValueError:
            raise ValueError(f"bad hold {text!r}: use a frame count like 8 or seconds like 0.6s") from None
        if not 0 < value < float("inf"):  # also rejects nan, which never compares true
            raise ValueError(f"bad hold {text!r}: must be a positive, finite number")
        return cls(value, unit)

    def __str__(self):
        return f"{self.amount:g}s" if self.unit == "seconds" else f"{int(self.amount)} frames"


class Speller:
    """Feed it one (label, prob) per frame with update(); read .text."""

    def __init__(self, threshold: float = 0.7, hold: Hold | str = "0.6s", rearm: Hold | str | None = None,
                 require_agreement: bool = True):
        self.threshold = float(threshold)
        self.require_agreement = require_agreement
        self.hold = hold if isinstance(hold, Hold) else Hold.parse(hold)
        if rearm is None:
            # A third of the hold: long enough to ignore a flicker, short enough to type "LL".
            amount = self.hold.amount / 3
            rearm = Hold(max(1, round(amount)) if self.hold.unit == "frames" else amount, self.hold.unit)
        self.rearm = rearm if isinstance(rearm, Hold) else Hold.parse(rearm)
        if self.rearm.unit != self.hold.unit:
            raise ValueError("hold and rearm must use the same unit (frames or seconds)")
        self.reset()

    @property
    def weighs_agreement(self) -> bool:
        """Whether a frame where the two classifiers disagree counts less (here: not at all) toward typing."""
        return self.require_agreement

    def reset(self):
        self.text = ""
        self._frame = 0
        self._candidate = None      # label currently being held
        self._candidate_since = None
        self._blocked = None        # last accepted label, not typed again until re-armed
        self._gap_since = None      # start of the current gap away from the blocked label
        self._typed = None          # (letter, time) of the last letter typed by a held pose

    def _clock(self, now):
        # Frames count themselves; seconds come from the caller (video time) or the wall clock.
        if self.hold.unit == "frames":
            return self._frame
        return time.monotonic() if now is None else now

    def _until(self, since, clock) -> float:
        """Time from since up to (not including) this frame. Seconds get a microsecond of
        slack: video time 1.4 - 0.9 is 0.49999999999999994 in floats."""
        return clock - since if self.hold.unit == "frames" else clock - since + 1e-6

    def _elapsed(self, since, clock) -> float:
        # Frames are counted inclusively: a label seen on 8 frames has been held 8 frames.
        return self._until(since, clock) + (self.hold.unit == "frames")

    def update(self, label: str, prob: float, now: float | None = None, agree: bool = True) -> str | None:
        """One frame's top-1. Returns the label accepted on this frame, or None. `agree`: the model's
        image and landmark classifiers named the same class (ModelContract.agreement); a frame where
        they differ counts as not confident (unless require_agreement is off)."""
        self._frame += 1
        clock = self._clock(now)
        confident = prob >= self.threshold and (agree or not self.require_agreement) and label != NOTHING
        current = label if confident else None

        if self._blocked is not None:
            if current == self._blocked:
                # Back to the blocked label: the gap ran until now (this frame not included).
                if self._gap_since is not None and self._until(self._gap_since, clock) >= self.rearm.amount:
                    self._blocked = None
                self._gap_since = None
            else:
                if self._gap_since is None:
                    self._gap_since = clock
                if self._elapsed(self._gap_since, clock) >= self.rearm.amount:
                    self._blocked, self._gap_since = None, None

        if current != self._candidate:
            self._candidate, self._candidate_since = current, clock
        if current is None or current == self._blocked:
            return None
        if self._elapsed(self._candidate_since, clock) < self.hold.amount:
            return None
        return self._type(current, now)

    def _type(self, label: str, now: float | None) -> str:
        """Type `label` and block it until re-armed (both decoders)."""
        self._accept(label)
        self._blocked, self._gap_since = label, None
        at = time.monotonic() if now is None else now
        self._typed = (label, at) if len(label) == 1 else None
        return label

    def update_probs(self, probs, classes, now: float | None = None, agree: bool = True,
                     speed: float | None = None, place: tuple | None = None) -> str | None:
        """One frame's probabilities over `classes`: the hold rule reads only its top-1 (not the speed or place)."""
        top = int(np.argmax(probs))
        return self.update(classes[top], float(probs[top]), now, agree)

    def type_motion(self, letter: str, replaces=(), within: float = 0.0, now: float | None = None) -> str:
        """Type a letter recognised from a motion (J, Z). If the held-pose path typed one of
        `replaces` less than `within` seconds ago, that was the motion's start or end pose read
        as a still letter (J starts as I), and it is replaced. The letter is then blocked like
        a held one, so its still end pose does not type it again."""
        now = time.monotonic() if now is None else now
        if self._typed is not None and self._typed[0] in replaces and now - self._typed[1] <= within:
            self.text = self.text[:-1]
        self.text += letter
        self._typed = None
        self._blocked, self._gap_since = letter, None
        self._candidate, self._candidate_since = None, None
        return letter

    def _accept(self, label: str):
        if label == SPACE:
            self.text += " "
        elif label == DELETE:
            self.text = self.text[:-1]
        else:
            self.text += label

    def progress(self, now: float | None = None) -> float:
        """0..1: how far the current candidate is towards acceptance (for the overlay)."""
        if self._candidate is None or self._candidate == self._blocked:
            return 0.0
        return min(1.0, self._elapsed(self._candidate_since, self._clock(now)) / self.hold.amount)


class EvidenceSpeller(Speller):
    """Types the letter whose mean probability over the last `window` (frames or seconds) reaches
    `threshold` and leads the runner-up by `margin`. Frames where the two classifiers disagree
    weigh `disagree_weight` in the mean; with `still_speed`, a frame where the hand moves at v hand
    sizes per second weighs 1 / (1 + (v / still_speed)^2) more (letters are held still); `letter_thresholds`
    gives some letters a threshold of their own (measured, not a default). The typed letter is then blocked until its mean falls
    under `release` (or another letter is typed), so a held hand types it once; with `slide`, also when the hand
    has moved that many hand sizes from where it typed the letter (ASL signs a doubled letter, LL, by sliding the
    hand aside): the window then starts afresh, and the letter held there is typed again. The defaults are
    chosen on people left out of training (benchmarks/RESULTS.md, "The decoder on the shipped recipe's folds")."""

    def __init__(self, threshold: float = 0.6, window: Hold | str = "0.9s", margin: float = 0.3,
                 disagree_weight: float = 1.0, release: float | None = None, still_speed: float | None = None,
                 motion_veto: bool = True, letter_thresholds: dict | None = None, slide: float | None = None):
        self.letter_thresholds = dict(letter_thresholds or {})
        for name, v in (("threshold", threshold), ("margin", margin), ("disagree_weight", disagree_weight),
                        *((f"threshold of {k}", v) for k, v in self.letter_thresholds.items())):
            if not 0 <= float(v) <= 1:  # also rejects nan
                raise ValueError(f"{name} must be in [0, 1], not {v!r}")
        if still_speed is not None and not 0 < float(still_speed) < float("inf"):
            raise ValueError(f"still_speed must be a positive number of hand sizes per second, not {still_speed!r}")
        if slide is not None and not 0 <= float(slide) < float("inf"):
            raise ValueError(f"slide must be a number of hand sizes (0: never), not {slide!r}")
        self.slide = float(slide) if slide else None
        super().__init__(threshold=threshold, hold=window, require_agreement=False)
        self.margin, self.disagree_weight = float(margin), float(disagree_weight)
        self.still_speed = None if still_speed is None else float(still_speed)
        self.release = self.threshold / 2 if release is None else float(release)
        self.motion_veto = bool(motion_veto)
        self._lead = None

    @property
    def weighs_agreement(self) -> bool:
        return self.disagree_weight < 1.0

    def reset(self):
        super().reset()
        self._window = deque()  # (clock, weighted probabilities, weight)
        self._lead = None
        self._anchor = None  # (letter, x, y): where the hand was when the blocked letter was typed

    def _evidence(self, clock):
        """Mean probabilities over the window, and whether the window is full."""
        w = self._window
        if self.hold.unit == "frames":
            while len(w) > self.hold.amount:
                w.popleft()
            full = len(w) >= self.hold.amount
        else:  # keep one frame at or past the window's start, so any frame rate fills it
            while len(w) > 1 and self._until(w[1][0], clock) >= self.hold.amount:
                w.popleft()
            full = self._until(w[0][0], clock) >= self.hold.amount
        total = sum(x[2] for x in w)
        mean = sum(x[1] for x in w) / total if total > 0 else np.zeros_like(w[-1][1])
        return mean, full

    def update_probs(self, probs, classes, now: float | None = None, agree: bool = True,
                     speed: float | None = None, place: tuple | None = None) -> str | None:
        """place: the hand's (x, y, size) in this frame (runtime/motion.py hand_place), or None."""
        self._frame += 1
        clock = self._clock(now)
        if self._slid(place):
            self._blocked, self._anchor = None, None
            self._window.clear()
        weight = 1.0 if agree else self.disagree_weight
        if self.still_speed is not None and speed is not None:  # a hand moving fast is between letters
            weight /= 1.0 + (speed / self.still_speed) ** 2
        p = np.asarray(probs, np.float64)
        self._window.append((clock, p * weight, weight))
        mean, full = self._evidence(clock)
        order = np.argsort(mean)[::-1]
        lead = classes[int(order[0])]
        ahead = mean[order[0]] - (mean[order[1]] if len(order) > 1 else 0.0)
        if self._blocked is not None and (self._blocked not in classes
                                          or mean[list(classes).index(self._blocked)] < self.release):
            self._blocked = None
        ready = (lead != NOTHING and mean[order[0]] >= self.threshold_of(lead)
                 and ahead >= self.margin)
        self._lead = (lead, float(mean[order[0]])) if lead != NOTHING else None
        self._candidate = lead if ready else None
        if not (full and ready) or lead == self._blocked:
            return None
        self._anchor = (lead, place[0], place[1]) if place is not None else None
        return self._type(lead, now)

    def _slid(self, place) -> bool:
        """The hand moved `slide` hand sizes away from where it typed the letter still blocked."""
        if self.slide is None or place is None or self._anchor is None or self._anchor[0] != self._blocked:
            return False
        _, x, y = self._anchor
        return float(np.hypot(place[0] - x, place[1] - y)) >= self.slide * place[2]

    def threshold_of(self, letter: str) -> float:
        """The mean probability `letter` must reach: its own threshold where it has one."""
        return self.letter_thresholds.get(letter, self.threshold)

    def update(self, label: str, prob: float, now: float | None = None, agree: bool = True) -> str | None:
        raise TypeError("EvidenceSpeller reads whole probability vectors: call update_probs")

    def type_motion(self, letter: str, replaces=(), within: float = 0.0, now: float | None = None) -> str | None:
        """As Speller.type_motion, except (motion_veto) when the evidence names another letter, held
        and clear (its mean over the window passes the threshold and the margin): a hand holding Q or Y
        still is not drawing Z or J, whatever its fingertip's path looked like. -> the letter, or None."""
        if self.motion_veto and self._candidate is not None and self._candidate not in (letter, *replaces):
            return None
        self._anchor = None
        return super().type_motion(letter, replaces, within, now)

    def progress(self, now: float | None = None) -> float:
        if self._lead is None or self._lead[0] == self._blocked:
            return 0.0
        bar = self.threshold_of(self._lead[0])
        return min(1.0, self._lead[1] / bar) if bar > 0 else 1.0


DECODERS = ("evidence", "hold")
AGREEMENT_WEIGHT = 0.5  # what a disagreeing frame counts in the evidence decoder's mean when agreement is asked for


def make_speller(decoder: str, threshold: float | None = None, hold: Hold | str | None = None,
                 require_agreement: bool | None = None, margin: float | None = None, weight: float | None = None,
                 still: float | None = None, veto: bool | None = None, letter_thresholds: dict | None = None,
                 slide: float | None = None) -> Speller:
    """asl-run's --decoder with its options; None leaves a decoder's own default. `require_agreement`
    (--agreement/--no-agreement): the hold rule skips frames where the two classifiers disagree (its
    default), the evidence decoder counts them at AGREEMENT_WEIGHT (by default fully). `weight`: what such
    a frame counts in the evidence decoder's mean, set directly."""
    if decoder == "hold":
        return Speller(threshold=0.7 if threshold is None else threshold, hold=hold or "0.6s",
                       require_agreement=require_agreement is not False)
    if decoder == "evidence":
        if weight is None and require_agreement is not None:
            weight = AGREEMENT_WEIGHT if require_agreement else 1.0
        kw = {k: v for k, v in (("threshold", threshold), ("window", hold), ("margin", margin),
                                ("disagree_weight", weight), ("still_speed", still), ("motion_veto", veto),
                                ("letter_thresholds", letter_thresholds), ("slide", slide))
              if v is not None}
        return EvidenceSpeller(**kw)
    raise ValueError(f"unknown decoder {decoder!r}: use one of {', '.join(DECODERS)}")
