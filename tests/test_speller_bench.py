"""The stranger speller benchmark (benchmarks/speller.py, benchmarks/sequences.py)."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from asl_edge.benchmarks.sequences import FPS, SequenceSource, plan_sequence
from asl_edge.benchmarks.speller import matched, parse_decoder, score, total_score
from asl_edge.common.errors import UserError

from conftest import DATA, assert_one_line_error, need, run_cli

WEBCAM = DATA / "webcam_recordings"


def test_plan_has_every_letter_once_and_doubles_side_by_side():
    lengths = {c: 100 for c in "ABCDEFGH"}
    plan = plan_sequence(lengths, {c: f"{c}.mp4" for c in lengths}, random.Random(3), 45, doubles=2)
    letters = [h.letter for h in plan]
    assert sorted(set(letters)) == sorted(lengths) and len(letters) == 10
    doubled = [a for a, b in zip(letters, letters[1:]) if a == b]
    assert len(doubled) == 2
    assert all(0 <= h.start and h.start + h.count <= 100 and h.count == 45 for h in plan)
    again = plan_sequence(lengths, {c: f"{c}.mp4" for c in lengths}, random.Random(3), 45, doubles=2)
    assert again == plan  # seeded
    short = plan_sequence({"A": 10}, {"A": "A.mp4"}, random.Random(0), 45, doubles=0)
    assert short[0].count == 10 and short[0].start == 0


def test_sequence_source_frames_truth_and_crossfades():
    frames = {c: [np.full((4, 4, 3), v + i, np.uint8) for i in range(20)] for c, v in (("A", 0), ("B", 100))}
    plan = plan_sequence({"A": 20, "B": 20}, {"A": "a", "B": "b"}, random.Random(0), 5, doubles=0)
    src = SequenceSource(plan, frames, transition=3, name="x")
    got = []
    while (r := src.read()) is not None:
        got.append(r)
    assert len(got) == len(src.truth) == 13
    assert [t for t in src.truth].count(None) == 3 and src.truth[5:8] == [None] * 3
    assert got[1][1] == pytest.approx(1 / FPS)
    a_end, b_start = got[4][0].mean(), got[8][0].mean()
    fade = [f.mean() for f, _ in got[5:8]]
    assert min(a_end, b_start) < fade[0] < fade[1] < fade[2] < max(a_end, b_start)



def test_a_slid_double_moves_its_second_hold_and_the_transition_aside():
    """--slide: the second of a doubled letter is the frame moved sideways, and the transition travels there."""
    plan = plan_sequence({c: 100 for c in "ABCDEF"}, {c: c for c in "ABCDEF"}, random.Random(3), 10, doubles=2, slide=0.25)
    unslid = plan_sequence({c: 100 for c in "ABCDEF"}, {c: c for c in "ABCDEF"}, random.Random(3), 10, doubles=2)
    assert [(h.letter, h.start) for h in plan] == [(h.letter, h.start) for h in unslid]  # the same draw
    seconds = [k for k in range(1, len(plan)) if plan[k].letter == plan[k - 1].letter]
    assert sorted(abs(plan[k].shift) for k in range(len(plan))) == [0.0] * 6 + [0.25] * 2
    assert {plan[k].shift for k in seconds} == {0.25, -0.25}  # right, then left
    # a bright column at x = 2 of an 8-pixel-wide frame: where is it on each frame?
    frame = np.zeros((2, 8, 3), np.uint8)
    frame[:, 2] = 255
    frames = {c: [frame] * 100 for c in "ABCDEF"}
    k = seconds[0]
    src = SequenceSource(plan[k - 1:k + 1], frames, transition=3, name="x")
    column = [int(np.argmax(f[0, :, 0].astype(int))) for f in src._frames]
    step = 2 * int(np.sign(plan[k].shift))  # a quarter of 8 pixels
    assert column[:10] == [2] * 10 and column[-10:] == [2 + step] * 10
    travelled = [c - 2 for c in column[10:13]]
    assert all(abs(a) <= abs(b) for a, b in zip(travelled, travelled[1:])) and 0 < abs(travelled[-1]) <= abs(step)


@pytest.mark.parametrize("signed, typed, right", [
    ("HELLO", "HELLO", 5), ("HELLO", "HELO", 4), ("HELLO", "HXELLO", 5), ("HELLO", "", 0), ("AB", "BA", 1),
])
def test_typed_right_is_the_longest_common_subsequence(signed, typed, right):
    hit = matched(list(signed), list(typed))
    assert sum(hit) == right
    s = score(list(signed), typed, 60.0)
    assert s["right"] == right and s["typed"] == len(typed)
    assert s["precision"] == (right / len(typed) if typed else 1.0)
    assert s["letters_per_min"] == right


def test_sequences_are_scored_one_by_one():
    # a letter typed in the first sequence cannot match one signed in the second
    t = total_score([["A"], ["B"]], ["B", "A"], 60)
    assert t["right"] == 0 and t["typed"] == 2 and t["per_letter"] == {"A": [0, 1], "B": [0, 1]}


@pytest.mark.parametrize("spec", ["vote", "evidence:threshold=x", "evidence:speed=1", "evidence:threshold=2"])
def test_bad_decoder_specs_are_one_line_errors(spec):
    with pytest.raises(UserError):
        parse_decoder(spec)


def test_live_run_and_replay_agree_on_a_real_person(tmp_path):
    """The shipped model on a real recording: the camera loop's texts are what replaying the stored
    frames through the same decoders types."""
    person = need(WEBCAM) / "gunsai75"
    out = tmp_path / "sp"
    args = [person, "--letters", "ABLY", "--sequences", "1", "--doubles", "1", "--slide", "0.15", "--out", out,
            "--decoder", "evidence", "--decoder", "hold", "--decoder", "hold:agreement=0",
            "--decoder", "evidence:slide=0.3"]
    run_cli("asl_edge.benchmarks.speller", *args, check=True)
    live = json.loads((out / "speller.json").read_text())["results"]["gunsai75"]
    assert live["frames"] == 5 * 45 + 4 * 9 and live["hand_found"] > 0.9
    assert live["decoders"]["evidence"]["signed"] == 5
    assert live["decoders"]["evidence"]["right"] >= 3  # a clearly recorded person, letters the model knows
    run_cli("asl_edge.benchmarks.speller", *args, "--replay", check=True)
    strict = dict(parse_constant=lambda c: pytest.fail(f"speller.json holds a bare {c}: not JSON"))
    again = json.loads((out / "speller.json").read_text(), **strict)["results"]["gunsai75"]
    assert again["hand_found"] is None  # not stored in a trace: null, not NaN
    for name in ("evidence", "hold", "hold:agreement=0", "evidence:slide=0.3"):  # the hand's places stored too
        assert again["decoders"][name]["text"] == live["decoders"][name]["text"]
    assert again["frame_top1"] == pytest.approx(live["frame_top1"])
    assert "| gunsai75 |" in (out / "speller.md").read_text()


def test_missing_recordings_and_traces_are_one_line_errors(tmp_path):
    assert_one_line_error(run_cli("asl_edge.benchmarks.speller", tmp_path / "nobody"), "not found")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_cli("asl_edge.benchmarks.speller", tmp_path / "empty"), "no letter videos")
    assert_one_line_error(run_cli("asl_edge.benchmarks.speller", tmp_path / "empty", "--replay", "--out", tmp_path),
                          "no trace")
