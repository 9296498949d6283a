"""Decision record: where the stranger speller loses letters, and two decoder rules that might win them back.

Question: of the letters signed and not typed on people left out of training, how many does the
classifier miss (the most frequent label over the hold is wrong) and how many does the decoder drop
(the most frequent label is right, nothing typed)? Would either rule below win dropped letters back
at >= 97% of typed letters right?
Options, replayed on the stored frames of benchmarks/speller.py runs (each person scored by the fold
model that left them out), against the shipped evidence decoder:
- re-arm: a typed letter may be typed again after the hand moves (its speed, hand sizes per second,
  at or above V for K frames in a row), for doubled letters signed with a bounce;
- vote: also type the leader when it is every frame's top label in the window (a fraction >= F of
  them) and its mean probability is at least L, for letters where the two classifiers disagree and
  the fused mean stays under the threshold.
Decision and figures: benchmarks/RESULTS.md, "Where the speller loses letters".

    python -m asl_edge.benchmarks.studies.speller_misses runs/speller/folds/traces/*.npz
"""
from __future__ import annotations

import sys
from collections import Counter, deque
from pathlib import Path

import numpy as np

from asl_edge.benchmarks.speller import load_trace, matched, replay
from asl_edge.runtime.spelling import NOTHING, EvidenceSpeller


class Rearm(EvidenceSpeller):
    """The evidence decoder, whose typed letter is unblocked (and its window emptied) by a moving hand."""

    def __init__(self, speed: float, frames: int, **kw):
        super().__init__(**kw)
        self.rearm_speed, self._speeds = speed, deque(maxlen=frames)

    def update_probs(self, probs, classes, now=None, agree=True, speed=None, place=None):
        self._speeds.append(speed if speed is not None and np.isfinite(speed) else 0.0)
        if self._blocked is not None and len(self._speeds) == self._speeds.maxlen \
                and min(self._speeds) >= self.rearm_speed:
            self._blocked = None
            self._window.clear()
        return super().update_probs(probs, classes, now, agree, speed, place)


class Vote(EvidenceSpeller):
    """The evidence decoder, which also types a leader that tops a fraction >= `vote` of the window's
    frames with a mean probability >= `low`."""

    def __init__(self, vote: float, low: float, **kw):
        super().__init__(**kw)
        self.vote, self.low = vote, low

    def update_probs(self, probs, classes, now=None, agree=True, speed=None, place=None):
        typed = super().update_probs(probs, classes, now, agree, speed, place)
        if typed is not None or self._lead is None:
            return typed
        mean, full = self._evidence(self._clock(now))
        lead = int(np.argmax(mean))
        votes = np.mean([int(np.argmax(p)) == lead for _, p, _ in self._window])
        if not full or classes[lead] in (NOTHING, self._blocked) or votes < self.vote or mean[lead] < self.low:
            return None
        return self._type(classes[lead], now)


def held_runs(truth: list) -> list:
    """(start, end) of each run of frames showing one signed letter (cross-fades excluded)."""
    runs, i = [], 0
    while i < len(truth):
        if not truth[i]:
            i += 1
            continue
        j = i
        while j < len(truth) and truth[j] == truth[i]:
            j += 1
        runs.append((i, j))
        i = j
    return runs


def breakdown(people: dict) -> Counter:
    """Each signed letter: typed, dropped by the decoder (a doubled letter, or another), or missed by the classifier."""
    out = Counter()
    for classes, traces in people.values():
        for t in traces:
            typed = [c for c in replay(t, classes, EvidenceSpeller()) if not c.isspace()]
            hit = matched(t["signed"], typed)
            runs = held_runs(t["truth"])
            if len(runs) != len(t["signed"]):
                raise SystemExit("a trace whose held letters do not match its signed ones: remake it")
            top = [classes[k] for k in np.argmax(t["probs"], 1)]
            for k, (i, j) in enumerate(runs):
                letter = t["signed"][k]
                if hit[k]:
                    out["typed"] += 1
                elif Counter(top[i:j]).most_common(1)[0][0] != letter:
                    out["classifier missed"] += 1
                elif k and t["signed"][k - 1] == letter:
                    out["decoder dropped: doubled letter"] += 1
                else:
                    out["decoder dropped: under the threshold"] += 1
    return out


def score(people: dict, make) -> dict:
    per = {}
    for name, (classes, traces) in people.items():
        right = typed = signed = 0
        for t in traces:
            text = [c for c in replay(t, classes, make()) if not c.isspace()]
            right += sum(matched(t["signed"], text))
            typed, signed = typed + len(text), signed + len(t["signed"])
        per[name] = (right, signed, typed)
    return per


def line(label: str, per: dict) -> str:
    r, s, t = (sum(v[i] for v in per.values()) for i in range(3))
    people = ", ".join(f"{n} {a}/{b} at {a}/{c}" for n, (a, b, c) in per.items())
    return f"| {label} | {r}/{s} ({100 * r / s:.1f}%) | {r}/{t} ({100 * r / max(t, 1):.1f}%) | {people} |"


def main(paths):
    people = {Path(p).stem: load_trace(Path(p)) for p in paths}
    counts = breakdown(people)
    total = sum(counts.values())
    print("## Signed letters\n")
    for k, v in counts.most_common():
        print(f"- {k}: {v}/{total}")
    print("\n| decoder | typed right / signed | right / typed | per person |\n|---|---|---|---|")
    print(line("evidence (shipped)", score(people, EvidenceSpeller)))
    for speed in (4.0, 8.0, 16.0):
        for frames in (1, 2):
            print(line(f"re-arm at {speed:g} hand sizes/s, {frames} frame(s)",
                       score(people, lambda: Rearm(speed, frames))))
    for vote in (0.9, 1.0):
        for low in (0.4, 0.5):
            print(line(f"vote {vote:g}, mean >= {low:g}", score(people, lambda: Vote(vote, low))))


if __name__ == "__main__":
    main(sys.argv[1:])
