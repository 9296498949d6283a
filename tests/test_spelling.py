"""The fingerspelling state machine, driven by label sequences (no model, no camera)."""
import pytest

from asl_edge.runtime.spelling import AGREEMENT_WEIGHT, EvidenceSpeller, Hold, Speller, make_speller


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


# --- the evidence decoder (mean probabilities over a window) ------------------------------

CLASSES = ("A", "B", "L", "nothing")


def probs(**p):
    rest = max(0.0, 1 - sum(p.values()))
    v = [p.get(c, 0.0) for c in CLASSES]
    v[CLASSES.index("nothing")] += rest
    return v


def feed_probs(sp, seq, dt=0.1):
    """seq: (probs, agree) items at dt seconds apart -> accepted labels."""
    out = []
    for i, (p, agree) in enumerate(seq):
        got = sp.update_probs(p, CLASSES, now=i * dt, agree=agree)
        if got is not None:
            out.append(got)
    return out


def test_evidence_types_a_letter_that_mostly_wins_where_the_hold_rule_types_nothing():
    """A letter right on 3 frames of 4, the 4th a flicker to another letter: the hold rule keeps
    starting over; the window's mean still leads by the margin."""
    seq = [(probs(A=0.9), True) if i % 4 else (probs(B=0.8, A=0.1), True) for i in range(20)]
    ev = EvidenceSpeller(threshold=0.6, window="0.5s", margin=0.3)
    assert feed_probs(ev, seq) == ["A"] and ev.text == "A"
    hold = Speller(threshold=0.7, hold="0.5s")
    assert feed_probs(hold, seq) == []


def test_evidence_needs_a_full_window_a_margin_and_types_a_held_letter_once():
    ev = EvidenceSpeller(threshold=0.6, window="0.5s", margin=0.3)
    got = []
    for i in range(30):
        r = ev.update_probs(probs(A=0.95), CLASSES, now=i * 0.1)
        got.append(r)
    assert got.index("A") == 5 and got.count("A") == 1  # frames 0..5 span 0.5 s
    close = EvidenceSpeller(threshold=0.4, window="0.3s", margin=0.3)
    assert feed_probs(close, [(probs(A=0.5, B=0.45), True)] * 20) == []  # no clear leader


def test_evidence_disagreeing_frames_count_less_not_zero():
    seq = [(probs(A=0.8), False)] * 10
    assert feed_probs(EvidenceSpeller(threshold=0.6, disagree_weight=0.5), seq) == ["A"]
    # mixed with agreeing frames of another letter, the agreeing ones weigh more
    mixed = [(probs(A=0.9), False), (probs(B=0.9), True)] * 10
    assert feed_probs(EvidenceSpeller(threshold=0.55, margin=0.1, disagree_weight=0.5), mixed) == ["B"]


def test_evidence_double_letter_after_a_gap_and_release():
    ev = EvidenceSpeller(threshold=0.6, window=Hold(3, "frames"), margin=0.3)
    seq = [probs(L=0.95)] * 5 + [probs()] * 4 + [probs(L=0.95)] * 5
    out = [ev.update_probs(p, CLASSES) for p in seq]
    assert [o for o in out if o] == ["L", "L"] and ev.text == "LL"
    ev.reset()
    steady = [probs(L=0.95)] * 5 + [probs(L=0.5, A=0.2)] * 3 + [probs(L=0.95)] * 5  # never under release
    assert [o for o in (ev.update_probs(p, CLASSES) for p in steady) if o] == ["L"]


@pytest.mark.parametrize("gap_s, text", [(0.3, "L"), (0.8, "LL")])
def test_evidence_defaults_type_a_double_after_the_gap_docs_run_md_gives(gap_s, text):
    """docs/run.md tells a user to drop the hand for about 0.8 s between the two letters of a double."""
    sp, fps = make_speller("evidence"), 30
    seq = [probs(L=0.95)] * 45 + [probs()] * round(gap_s * fps) + [probs(L=0.95)] * 45
    for i, p in enumerate(seq):
        sp.update_probs(p, CLASSES, now=i / fps)
    assert sp.text == text


def test_evidence_motion_letters_replace_their_start_pose():
    ev = EvidenceSpeller(threshold=0.6, window=Hold(2, "frames"))
    for p in [probs(A=0.9)] * 3:
        ev.update_probs(p, ("I",) + CLASSES[1:], now=1.0)
    assert ev.text == "I"
    ev.type_motion("J", replaces=("I",), within=1.0, now=1.5)
    assert ev.text == "J"


def test_evidence_a_motion_is_not_typed_over_another_letter_held_clearly():
    """The fingertip's path says Z, but the evidence is a clear Q: a hand holding Q (its index finger
    pointing, the hand drifting) is not drawing Z. Without a clear other letter the motion types."""
    classes = ("Q", "Z", "nothing")

    def fed(speller, q, z):
        for _ in range(6):
            speller.update_probs([q, z, 1 - q - z], classes, now=1.0)
        return speller

    ev = fed(EvidenceSpeller(threshold=0.6, window=Hold(3, "frames")), 0.95, 0.0)
    assert ev.text == "Q" and ev.type_motion("Z", replaces=("Z",), within=1.0, now=1.5) is None and ev.text == "Q"
    off = fed(EvidenceSpeller(threshold=0.6, window=Hold(3, "frames"), motion_veto=False), 0.95, 0.0)
    assert off.type_motion("Z", replaces=("Z",), within=1.0, now=1.5) == "Z" and off.text == "QZ"
    unclear = fed(EvidenceSpeller(threshold=0.6, window=Hold(3, "frames")), 0.5, 0.4)
    assert unclear.type_motion("Z", replaces=("Z",), within=1.0, now=1.5) == "Z"


def test_evidence_a_letter_of_its_own_threshold():
    """A per-letter threshold (benchmarks/studies/letter_thresholds.py) moves only that letter's bar."""
    seq = [(probs(A=0.75), True)] * 10
    assert feed_probs(EvidenceSpeller(threshold=0.7, margin=0.3), seq) == ["A"]
    assert feed_probs(make_speller("evidence", threshold=0.7, margin=0.3, letter_thresholds={"A": 0.8}), seq) == []
    assert feed_probs(EvidenceSpeller(threshold=0.7, margin=0.3, letter_thresholds={"B": 0.9}), seq) == ["A"]
    own = EvidenceSpeller(threshold=0.7, margin=0.3, letter_thresholds={"A": 0.8})
    feed_probs(own, seq)
    assert own.progress() == pytest.approx(0.75 / 0.8)
    low = [(probs(B=0.6), True)] * 10
    assert feed_probs(EvidenceSpeller(threshold=0.7, margin=0.1), low) == []
    assert feed_probs(EvidenceSpeller(threshold=0.7, margin=0.1, letter_thresholds={"B": 0.55}), low) == ["B"]


@pytest.mark.parametrize("kw", [dict(threshold=float("nan")), dict(margin=2), dict(disagree_weight=-1),
                                dict(letter_thresholds={"A": 1.5}), dict(letter_thresholds={"A": float("nan")})])
def test_evidence_rejects_bad_settings(kw):
    with pytest.raises(ValueError):
        EvidenceSpeller(**kw)


def test_make_speller_defaults_and_names():
    ev = make_speller("evidence")
    assert isinstance(ev, EvidenceSpeller) and (ev.threshold, ev.margin, str(ev.hold)) == (0.6, 0.3, "0.9s")
    assert ev.disagree_weight == 1.0 and ev.still_speed is None and ev.release == 0.3
    hold = make_speller("hold")
    assert type(hold) is Speller and hold.threshold == 0.7 and str(hold.hold) == "0.6s" and hold.require_agreement
    assert make_speller("evidence", weight=0.25).disagree_weight == 0.25
    with pytest.raises(ValueError):
        make_speller("vote")


def test_agreement_asked_or_not_reaches_each_decoder_its_own_way():
    """--agreement / --no-agreement / neither (None): the hold rule asks for agreement unless told not to;
    the evidence decoder counts disagreeing frames fully unless asked, then at AGREEMENT_WEIGHT; an
    explicit weight wins."""
    assert make_speller("evidence", require_agreement=True).disagree_weight == AGREEMENT_WEIGHT < 1.0
    assert make_speller("evidence", require_agreement=False).disagree_weight == 1.0
    assert make_speller("evidence", require_agreement=True, weight=0.8).disagree_weight == 0.8
    assert make_speller("hold", require_agreement=None).require_agreement
    assert not make_speller("hold", require_agreement=False).require_agreement
    # a letter read on every frame but agreed on by the two classifiers on only 2 frames of 6
    seq = [(probs(A=0.8), i % 3 == 0) for i in range(6)]
    assert feed_probs(EvidenceSpeller(threshold=0.6, window=Hold(6, "frames")), seq) == ["A"]
    asked = make_speller("evidence", threshold=0.6, hold=Hold(6, "frames"), require_agreement=True)
    assert feed_probs(asked, seq) == ["A"]  # evidence, not a veto: the weighted mean is still 0.8
    mixed = [(probs(A=0.8), True)] * 3 + [(probs(B=0.8), False)] * 3
    assert feed_probs(make_speller("evidence", threshold=0.5, margin=0.2, hold=Hold(6, "frames"),
                                   require_agreement=True), mixed) == ["A"]
    assert feed_probs(make_speller("evidence", threshold=0.5, margin=0.2, hold=Hold(6, "frames")), mixed) == []


def test_evidence_weighs_a_moving_hand_less():
    """A letter the classifier reads while the hand moves fast (between letters, drawing Z) counts
    less than the same letter held still."""
    moving = [(probs(A=0.9), True)] * 3 + [(probs(B=0.9), True)] * 3
    speeds = [0.2, 0.2, 0.2, 6.0, 6.0, 6.0]

    def run(still):
        ev = EvidenceSpeller(threshold=0.5, window=Hold(6, "frames"), margin=0.2, still_speed=still)
        return [ev.update_probs(p, CLASSES, agree=a, speed=v) for (p, a), v in zip(moving, speeds)]

    assert [x for x in run(None) if x] == []     # half A, half B: no leader
    assert [x for x in run(1.0) if x] == ["A"]   # the fast B frames weigh little
    with pytest.raises(ValueError):
        EvidenceSpeller(still_speed=0)


def test_evidence_types_a_doubled_letter_when_the_hand_slides_aside():
    """LL is signed by sliding the hand aside: with `slide`, moving that many hand sizes from where L was
    typed lets the L held there be typed again; a hand that stays (or drifts less) types it once."""
    def run(path, slide=0.5):
        ev = EvidenceSpeller(threshold=0.6, window=Hold(4, "frames"), margin=0.2, slide=slide)
        for x in path:
            ev.update_probs(probs(L=0.9), CLASSES, place=None if x is None else (x, 50.0, 100.0))
        return ev.text

    still = [10.0] * 20
    slid = [10.0] * 8 + [30.0, 50.0, 70.0] + [70.0] * 9  # 60 pixels = 0.6 hand sizes of 100 pixels
    drift = [10.0 + 2 * i for i in range(20)]  # 38 pixels over the hold
    assert run(still) == "L" and run(drift) == "L"
    assert run(slid) == "LL"
    assert run(slid, slide=None) == "L" and run(slid, slide=0.7) == "L"
    assert run([None] * 8 + [70.0] * 12) == "L"  # without the hand's place, nothing to measure
    # the slide's frames start the window afresh: L is typed again only after a full window there
    ev = EvidenceSpeller(threshold=0.6, window=Hold(4, "frames"), margin=0.2, slide=0.5)
    typed = [ev.update_probs(probs(L=0.9), CLASSES, place=(x, 50.0, 100.0)) for x in slid]
    assert [i for i, t in enumerate(typed) if t] == [3, 13]  # slid at frame 10: frames 10-13
    with pytest.raises(ValueError):
        EvidenceSpeller(slide=-1)
    assert make_speller("evidence", slide=0.5).slide == 0.5 and make_speller("evidence", slide=0).slide is None


def test_hand_speed_in_hand_sizes_per_second():
    import numpy as np

    from asl_edge.runtime.motion import HandSpeed
    hand = np.zeros((21, 2))
    hand[9] = (0, -100)          # wrist -> middle knuckle: 100 px
    hand[1:9] = np.random.default_rng(0).uniform(-50, 50, (8, 2))
    meter = HandSpeed()
    assert meter.update(hand, 0.0) is None
    assert meter.update(hand + (30, 0), 0.1) == pytest.approx(3.0)  # 30 px in 0.1 s = 3 hand sizes / s
    assert meter.update(None, 0.2) is None and meter.update(hand, 0.3) is None  # lost hand: start again
