"""J and Z from synthesised landmark tracks: a hand model moved so one fingertip draws a path."""
import numpy as np
import pytest

from asl_edge.runtime.contract import ModelContract
from asl_edge.runtime.model import Scores
from asl_edge.runtime.motion import finger_states, hand_place
from asl_edge.runtime.spelling import Hold, Speller

from asl_edge.benchmarks.hand_tracks import (FPS, J_HAND, OPEN, STILL, Z_HAND, Z_PATH, j_path,
                                                       polyline, spot, track)


def test_synthetic_hand_shapes_read_as_intended():
    assert finger_states(J_HAND) == {"index": False, "middle": False, "ring": False, "pinky": True}
    assert finger_states(OPEN) == dict.fromkeys(("index", "middle", "ring", "pinky"), True)


@pytest.mark.parametrize("size,at,mirror,angle", [(80, (320, 240), False, 0.0), (30, (50, 400), False, 0.2),
                                                  (300, (900, 500), True, -0.2), (120, (200, 100), True, 0.0)])
def test_j_hook_and_z_zigzag_at_any_size_position_and_side(size, at, mirror, angle):
    rng = np.random.default_rng(size)
    for shape, tip, path, letter in ((J_HAND, 20, j_path(), "J"), (Z_HAND, 8, Z_PATH, "Z")):
        frames = track(shape, tip, path, size, at, mirror, angle)
        assert spot(frames) == [letter]
        noisy = [f + rng.normal(0, 0.015 * size, f.shape) for f in frames]  # landmark noise
        assert spot(noisy) == [letter]


def test_motion_after_a_still_start_is_found_once():
    path = np.concatenate([STILL, Z_PATH, np.repeat(Z_PATH[-1:], 30, 0)])
    assert spot(track(Z_HAND, 8, path)) == ["Z"]


def test_still_hands_and_jitter_type_nothing():
    rng = np.random.default_rng(0)
    for shape, tip in ((J_HAND, 20), (Z_HAND, 8), (OPEN, 8)):
        assert spot(track(shape, tip, STILL)) == []
        for _ in range(20):
            jitter = rng.normal(0, 0.04, (60, 2))  # landmark noise: 4% of the hand's size
            frames = [f + rng.normal(0, 0.02 * 80, f.shape) for f in track(shape, tip, jitter)]
            assert spot(frames) == []


def test_random_wandering_hands_type_nothing():
    # Drifting up to 0.03 hand sizes a frame (about a hand a second). Faster random wandering
    # can trace a J now and then (measured: benchmarks/RESULTS.md, "J and Z as motions").
    rng = np.random.default_rng(1)
    for _ in range(25):
        walk = np.cumsum(rng.normal(0, 0.03, (60, 2)), axis=0)
        for shape, tip in ((J_HAND, 20), (Z_HAND, 8)):
            assert spot(track(shape, tip, walk)) == []


def test_wrong_hand_shape_or_wrong_path_types_nothing():
    assert spot(track(OPEN, 8, Z_PATH)) == []            # an open hand waving
    assert spot(track(OPEN, 20, j_path())) == []
    assert spot(track(Z_HAND, 8, j_path())) == []        # index drawing a hook is not J
    assert spot(track(J_HAND, 20, Z_PATH)) == []         # pinky drawing a Z is not Z
    straight = polyline([(0, 0), (0, 1.5)])
    across = polyline([(0, 0), (1.5, 0), (0, 0), (1.5, 0)])  # back and forth, no diagonal
    assert spot(track(J_HAND, 20, straight)) == []
    assert spot(track(Z_HAND, 8, across)) == []
    assert spot(track(Z_HAND, 8, Z_PATH * 0.25)) == []   # too small: a twitch


def test_lost_hand_breaks_the_path():
    frames = track(Z_HAND, 8, Z_PATH)
    half = len(frames) // 2
    assert spot(frames[:half] + [None] + frames[half:]) == []


def test_speller_types_motion_and_replaces_its_start_pose():
    sp = Speller(threshold=0.7, hold=Hold(3, "frames"))
    for i in range(4):
        sp.update("H", 0.9, now=i)
    for i in range(4, 8):
        sp.update("I", 0.9, now=i)       # J starts as I: typed while the hand was still
    assert sp.text == "HI"
    assert sp.type_motion("J", ("I", "J"), within=1.5, now=7.5) == "J"
    assert sp.text == "HJ"
    for i in range(8, 20):
        sp.update("J", 0.9, now=i)       # the still end pose does not type J again
    assert sp.text == "HJ"


def test_speller_keeps_other_letters_and_older_ones():
    sp = Speller(threshold=0.7, hold=Hold(3, "frames"))
    for i in range(4):
        sp.update("I", 0.9, now=i)
    sp.type_motion("J", ("I", "J"), within=1.5, now=10)   # the I was typed 7 s before
    for i in range(11, 15):
        sp.update("A", 0.9, now=i)
    sp.type_motion("Z", ("Z",), within=1.5, now=15)        # A is not Z's pose
    assert sp.text == "IJAZ"


class _Contract(ModelContract):
    def preprocess(self, rgb):
        return np.zeros((3, 4, 4), np.float32)


class _AlwaysI:
    """A classifier that sees I (J's start pose) on every frame."""
    classes, contract = ("I", "J"), _Contract()

    def classify(self, x, landmarks=None):
        logits = np.array([[5.0, 0.0]])
        return Scores(logits, self.contract.probabilities(logits), np.array([True]), None)

    def top_k(self, probs, k):
        return [(self.classes[i], float(probs[i])) for i in np.argsort(-probs)[:k]]


class _Frames:
    live = False  # a video file: it ends by itself

    def __init__(self, n):
        self.t = [i / FPS for i in range(n)]

    def read(self):
        return (np.zeros((480, 640, 3), np.uint8), self.t.pop(0)) if self.t else None


class _ScriptedFinder:
    """Hands the live loop one landmark frame per call, as the hand finder would."""
    margin = 0.25

    def __init__(self, frames):
        self.frames, self.hand = list(frames), None

    def locate(self, rgb):
        from asl_edge.runtime.hands.roi import FoundHand

        lm = self.frames.pop(0)
        self.hand = None if lm is None else type("Hand", (), {"landmarks": lm})()
        return None if lm is None else FoundHand(self.hand, (200, 150, 100, 100), (200, 150, 100, 100))


def test_live_loop_spells_j_from_the_tracked_pinky():
    import io

    from asl_edge.runtime.camera import GuideBox
    from asl_edge.runtime.hands import HandRoi
    from asl_edge.runtime.live import run_live

    frames = track(J_HAND, 20, np.concatenate([np.zeros((25, 2)), j_path(), np.repeat(j_path()[-1:], 10, 0)]))
    roi = HandRoi(_ScriptedFinder(frames), GuideBox())
    speller = Speller(threshold=0.7, hold="0.5s")
    run_live(_AlwaysI(), _Frames(len(frames)), speller, roi, out=io.StringIO())
    assert speller.text == "J"   # the I held before the motion became the J


def _spot_one_start_at_a_time(spotter):
    """The spotter's search as it was first written (every start, every test in turn): the reference."""
    from asl_edge.runtime.motion import MIDDLE_MCP, SHAPES, WRIST, is_j, is_z, strokes

    lms = np.stack([f[1] for f in spotter._frames])
    size = float(np.median(np.linalg.norm(lms[:, MIDDLE_MCP] - lms[:, WRIST], axis=1)))
    if size < 1e-6:
        return None
    fits = {letter: np.array([f[2][letter] for f in spotter._frames]) for letter in SHAPES}
    for start in range(0, len(lms) - spotter.min_frames + 1):
        for letter, test in (("Z", is_z), ("J", is_j)):
            if fits[letter][start:].mean() < spotter.shape_share:
                continue
            tip = lms[start:, SHAPES[letter]["tip"]]
            path = (tip - tip[0]) / size
            if np.hypot(path[:, 0], path[:, 1]).max() < spotter.min_len:
                continue
            found = strokes(path, spotter.tolerance, spotter.min_stroke)
            if test(found, spotter.min_len) and spotter._direct(path, found):
                return letter
    return None


@pytest.mark.parametrize("seed", range(12))
def test_the_vectorised_search_finds_what_the_one_start_at_a_time_search_finds(seed):
    """Random walks of both hand shapes, and J and Z drawn at random places in them: frame by frame the
    spotter's answer equals the reference search's."""
    from asl_edge.runtime.motion import MotionSpotter, shape_fits

    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0, 0.06, (80, 2)), axis=0)
    at = rng.integers(10, 40)
    shape, tip, drawn = [(J_HAND, 20, j_path()), (Z_HAND, 8, Z_PATH)][seed % 2]
    path = np.concatenate([walk[:at], walk[at - 1] + drawn, walk[at:] - walk[at] + walk[at - 1] + drawn[-1]])
    frames = track(shape, tip, path, mirror=bool(seed % 3 == 0), angle=float(rng.normal(0, 0.2)))
    fast, answers = MotionSpotter(), []
    for i, lm in enumerate(frames):
        lm = np.asarray(lm, float)[:, :2]
        fast._frames.append((i / FPS, lm, {letter: shape_fits(lm, letter) for letter in ("J", "Z")}))
        while i / FPS - fast._frames[0][0] > fast.window_s:
            fast._frames.popleft()
        got, want = fast._spot(), _spot_one_start_at_a_time(fast)
        assert got == want, (i, got, want)
        answers.append(got)
        if got is not None:
            fast.reset()
    assert any(answers), "the drawn letter was never seen: the comparison tested nothing"


def test_hand_place_is_the_palm_centre_and_the_hand_size():
    lm = np.zeros((21, 3))
    lm[[5, 9, 13, 17], 0] = 10.0  # the knuckles 10 pixels right of the wrist
    lm[9] = (0.0, -20.0, 0.0)     # the middle knuckle 20 pixels above it
    assert hand_place(lm) == pytest.approx((6.0, -4.0, 20.0))
    assert hand_place(None) is None and hand_place(np.zeros((21, 2))) is None
