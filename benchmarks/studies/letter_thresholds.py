"""Decision record: a threshold per letter for the evidence decoder, chosen on people left out of training.

Question: the evidence decoder types a letter when its mean calibrated probability over the window passes one
threshold (0.7) with a margin. Strangers' letters differ: some the classifier reads right but never confidently
(M, X, A, T, H: the two views disagree), some it reads wrong confidently (K as P, Z as D, Y as J). Would a
threshold per letter type more letters right at >= 97% of typed letters right?
Options: the shipped single threshold; per-letter thresholds from CANDIDATES chosen by coordinate ascent (from the
shipped setting, each letter in turn takes the candidate with the most letters right while the pooled precision
stays >= TARGET, ties to fewer wrong; PASSES passes over the letters).
Method: nested leave-one-person-out. For each person, the thresholds are chosen on the other people's traces
(every --choose folder: e.g. runs of benchmarks/speller.py at several hold lengths) and scored on that person's
traces in every --score folder. Each person's traces come from the fold model that never saw them.
Decision and figures: benchmarks/RESULTS.md, "A threshold per letter".

    python -m asl_edge.benchmarks.studies.letter_thresholds --choose runs/speller/folds/traces \
        --choose runs/speller/hold1.0/traces --choose runs/speller/hold2.0/traces --score runs/speller/folds/traces
"""
from __future__ import annotations

from pathlib import Path

import click

from asl_edge.benchmarks.speller import load_trace
from asl_edge.benchmarks.studies.decoder_choice import TARGET, counts as person_counts

CANDIDATES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
PASSES = 2


def counts(runs, thresholds: dict) -> tuple:
    """(right, signed, typed) of the shipped evidence decoder with these per-letter thresholds, over runs
    [(classes, traces)]."""
    per_run = [person_counts(traces, classes, "evidence", {"letter_thresholds": thresholds}) for classes, traces in runs]
    return tuple(sum(c[i] for c in per_run) for i in range(3))


def better(a, b) -> bool:
    """Count a beats count b: precision >= TARGET, then more right, then fewer typed."""
    ok = [x[2] == 0 or x[0] / x[2] >= TARGET for x in (a, b)]
    if ok[0] != ok[1]:
        return ok[0]
    return (a[0], -a[2]) > (b[0], -b[2])


def choose(runs, letters) -> tuple:
    """Coordinate ascent from no per-letter threshold -> (thresholds, counts on runs)."""
    chosen, best = {}, counts(runs, {})
    for _ in range(PASSES):
        moved = False
        for letter in letters:
            for value in CANDIDATES:
                trial = {**chosen, letter: value}
                c = counts(runs, trial)
                if better(c, best):
                    chosen, best, moved = trial, c, True
        if not moved:
            break
    return chosen, best


def line(name, c) -> str:
    return f"{name}: {c[0]}/{c[1]} right ({100 * c[0] / max(c[1], 1):.1f}%), {c[0]}/{c[2]} of typed ({100 * c[0] / max(c[2], 1):.1f}%)"


@click.command()
@click.option("--choose", "choose_dirs", multiple=True, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folders of traces (PERSON.npz) the thresholds are chosen on (the other people's).")
@click.option("--score", "score_dirs", multiple=True, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folders of traces each left-out person is scored on.")
def main(choose_dirs, score_dirs):
    def runs(dirs, people):
        return [load_trace(d / f"{p}.npz") for d in dirs for p in people if (d / f"{p}.npz").is_file()]

    people = sorted({p.stem for d in choose_dirs for p in d.glob("*.npz")})
    letters = [c for c in load_trace(next(choose_dirs[0].glob("*.npz")))[0] if len(c) == 1]
    totals = {"shipped": [0, 0, 0], "per letter": [0, 0, 0]}
    for held in people:
        chosen, fit = choose(runs(choose_dirs, [p for p in people if p != held]), letters)
        print(f"## {held}: chosen on the others ({line('there', fit)}): {chosen or 'none'}")
        for d in score_dirs:
            test = runs([d], [held])
            base, new = counts(test, {}), counts(test, chosen)
            print(f"- {d}: {line('shipped', base)}; {line('per letter', new)}")
            if d == score_dirs[0]:
                for k, c in (("shipped", base), ("per letter", new)):
                    totals[k] = [a + b for a, b in zip(totals[k], c)]
    print(f"## nested, every person on {score_dirs[0]}: {line('shipped', totals['shipped'])}; "
          f"{line('per letter', totals['per letter'])}")
    chosen, fit = choose(runs(choose_dirs, people), letters)
    print(f"## chosen on everyone: {chosen or 'none'} ({line('there', fit)})")


if __name__ == "__main__":
    main()
