"""Compare `asl-run --json --top-k 1000` outputs of two places a model ran, per image.

    python scripts/compare_runs.py [--sides TEST,REF] RESULTS_DIR TAG [TAG ...]

Reads RESULTS_DIR/{TEST,REF}_TAG.jsonl (sides default to arm,x86: scripts/pi_check.sh's emulated
arm64 and x86 runs; scripts/gpu_check.sh uses cuda,cpu). For each TAG: TEST vs REF on the same file,
and both against the REF run of the last TAG (the reference, e.g. the FP32 file): top-1 agreement,
the largest and median per-image max |probability difference|, and accuracy where folders name classes.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np


def load(path: Path) -> dict:
    records = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        records[re.sub(r"^.*?/data/", "", r["file"])] = r  # the path below the copied image folder
    return records


def probs(r: dict, classes: list) -> np.ndarray:
    p = dict(r["top_k"])
    return np.array([p.get(c, 0.0) for c in classes])


def compare(a: dict, b: dict) -> dict:
    keys = sorted(set(a) & set(b))
    classes = sorted({c for r in a.values() for c, _ in r["top_k"]})
    d = np.array([np.abs(probs(a[k], classes) - probs(b[k], classes)).max() for k in keys])
    out = {"images": len(keys), "top1_agree": sum(a[k]["label"] == b[k]["label"] for k in keys),
           "max_dp": float(d.max()), "median_dp": float(np.median(d))}
    if all("agree" in a[k] and "agree" in b[k] for k in keys):  # a landmark model's two-views output
        out["views_output_same"] = sum(a[k]["agree"] == b[k]["agree"] for k in keys)
    return out


def accuracy(runs: dict):
    labelled = [r for r in runs.values() if "true" in r]
    return (sum(r["label"] == r["true"] for r in labelled), len(labelled))


def main(out: str, *tags: str, sides=("arm", "x86")) -> None:
    out, (test, base) = Path(out), sides
    runs = {(side, t): load(out / f"{side}_{t}.jsonl") for t in tags for side in sides}
    ref = tags[-1]
    lines, report = [], {}
    for t in tags:
        for name, (a, b) in {f"{t}: {test} vs {base} (same file)": ((test, t), (base, t)),
                             f"{t}: {test} vs {base} {ref} (reference)": ((test, t), (base, ref)),
                             f"{t}: {base} vs {base} {ref} (reference)": ((base, t), (base, ref))}.items():
            if a == b:
                continue
            c = compare(runs[a], runs[b])
            report[name] = c
            lines.append(f"{name}: top-1 agree {c['top1_agree']}/{c['images']} "
                         f"({100 * c['top1_agree'] / max(c['images'], 1):.1f}%), max |dp| {c['max_dp']:.4f}, "
                         f"median per-image max |dp| {c['median_dp']:.5f}"
                         + (f", agreement output same {c['views_output_same']}/{c['images']}"
                            if "views_output_same" in c else ""))
        for side in sides:
            ok, n = accuracy(runs[(side, t)])
            if n:
                lines.append(f"{t}: {side} accuracy {ok}/{n} ({100 * ok / n:.1f}%)")
                report[f"{t}: {side} accuracy"] = {"correct": ok, "labelled": n}
    (out / "compare.json").write_text(json.dumps(report, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--sides"]:
        main(*args[2:], sides=tuple(args[1].split(",")))
    else:
        main(*args)
