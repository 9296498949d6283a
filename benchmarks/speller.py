"""The stranger speller benchmark: what `asl-run --camera` types for people left out of training.

From recordings of one person per folder (`<person>/<CLASS>.mp4` or `<person>/<CLASS>/*.mp4`, one
video per letter, as ../shared/data/webcam_recordings) it makes sequences of held letters: random
orders of every recorded letter, some doubled (LL, SS: the second from another part of the video),
each held `--hold-s` (a run of consecutive frames of its video), joined by a short cross-fade.
The frames go through asl-run's own camera loop (runtime/live.run_live: hand finder, tracking,
classifier, motion spotter, speller), every decoder fed the same frames in one pass. Scored per
person and decoder: letters typed right (the longest common subsequence of signed and typed) over
letters signed (recall) and over letters typed (precision), right letters per minute; per frame,
the top-1 on held frames. `--fold PERSON=MODEL` scores each person with the model of the fold that
left them out; every frame's probabilities are kept in OUT/traces/, and `--replay` re-runs other
decoder settings on them in seconds, without the model.

    python -m asl_edge.benchmarks.speller ../shared/data/webcam_recordings/{gunsai75,lolzorus,meyyappan} \
        --decoder evidence --decoder hold --out runs/speller
"""
from __future__ import annotations

import io
import logging
from pathlib import Path

import click
import numpy as np

from asl_edge.common.errors import UserError, cli_errors, command, say
from asl_edge.common.fileio import atomic_write, json_text
from asl_edge.runtime.hands import LANDMARK_MODELS, default_landmark_model
from asl_edge.runtime.live import run_live, spell_frame
from asl_edge.runtime.options import FiniteFloat
from asl_edge.runtime.spelling import DECODERS, Hold, make_speller

from .sequences import FPS, person_sequences

log = logging.getLogger(__spec__.name)  # its package name also when run with python -m


class FanOut:
    """Several decoders fed the same frames by one run_live; it also keeps every frame's
    probabilities, agreement and motion events (the trace that --replay re-decodes)."""

    def __init__(self, spellers: list):
        self.spellers = spellers
        self.probs, self.agree, self.times, self.speeds, self.places, self.motions = [], [], [], [], [], []

    def __getattr__(self, name):  # threshold, weighs_agreement, hold: the first decoder's (overlay only)
        return getattr(self.spellers[0], name)

    @property
    def text(self):
        return self.spellers[0].text

    def reset(self):
        for s in self.spellers:
            s.reset()

    def progress(self, now=None):
        return self.spellers[0].progress(now)

    def update_probs(self, probs, classes, now=None, agree=True, speed=None, place=None):
        self.probs.append(np.asarray(probs, np.float32))
        self.agree.append(bool(agree))
        self.times.append(float(now))
        self.speeds.append(np.nan if speed is None else float(speed))
        self.places.append((np.nan,) * 3 if place is None else tuple(map(float, place)))
        return [s.update_probs(probs, classes, now, agree, speed, place) for s in self.spellers][0]

    def type_motion(self, letter, replaces=(), within=0.0, now=None):
        self.motions.append((len(self.probs) - 1, letter, float(within)))
        return [s.type_motion(letter, replaces, within, now) for s in self.spellers][0]


def replay(trace: dict, classes, speller) -> str:
    """A recorded run's frames through another decoder (the same step as run_live)."""
    motions = {int(i): (m, float(w)) for i, m, w in trace["motions"]}
    speeds, places = trace.get("speeds"), trace.get("places")
    for i, (p, a, t) in enumerate(zip(trace["probs"], trace["agree"], trace["times"])):
        m, w = motions.get(i, (None, 0.0))
        v = None if speeds is None or not np.isfinite(speeds[i]) else float(speeds[i])
        at = None if places is None or not np.isfinite(places[i]).all() else tuple(map(float, places[i]))
        spell_frame(speller, p, classes, float(t), bool(a), m, w, v, at)
    return speller.text


def matched(signed: list, typed: list) -> list:
    """Which signed letters were typed, in order: the longest common subsequence's positions."""
    n, m = len(signed), len(typed)
    L = np.zeros((n + 1, m + 1), np.int32)
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            L[i, j] = L[i + 1, j + 1] + 1 if signed[i] == typed[j] else max(L[i + 1, j], L[i, j + 1])
    hit, i, j = [False] * n, 0, 0
    while i < n and j < m:
        if signed[i] == typed[j]:
            hit[i], i, j = True, i + 1, j + 1
        elif L[i + 1, j] >= L[i, j + 1]:
            i += 1
        else:
            j += 1
    return hit


def score(signed: list, text: str, seconds: float) -> dict:
    typed = [c for c in text if not c.isspace()]
    hit = matched(signed, typed)
    right = sum(hit)
    return {"signed": len(signed), "typed": len(typed), "right": right,
            "recall": right / max(len(signed), 1), "precision": right / len(typed) if typed else 1.0,
            "letters_per_min": 60 * right / seconds if seconds else 0.0,
            "per_letter": {c: [sum(h for s, h in zip(signed, hit) if s == c), signed.count(c)] for c in sorted(set(signed))}}


def parse_decoder(spec: str):
    """'evidence' or 'evidence:threshold=0.5,margin=0.2,hold=0.5s' or 'hold:agreement=0' -> (name, kwargs)."""
    name, _, rest = spec.partition(":")
    if name not in DECODERS:
        raise UserError(f"--decoder {spec!r}: use one of {', '.join(DECODERS)}, optionally :key=value,...")
    kw = {}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        try:
            if k in ("threshold", "margin", "weight", "still", "slide"):
                kw[k] = float(v)
            elif k == "hold":
                kw[k] = Hold.parse(v)
            elif k == "agreement":
                kw["require_agreement"] = v not in ("0", "no", "false")
            elif k == "veto":
                kw["veto"] = v not in ("0", "no", "false")
            else:
                raise ValueError
        except ValueError:
            raise UserError(f"--decoder {spec!r}: bad setting {item!r} (threshold, margin, weight, still, slide, hold, agreement, veto)") from None
    try:
        make_speller(name, **kw)
    except ValueError as e:
        raise UserError(f"--decoder {spec!r}: {e}") from None
    return spec, lambda: make_speller(name, **kw)


def run_person(clf, region_factory, folder: Path, decoders: list, opts: dict) -> dict:
    from asl_edge.runtime.hands import HandRoi

    results = {name: {"text": [], "signed": []} for name, _ in decoders}
    frames_right = frames_held = hands = n_frames = seconds = 0
    traces = []
    for src, signed in person_sequences(folder, **opts):
        region = region_factory()
        fan = FanOut([make() for _, make in decoders])
        try:
            stats = run_live(clf, src, fan, region, out=io.StringIO())
        finally:
            if isinstance(region, HandRoi):
                region.close()
        if stats.interrupted:
            raise KeyboardInterrupt
        held = [(t, clf.classes[int(np.argmax(p))]) for t, p in zip(src.truth, fan.probs) if t is not None]
        frames_held += len(held)
        frames_right += sum(t == y for t, y in held)
        hands += stats.hand_frames or 0
        n_frames += stats.frames
        seconds += len(src.truth) / FPS
        for (name, _), sp in zip(decoders, fan.spellers):
            results[name]["text"].append(sp.text)
            results[name]["signed"].append(signed)
        traces.append({"probs": np.stack(fan.probs), "agree": np.array(fan.agree), "times": np.array(fan.times),
                       "speeds": np.array(fan.speeds, np.float32), "places": np.array(fan.places, np.float32).reshape(-1, 3),
                       "motions": fan.motions, "signed": signed, "truth": [t or "" for t in src.truth]})
    out = {"frames": n_frames, "hand_found": hands / max(n_frames, 1), "frame_top1": frames_right / max(frames_held, 1),
           "seconds": seconds, "decoders": {name: total_score(r["signed"], r["text"], seconds)
                                            for name, r in results.items()}}
    return out, traces


def total_score(signed_runs: list, texts: list, seconds: float) -> dict:
    """Each sequence scored on its own, then summed."""
    parts = [score(s, t, 0.0) for s, t in zip(signed_runs, texts)]
    out = {k: sum(p[k] for p in parts) for k in ("signed", "typed", "right")}
    out.update(recall=out["right"] / max(out["signed"], 1),
               precision=out["right"] / out["typed"] if out["typed"] else 1.0,
               letters_per_min=60 * out["right"] / seconds if seconds else 0.0, text=list(texts))
    per = {}
    for p in parts:
        for c, (h, n) in p["per_letter"].items():
            per.setdefault(c, [0, 0])
            per[c][0] += h
            per[c][1] += n
    out["per_letter"] = per
    return out


def table(results: dict, decoders: list) -> str:
    lines = ["| person | model | frames | hand found | frame top-1 | decoder | typed right / signed (recall) "
             "| right / typed (precision) | letters/min |", "|---|---|---|---|---|---|---|---|---|"]
    totals = {name: [0, 0, 0] for name, _ in decoders}
    for person, r in results.items():
        for name, _ in decoders:
            d = r["decoders"][name]
            totals[name] = [a + b for a, b in zip(totals[name], (d["right"], d["signed"], d["typed"]))]
            found = "-" if r["hand_found"] != r["hand_found"] else f"{100 * r['hand_found']:.1f}%"
            lines.append(f"| {person} | {r['model']} | {r['frames']} | {found} | "
                         f"{100 * r['frame_top1']:.1f}% | {name} | {d['right']}/{d['signed']} ({100 * d['recall']:.1f}%) | "
                         f"{d['right']}/{d['typed']} ({100 * d['precision']:.1f}%) | {d['letters_per_min']:.1f} |")
    for name, (right, signed, typed) in totals.items():
        lines.append(f"| **all** | | | | | {name} | **{right}/{signed} ({100 * right / max(signed, 1):.1f}%)** | "
                     f"**{right}/{typed} ({100 * right / max(typed, 1):.1f}%)** | |")
    return "\n".join(lines)


def write_results(out: Path, results: dict, decoders: list, command: str):
    out.mkdir(parents=True, exist_ok=True)
    md = f"`{command}`\n\n{table(results, decoders)}\n"
    atomic_write(out / "speller.md", lambda tmp: Path(tmp).write_text(md))
    atomic_write(out / "speller.json", lambda tmp: Path(tmp).write_text(json_text(
        {"command": command, "results": results}, indent=1)))
    return md


def save_trace(path: Path, traces: list, classes):
    arrays = {"classes": np.array(classes)}
    for k, t in enumerate(traces):
        arrays.update({f"{k}_probs": t["probs"], f"{k}_agree": t["agree"], f"{k}_times": t["times"],
                       f"{k}_speeds": t["speeds"], f"{k}_places": t["places"],
                       f"{k}_signed": np.array(t["signed"]), f"{k}_truth": np.array(t["truth"]),
                       f"{k}_motions": np.array([(i, m, w) for i, m, w in t["motions"]], dtype=object).astype(str)
                       if t["motions"] else np.zeros((0, 3), str)})
    atomic_write(path, lambda tmp: np.savez_compressed(open(tmp, "wb"), **arrays))


def load_trace(path: Path):
    with np.load(path, allow_pickle=False) as z:
        classes = [str(c) for c in z["classes"]]
        n = len({k.split("_")[0] for k in z.files if k != "classes"})
        traces = [{"probs": z[f"{k}_probs"], "agree": z[f"{k}_agree"], "times": z[f"{k}_times"],
                   "speeds": z[f"{k}_speeds"] if f"{k}_speeds" in z.files else None,
                   "places": z[f"{k}_places"] if f"{k}_places" in z.files else None,
                   "signed": [str(c) for c in z[f"{k}_signed"]], "truth": [str(c) for c in z[f"{k}_truth"]],
                   "motions": [(int(i), m, float(w)) for i, m, w in z[f"{k}_motions"]]} for k in range(n)]
    return classes, traces


def replay_person(path: Path, decoders: list) -> dict:
    classes, traces = load_trace(path)
    seconds = sum(len(t["probs"]) for t in traces) / FPS
    held = [(t, classes[int(np.argmax(p))]) for tr in traces for t, p in zip(tr["truth"], tr["probs"]) if t]
    out = {"frames": sum(len(t["probs"]) for t in traces), "hand_found": float("nan"),  # not stored: see the run
           "frame_top1": sum(t == y for t, y in held) / max(len(held), 1), "seconds": seconds, "decoders": {}}
    for name, make in decoders:
        texts = [replay(t, classes, make()) for t in traces]
        out["decoders"][name] = total_score([t["signed"] for t in traces], texts, seconds)
    return out


@command()
@click.argument("people", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--model", "-m", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="ONNX model (default: the shipped one) for every person without a --fold.")
@click.option("--fold", "folds", multiple=True, metavar="PERSON=MODEL",
              help="The model that never saw PERSON (its folder's name): leave-one-person-out.")
@click.option("--decoder", "decoder_specs", multiple=True, metavar="NAME[:k=v,...]",
              help="Decoders compared on the same frames: evidence, hold, with settings such as "
                   "evidence:threshold=0.5,margin=0.2,hold=0.5s,weight=0.5 or hold:agreement=0 [default: evidence and hold].")
@click.option("--sequences", default=2, show_default=True, type=click.IntRange(1, 50), help="Sequences per person.")
@click.option("--hold-s", default=1.5, show_default=True, type=FiniteFloat(0.2, 10), help="Seconds each letter is held.")
@click.option("--transition-s", default=0.3, show_default=True, type=FiniteFloat(0, 2),
              help="Seconds of cross-fade between letters.")
@click.option("--doubles", default=4, show_default=True, type=click.IntRange(0, 26), help="Letters signed twice in a row.")
@click.option("--slide", default=0.0, show_default=True, type=FiniteFloat(-0.5, 0.5),
              help="The second of a doubled letter slid aside by this fraction of the frame's width (as a person "
                   "signs LL), moving over the transition; 0: held in place.")
@click.option("--letters", default="", metavar="ABC...", help="Only these letters [default: every recorded one].")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**31))
@click.option("--threads", default=None, type=click.IntRange(1, 64), help="onnxruntime threads.")
@click.option("--out", default="runs/speller", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Writes speller.md, speller.json and traces/<person>.npz here.")
@click.option("--hand-model", type=click.Choice(sorted(LANDMARK_MODELS)), default=None,
              help="The hand landmark model [default: asl-run --camera's for the model].")
@click.option("--replay", is_flag=True, help="Re-decode the traces in --out (no model, no video): for decoder settings.")
@cli_errors
def main(people, model, folds, decoder_specs, sequences, hold_s, transition_s, doubles, slide, letters, seed, threads,
         out, hand_model, replay):
    """Score what asl-run --camera types for PEOPLE (folders of letter videos) left out of training."""
    import shlex
    import sys

    from asl_edge.runtime.cli import load_model, parse_region

    decoders = [parse_decoder(s) for s in (decoder_specs or ("evidence", "hold"))]
    fold_models = {}
    for f in folds:
        person, sep, path = f.partition("=")
        if not sep or not path:
            raise UserError(f"--fold {f!r}: use PERSON=MODEL.onnx")
        fold_models[person] = Path(path)
    results = {}
    for folder in people:
        folder = Path(folder)
        trace_path = out / "traces" / f"{folder.name}.npz"
        if replay:
            if not trace_path.is_file():
                raise UserError(f"--replay: no trace {trace_path}; run without --replay first")
            results[folder.name] = {**replay_person(trace_path, decoders), "model": "(replay)"}
        else:
            path = fold_models.get(folder.name, model)
            clf, _ = load_model(path, "cpu", threads)
            log.info("%s: %s", folder.name, clf.path)
            hands = hand_model or default_landmark_model(clf.uses_landmarks)
            r, traces = run_person(clf, lambda: parse_region("hand", hands, "cpu", True, clf.contract.crop_margin), folder, decoders,
                                   dict(seed=seed, sequences=sequences, hold_s=hold_s, transition_s=transition_s,
                                        doubles=doubles, letters=letters, slide=slide))
            results[folder.name] = {**r, "model": str(clf.path.name)}
            trace_path.parent.mkdir(parents=True, exist_ok=True)
            save_trace(trace_path, traces, clf.classes)
        for name, _ in decoders:
            d = results[folder.name]["decoders"][name]
            log.info("  %s: %d/%d right (recall %.1f%%), %d typed (precision %.1f%%)", name, d["right"], d["signed"],
                     100 * d["recall"], d["typed"], 100 * d["precision"])
    for line in write_results(out, results, decoders, "python -m asl_edge.benchmarks.speller "
                              + shlex.join(sys.argv[1:])).splitlines():
        say(line)


if __name__ == "__main__":
    main()
