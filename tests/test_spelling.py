"""The fingerspelling state machine, driven by label sequences (no model, no camera)."""
import pytest

from asl_edge.runtime.spelling import Hold, Speller


def feed(speller, seq, prob=0.95):
    """seq items: a label, or (label, prob). Returns the accepted labels in order."""
    accepted = []
    for item in seq:
        label, p = item if isinstance(item, tuple) else (item, prob)
        got = speller.update(label, p)
        if got is not None:
            accepted.append(got)
    return accepted


def frames(hold, rearm=None, threshold=0.7):
    return Speller(threshold=threshold, hold=Hold(hold, "frames"),
                   rearm=None if rearm is None else Hold(rearm, "frames"))


def test_letter_is_accepted_after_hold_frames():
    sp = frames(3)
    assert feed(sp, ["A", "A"]) == []
    assert sp.update("A", 0.9) == "A"
    assert sp.text == "A"


def test_held_letter_is_typed_once():
    sp = frames(3)
    feed(sp, ["A"] * 30)
    assert sp.text == "A"


def test_interrupted_hold_starts_over():
    sp = frames(3, rearm=1)
    assert feed(sp, ["A", "A", "B", "A", "A"]) == []
    assert sp.update("A", 0.9) == "A"


def test_different_letters_follow_each_other():
    sp = frames(3)
    feed(sp, ["H"] * 3 + ["I"] * 3)
    assert sp.text == "HI"


def test_nothing_rearms_for_a_double_letter():
    sp = frames(3, rearm=2)
    feed(sp, ["L"] * 4 + ["nothing"] * 2 + ["L"] * 3)
    assert sp.text == "LL"


def test_one_frame_flicker_does_not_rearm():
    sp = frames(6, rearm=2)
    feed(sp, ["L"] * 6 + ["K"] + ["L"] * 6)
    assert sp.text == "L"


def test_low_confidence_is_ignored_and_rearms():
    sp = frames(3, rearm=2)
    assert feed(sp, [("A", 0.5)] * 10) == []
    feed(sp, ["A"] * 3 + [("A", 0.3)] * 2 + ["A"] * 3)
    assert sp.text == "AA"


def test_threshold_is_inclusive():
    sp = frames(2, threshold=0.7)
    feed(sp, [("B", 0.7)] * 2)
    assert sp.text == "B"


def test_space_and_del():
    sp = frames(2, rearm=1)
    feed(sp, ["H", "H", "I", "I", "space", "space", "nothing", "X", "X", "del", "del"])
    assert sp.text == "HI "
    feed(sp, ["nothing", "del", "del", "nothing", "del", "del"])
    assert sp.text == "H"


def test_del_on_empty_text_and_nothing_never_types():
    sp = frames(2)
    feed(sp, ["del"] * 3 + ["nothing"] * 5)
    assert sp.text == ""


def test_hold_in_seconds_uses_given_timestamps():
    sp = Speller(threshold=0.7, hold="0.5s")
    for t in (0.0, 0.1, 0.2, 0.3, 0.4):
        assert sp.update("A", 0.9, now=t) is None
    assert sp.update("A", 0.9, now=0.5) == "A"
    # re-arm takes a third of the hold (about 0.17 s) away from A
    sp.update("nothing", 0.9, now=0.6)
    sp.update("nothing", 0.9, now=0.7)
    assert [sp.update("A", 0.9, now=0.8 + i / 10) for i in range(6)][-1] == "A"
    assert sp.text == "AA"


def test_progress_and_reset():
    sp = frames(4)
    feed(sp, ["A", "A"])
    assert sp.progress() == pytest.approx(0.5)
    sp.reset()
    assert sp.text == "" and sp.progress() == 0.0


@pytest.mark.parametrize("text,expected", [("8", Hold(8, "frames")), ("0.6s", Hold(0.6, "seconds")),
                                           (" 2S ", Hold(2.0, "seconds"))])
def test_hold_parse(text, expected):
    assert Hold.parse(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "abc", "1.5", "s", "0s"])
def test_hold_parse_rejects(text):
    with pytest.raises(ValueError):
        Hold.parse(text)


def test_seconds_survive_float_rounding_of_video_time():
    sp = Speller(threshold=0.7, hold="0.5s")
    got = [sp.update("B", 0.9, now=i / 10) for i in range(9, 15)]  # 1.4 - 0.9 < 0.5 in floats
    assert got[-1] == "B"


def test_a_frame_whose_two_views_differ_is_not_confident():
    """agree=False (the image and landmark classifiers named different classes) breaks a hold like a
    low-probability frame; agreeing frames type as before."""
    sp = frames(3)
    sp.update("A", 0.99)
    sp.update("A", 0.99)
    assert sp.update("A", 0.99, agree=False) is None
    assert [sp.update("A", 0.99, agree=True) for _ in range(3)] == [None, None, "A"]
    assert sp.text == "A"


def test_without_required_agreement_a_confident_frame_counts_whatever_the_views_say():
    sp = Speller(threshold=0.7, hold=Hold(3, "frames"), require_agreement=False)
    assert [sp.update("A", 0.99, agree=False) for _ in range(3)] == [None, None, "A"]
