"""The landmark-only study: leave one source out, shape alone against shape + direction."""
import math

import numpy as np

from asl_edge.benchmarks.studies.landmark_lopo import layout_scores
from asl_edge.runtime.landmarks import hand_features


def _source(seed, n=40):
    """Two classes of one hand shape: pointing up (class 0) or sideways (class 1), like U and H; a
    third of another shape. Each source tilts and sizes its hands its own way (another signer)."""
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(99).normal(0, 30, (21, 3))
    base[0], base[9] = 0, (0, -80, 0)
    other = np.random.default_rng(98).normal(0, 30, (21, 3))
    other[0], other[9] = 0, (0, -80, 0)
    rows, labels = [], []
    for i in range(n):
        y = i % 3
        p = (other if y == 2 else base) + rng.normal(0, 2, (21, 3))
        a = (math.pi / 2 if y == 1 else 0.0) + rng.normal(0, 0.15)
        c, s = math.cos(a), math.sin(a)
        p[:, :2] = p[:, :2] @ np.array([[c, -s], [s, c]]).T * rng.uniform(0.5, 2)
        rows.append(hand_features(p, "Right"))
        labels.append(y)
    return np.array(rows), np.array(labels), n


def test_the_direction_tells_apart_what_the_shape_alone_cannot():
    sources = [_source(s) for s in range(3)]
    shape = layout_scores(sources, 64, [0], 3)
    direction = layout_scores(sources, 66, [0], 3)
    assert direction["per_source"].min() > 95  # every left-out source: up and sideways told apart
    assert shape["per_source"].max() < 85  # without the direction, classes 0 and 1 are a coin toss
    assert direction["per_class"][1] > 0.95 and shape["per_class"][2] > 0.95  # the other shape: both see it


def test_the_landmark_weight_is_chosen_on_the_other_folds_only():
    from asl_edge.benchmarks.studies.landmark_stage import fused_accuracy, nested_weights

    acc = np.array([[0.5, 0.6, 0.9],   # w = 0.5
                    [0.6, 0.7, 0.1]])  # w = 2
    # fold 2 alone wants 0.5, the others 2: fold 2 gets the others' choice, folds 0 and 1 a mean with fold 2 in it
    assert nested_weights(acc, [0.5, 2.0]) == [0.5, 0.5, 2.0]
    # fused top-1: the image says class 0, the landmarks class 1 with more confidence; weight 0 is the image alone
    image, own = np.array([[2.0, 0.0]] * 4), np.array([[0.0, 3.0]] * 4)
    rows = np.zeros((4, 66), np.float32)
    rows[:2, 63] = 1  # a hand in the first two rows only
    fold = {"image": image, "own": own, "rows": rows, "y": np.array([1, 1, 0, 0])}
    assert fused_accuracy(fold, 0.0) == 0.5 and fused_accuracy(fold, 1.0) == 1.0


def test_the_study_adds_a_row_per_proportions_setting_and_leaves_the_augmentation_off(monkeypatch):
    from click.testing import CliRunner

    from asl_edge.benchmarks.studies import landmark_lopo
    from asl_edge.train import augment, landmark_fit

    seen = []
    monkeypatch.setattr(landmark_fit, "STEPS", 20)
    monkeypatch.setattr(landmark_lopo, "source_rows", lambda path, i, *_: _source(i, n=30))
    monkeypatch.setattr(landmark_fit, "pose", lambda rows, rng: seen.append(augment.POSE_BONES) or augment.pose(rows, rng))
    out = CliRunner().invoke(landmark_lopo.main, ["--data", "a", "--data", "b", "--data", "c", "--bones", "0.2"])
    assert out.exit_code == 0, out.output
    table = [line for line in out.output.splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0] for line in table[1:4]] == ["| shape (64: earlier layout)", "| shape + direction (66)",
                                                              "| 66, proportions +-0.2"]
    assert set(seen) == {0.0, 0.2} and augment.POSE_BONES == 0.0  # the last row only, then off again


def test_the_mirror_average_is_the_mean_of_both_crops_log_probabilities():
    from asl_edge.export.temperature import log_softmax
    from asl_edge.benchmarks.studies.landmark_stage import fused_accuracy, mirror_averaged

    rng = np.random.default_rng(0)
    fold = {"image": rng.normal(size=(6, 4)), "image_flip": rng.normal(size=(6, 4)), "own": np.zeros((6, 4)),
            "rows": np.zeros((6, 66), np.float32), "y": np.arange(6) % 4}
    both = mirror_averaged(fold)
    np.testing.assert_allclose(np.exp(both["image"]).sum(1) <= 1 + 1e-9, True)
    np.testing.assert_allclose(both["image"], (log_softmax(fold["image"], 1.0) + log_softmax(fold["image_flip"], 1.0)) / 2)
    assert both["own"] is fold["own"] and "image" in fold and fold["image"] is not both["image"]
    # a crop the image gets wrong and its mirror gets right with more confidence: the average is right
    fold = {"image": np.array([[1.0, 0.0]]), "image_flip": np.array([[0.0, 3.0]]), "own": np.zeros((1, 2)),
            "rows": np.zeros((1, 66), np.float32), "y": np.array([1])}
    assert fused_accuracy(fold, 1.0) == 0.0 and fused_accuracy(mirror_averaged(fold), 1.0) == 1.0
