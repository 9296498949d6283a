"""The landmark-only study's normalisation: the same hand anywhere, any size, tilted or mirrored."""
import numpy as np

from asl_edge.benchmarks.studies.landmark_lopo import normalise


def test_normalised_landmarks_ignore_position_scale_rotation_and_handedness():
    rng = np.random.default_rng(0)
    hand = rng.normal(0, 50, (21, 3)) + [300, 200, 0]
    ref = normalise(hand, "Right").reshape(21, 3)
    np.testing.assert_allclose(ref[9, :2], [0, -1], atol=1e-6)   # wrist -> middle knuckle points up, length 1
    t = 0.7
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    moved = hand.copy()
    moved[:, :2] = (hand[:, :2] - [300, 200]) @ rot.T * 2.5 + [10, 20]
    moved[:, 2] *= 2.5
    np.testing.assert_allclose(normalise(moved, "Right"), ref.ravel(), atol=1e-5)
    mirrored = hand * [-1, 1, 1]
    np.testing.assert_allclose(normalise(mirrored, "Left"), ref.ravel(), atol=1e-5)
    other = rng.normal(0, 50, (21, 3))
    assert np.abs(normalise(other, "Right") - ref.ravel()).max() > 0.1
