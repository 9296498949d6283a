"""Decision record: the evidence decoder's settings, chosen on people left out of training.

Question: which threshold, margin, window and weight of disagreeing frames give the most letters typed
right at >= 97% of typed letters right, for people the model never saw?
Options: a grid over the four, replayed on the stored frames of benchmarks/speller.py runs (each person
scored by the fold model that left them out), and the hold rule's own grid for comparison.
Method: nested leave-one-person-out: for each person, the setting is chosen on the other people (most
letters right with pooled precision >= the target; then higher precision) and scored on that person.
The setting chosen on everyone is the one to ship; the nested figures are what to expect from it.
Decision and figures: benchmarks/README.md, "The stranger speller".

    python -m asl_edge.benchmarks.studies.decoder_choice runs/speller/lopo/traces/*.npz
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

from asl_edge.benchmarks.speller import load_trace, replay, total_score
from asl_edge.benchmarks.sequences import FPS
from asl_edge.runtime.spelling import Hold, make_speller

TARGET = 0.97
GRIDS = {
    "evidence": dict(threshold=(0.4, 0.5, 0.6, 0.7), margin=(0.1, 0.2, 0.3, 0.4), hold=("0.3s", "0.5s", "0.7s"),
                     weight=(0.25, 0.5, 1.0)),
    "hold": dict(threshold=(0.5, 0.6, 0.7, 0.8), hold=("0.4s", "0.6s", "0.8s"), require_agreement=(True, False)),
}


def settings(decoder):
    grid = GRIDS[decoder]
    for values in itertools.product(*grid.values()):
        kw = dict(zip(grid, values))
        kw["hold"] = Hold.parse(kw["hold"])
        yield kw


def counts(traces, classes, decoder, kw):
    texts = [replay(t, classes, make_speller(decoder, **kw)) for t in traces]
    s = total_score([t["signed"] for t in traces], texts, sum(len(t["probs"]) for t in traces) / FPS)
    return s["right"], s["signed"], s["typed"]


def pick(table, people):
    """The setting with the most letters right over `people` at pooled precision >= TARGET."""
    best = None
    for key, per in table.items():
        right, signed, typed = (sum(per[p][i] for p in people) for i in range(3))
        prec = right / typed if typed else 1.0
        if prec >= TARGET:
            cand = (right, prec, key)
            best = max(best, cand) if best else cand
    return best[2] if best else None


def main(paths):
    people = {Path(p).stem: load_trace(Path(p)) for p in paths}
    for decoder in GRIDS:
        table = {}
        for kw in settings(decoder):
            key = ",".join(f"{k}={v}" for k, v in kw.items())
            table[key] = {name: counts(traces, classes, decoder, kw) for name, (classes, traces) in people.items()}
        print(f"## {decoder}: {len(table)} settings")
        tot = [0, 0, 0]
        for held in people:
            key = pick(table, [p for p in people if p != held])
            if key is None:
                print(f"- {held}: no setting reaches {TARGET:.0%} on the others")
                continue
            r, s, t = table[key][held]
            tot = [a + b for a, b in zip(tot, (r, s, t))]
            print(f"- {held} (chosen on the others: {key}): {r}/{s} right ({100 * r / s:.1f}%), "
                  f"{r}/{t} of typed ({100 * r / max(t, 1):.1f}%)")
        print(f"- nested, all people: {tot[0]}/{tot[1]} ({100 * tot[0] / max(tot[1], 1):.1f}%) recall, "
              f"{tot[0]}/{tot[2]} ({100 * tot[0] / max(tot[2], 1):.1f}%) precision")
        key = pick(table, list(people))
        if key:
            r, s, t = (sum(table[key][p][i] for p in people) for i in range(3))
            print(f"- chosen on everyone: {key}: {r}/{s} ({100 * r / s:.1f}%), precision {100 * r / max(t, 1):.1f}%")


if __name__ == "__main__":
    main(sys.argv[1:])
