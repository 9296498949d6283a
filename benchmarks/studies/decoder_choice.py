"""Decision record: the evidence decoder's settings, chosen on people left out of training.

Question: which threshold, margin, window, weight of disagreeing frames and of a moving hand give the most letters typed
right at >= 97% of typed letters right, for people the model never saw?
Options: a grid over the four, replayed on the stored frames of benchmarks/speller.py runs (each person
scored by the fold model that left them out), and the hold rule's own grid for comparison.
Method: nested leave-one-person-out: for each person, the setting is chosen on the other people (most
letters right with pooled precision >= the target; then higher precision) and scored on that person.
The setting chosen on everyone is the one to ship; the nested figures are what to expect from it.
Decision and figures: benchmarks/RESULTS.md, "The stranger speller".

    python -m asl_edge.benchmarks.studies.decoder_choice runs/speller/lopo/traces/*.npz
    python -m asl_edge.benchmarks.studies.decoder_choice runs/speller/{folds,hold1.0,hold1.5,hold2.0}/traces/*.npz
(traces of one person, PERSON.npz in several folders, are pooled)
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
    "evidence": dict(threshold=(0.6, 0.7, 0.8, 0.9), margin=(0.3, 0.5), hold=("0.5s", "0.6s", "0.9s"),
                     weight=(0.5, 1.0), still=(None, 1.0, 2.0)),
    "hold": dict(threshold=(0.5, 0.6, 0.7, 0.8, 0.9), hold=("0.4s", "0.6s", "0.8s"), require_agreement=(True, False)),
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


def calibration(people, stored_t: float):
    """The held frames' expected calibration error at the stored temperature, and the temperature
    that minimises their NLL (logits recovered as log p x T, up to a constant per frame)."""
    import numpy as np

    logp, truth = [], []
    for classes, traces in people.values():
        for t in traces:
            for p, y in zip(t["probs"], t["truth"]):
                if y:
                    logp.append(np.log(np.clip(p, 1e-12, 1)))
                    truth.append(classes.index(y))
    z, y = np.array(logp) * stored_t, np.array(truth)

    def probs(temp):
        q = z / temp
        q = np.exp(q - q.max(1, keepdims=True))
        return q / q.sum(1, keepdims=True)

    def nll(temp):
        return -np.log(np.clip(probs(temp)[np.arange(len(y)), y], 1e-12, 1)).mean()

    def ece(temp, bins=10):
        p = probs(temp)
        conf, right = p.max(1), p.argmax(1) == y
        edges = np.linspace(0, 1, bins + 1)
        return sum(abs(conf[m].mean() - right[m].mean()) * m.mean()
                   for a, b in zip(edges[:-1], edges[1:]) if (m := (conf > a) & (conf <= b)).any())

    grid = np.arange(0.5, 6.01, 0.05)
    best = grid[int(np.argmin([nll(t) for t in grid]))]
    print(f"## calibration on {len(y)} held frames: ECE {100 * ece(stored_t):.1f}% at T {stored_t:g}; "
          f"NLL is lowest at T {best:.2f} (ECE {100 * ece(best):.1f}%)")


def main(paths, stored_t: float = 2.78):
    people = {}  # a person's traces from every folder given (e.g. runs at several hold lengths) are pooled
    for p in paths:
        classes, traces = load_trace(Path(p))
        people.setdefault(Path(p).stem, (classes, []))[1].extend(traces)
    calibration(people, stored_t)
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
