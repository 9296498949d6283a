"""Hand landmarks as the model's second input: the features, the fusion head, the pose and proportions
augmentations, the landmark stage and the contract (tests/test_landmarks_models.py: real models)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asl_edge.runtime.contract import ModelContract
from asl_edge.common.errors import UserError
from asl_edge.runtime.landmarks import (DIRECTION, LANDMARK_FEATURES, PRESENCE, SHAPE_ONLY, for_width, hand_features,
                                        stack)

from onnx_fixtures import fake_hand, make_tiny_onnx, turned


@settings(max_examples=60, deadline=None)
@given(dx=st.floats(-500, 500), dy=st.floats(-500, 500), scale=st.floats(0.2, 8), angle=st.floats(-math.pi, math.pi),
       seed=st.integers(0, 10))
def test_the_shape_ignores_position_scale_and_rotation_and_the_direction_is_the_rotation(dx, dy, scale, angle, seed):
    p = fake_hand(seed)
    moved = turned(p, angle) * scale + (dx, dy, 0)
    a, b = hand_features(moved, "Right"), hand_features(p, "Right")
    np.testing.assert_allclose(a[:PRESENCE + 1], b[:PRESENCE + 1], atol=1e-4)
    np.testing.assert_allclose(b[DIRECTION], [0.0, 1.0], atol=1e-6)  # knuckle straight up: angle 0
    np.testing.assert_allclose(a[DIRECTION], [math.sin(angle), math.cos(angle)], atol=1e-4)


def test_letters_that_differ_only_in_direction_differ_only_in_the_direction():
    """U and H (or K and P, Q and G): the same hand shape pointing up, sideways or down."""
    p = fake_hand(3)
    u, h, down = (hand_features(turned(p, a), "Right") for a in (0.0, math.pi / 2, math.pi))
    for other in (h, down):
        np.testing.assert_allclose(other[:PRESENCE + 1], u[:PRESENCE + 1], atol=1e-5)
    np.testing.assert_allclose([u[DIRECTION], h[DIRECTION], down[DIRECTION]], [[0, 1], [1, 0], [0, -1]], atol=1e-6)


@given(seed=st.integers(0, 50))
def test_a_mirrored_left_hand_looks_like_the_right_hand(seed):
    p = turned(fake_hand(seed), 0.1 * seed - 2)  # leaning: the direction is mirrored too
    mirror = p * (-1, 1, 1)
    a, b = hand_features(p, "Right"), hand_features(mirror, "Left")
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert a[PRESENCE] == 1.0 and a.shape == (LANDMARK_FEATURES,) and a.dtype == np.float32
    assert not np.allclose(hand_features(p, "Right"), hand_features(p, "Left"))  # handedness is not ignored


def test_degenerate_or_missing_hands_are_no_hand():
    flat = np.zeros((21, 3))
    assert not hand_features(flat, "Right").any()
    nan = fake_hand()
    nan[4, 0] = np.nan
    assert not hand_features(nan, "Right").any()
    rows = stack([None, hand_features(fake_hand(), "Right")], 3)
    assert rows.shape == (3, 66) and not rows[0].any() and rows[1, PRESENCE] == 1 and not rows[2].any()
    old = stack([None, hand_features(fake_hand(), "Right")], 2, SHAPE_ONLY)  # what a file of the earlier layout takes
    np.testing.assert_array_equal(old, rows[:2, :64])
    with pytest.raises(UserError, match="width 64"):
        for_width(old, 66)


def test_fusion_head_sums_the_two_classifiers_and_without_a_hand_is_the_image_alone():
    import torch

    from asl_edge.train.models import FusionHead

    torch.manual_seed(0)
    head = FusionHead(16, 5).eval()  # eval: the landmark MLP's dropout off, as in the exported graph
    x = torch.randn(4, 16)
    junk = torch.randn(4, 66)
    junk[:, PRESENCE] = 0  # presence flag off: whatever else is in the row must not matter
    image_only = torch.log_softmax(head.image(x), 1)
    torch.testing.assert_close(head(x, junk), image_only)
    torch.testing.assert_close(head(x, torch.zeros(4, 66)), image_only)
    hand = torch.from_numpy(np.stack([hand_features(fake_hand(i), "Right") for i in range(4)]))
    torch.testing.assert_close(head(x, hand), image_only + torch.log_softmax(head.landmarks(hand), 1))
    # each classifier learns from its own loss: the landmark loss counts only where there is a hand
    y = torch.tensor([0, 1, 2, 3])
    ce = torch.nn.functional.cross_entropy
    head.train()
    torch.testing.assert_close(head.losses(x, junk, y), ce(head.image(x), y, reduction="none"))
    loss = head.losses(x, hand, y).sum()
    loss.backward()
    assert head.image.weight.grad.abs().sum() > 0 and head.landmarks[0].weight.grad.abs().sum() > 0


def test_fusion_head_loads_a_checkpoint_from_before_its_dropout_layers():
    import torch

    from asl_edge.train.models import FusionHead

    head = FusionHead(16, 5).eval()
    old = {k.replace("landmarks.3.", "landmarks.2.").replace("landmarks.6.", "landmarks.4."): v.clone()
           for k, v in head.state_dict().items()}
    assert "landmarks.4.weight" in old and "landmarks.6.weight" not in old
    fresh = FusionHead(16, 5).eval()
    fresh.load_state_dict(old)  # strict: every old key finds its layer
    x, rows = torch.randn(3, 16), torch.from_numpy(np.stack([hand_features(fake_hand(i), "Left") for i in range(3)]))
    torch.testing.assert_close(fresh(x, rows), head(x, rows))


def test_pose_turns_hands_and_normalises_them_again_as_the_runtime_does(monkeypatch):
    from asl_edge.train import augment

    rows = np.stack([hand_features(turned(fake_hand(i), i - 2.5), "Right") for i in range(6)]
                    + [np.zeros(66, np.float32)])
    out = augment.pose(rows, np.random.default_rng(0))
    assert out.shape == rows.shape and out.dtype == np.float32
    assert not out[-1].any()  # no hand stays no hand
    pts = out[:-1, :63].reshape(-1, 21, 3)
    np.testing.assert_allclose(pts[:, 0], 0, atol=1e-6)  # wrist at the origin
    np.testing.assert_allclose(pts[:, 9, :2], np.tile([0.0, -1.0], (6, 1)), atol=1e-5)  # knuckle straight up, unit length
    assert np.all(out[:-1, PRESENCE] == 1) and np.abs(out[:-1] - rows[:-1]).max() > 0.05  # turned: not the same hand
    np.testing.assert_allclose(np.hypot(*out[:-1, DIRECTION].T), 1.0, atol=1e-5)
    np.testing.assert_array_equal(augment.pose(rows, np.random.default_rng(0)), out)  # seeded: reproducible
    np.testing.assert_allclose(augment.pose(rows[:, :64], np.random.default_rng(0)), out[:, :64])  # earlier layout
    # with no turn, depth change or noise it is the runtime's own normalisation of the same hand
    monkeypatch.setattr(augment, "POSE_TURN", (0.0, 0.0, 0.0))
    monkeypatch.setattr(augment, "POSE_DEPTH", 0.0)
    monkeypatch.setattr(augment, "POSE_NOISE", 0.0)
    np.testing.assert_allclose(augment.pose(rows, np.random.default_rng(1)), rows, atol=1e-6)
    # a turn in the frame's plane (roll) is the runtime's row of the hand turned that far: same shape, new direction
    roll, rotations = 0.4, augment._rotations
    monkeypatch.setattr(augment, "_rotations", lambda a: np.tile(rotations(np.array([[0.0, 0.0, roll]])), (len(a), 1, 1)))
    want = np.stack([hand_features(turned(fake_hand(i), i - 2.5 + roll), "Right") for i in range(6)])
    np.testing.assert_allclose(augment.pose(rows, np.random.default_rng(2))[:-1], want, atol=1e-5)


def test_proportions_keep_every_bone_direction_and_scale_its_length_within_the_bounds():
    from asl_edge.train import augment

    hands = np.stack([fake_hand(i) for i in range(5)]).astype(np.float64)
    bones = 0.3
    out = augment.proportions(hands, np.random.default_rng(0), bones)
    np.testing.assert_array_equal(out[:, 0], hands[:, 0])  # the wrist stays
    before = hands[:, 1:] - hands[:, augment.PARENT[1:]]
    after = out[:, 1:] - out[:, augment.PARENT[1:]]
    scale = np.linalg.norm(after, axis=-1) / np.linalg.norm(before, axis=-1)
    np.testing.assert_allclose(after, before * scale[..., None], atol=1e-9)  # same direction, new length
    palm = augment.PALM[1:]
    assert np.all(np.abs(np.log(scale[:, palm])) <= bones / 2 + 1e-9)
    assert np.all(np.abs(np.log(scale[:, ~palm])) <= 1.5 * bones + 1e-9)
    assert np.abs(np.log(scale)).max() > bones / 4  # not the same hand
    # the bones of one finger share its factor: their scales differ by at most the bone factors' range
    fingers = np.log(scale[:, ~palm]).reshape(5, 5, 3)
    assert np.all(np.ptp(fingers, axis=-1) <= bones + 1e-9)
    np.testing.assert_array_equal(augment.proportions(hands, np.random.default_rng(0), bones), out)


def test_the_landmark_stage_learns_hands_ignores_rows_without_one_and_freezes_the_classifier(logged):
    import torch

    from asl_edge.train.landmark_fit import fit_landmark_classifier
    from asl_edge.train.models import FusionHead

    rng = np.random.default_rng(0)
    protos = [fake_hand(seed) for seed in range(3)]  # three hand shapes, one per class
    labels = np.arange(60) % 3
    rows = np.stack([hand_features(protos[c] + rng.normal(0, 2, (21, 3)), "Right") for c in labels])
    rows[::5] = 0  # no hand found: must not count (its label is noise)
    noisy = np.where(np.arange(60) % 5 == 0, (labels + 1) % 3, labels)
    head = FusionHead(4, 3)
    lines = logged
    fit_landmark_classifier(head.landmarks, torch.from_numpy(rows), torch.from_numpy(noisy), torch.ones(60), True, 0)
    assert not any(p.requires_grad for p in head.landmarks.parameters()) and not head.landmarks.training
    with torch.no_grad():
        pred = head.landmarks(torch.from_numpy(rows[labels == noisy])).argmax(1).numpy()
    assert (pred == labels[labels == noisy]).mean() > 0.9 and "48 hands (pose augmentation)" in lines[0]
    untouched = FusionHead(4, 3)
    before = [p.clone() for p in untouched.landmarks.parameters()]
    fit_landmark_classifier(untouched.landmarks, torch.zeros(5, 66), torch.zeros(5, dtype=torch.long), torch.ones(5),
                            True, 0)
    assert "no hand" in lines[-1] and all(torch.equal(a, b) for a, b in zip(before, untouched.landmarks.parameters()))


def test_contract_landmarks_field():
    c = ModelContract()
    assert "landmarks" not in c.to_dict()  # image-only contracts are unchanged (and so are cache keys)
    d = c.with_landmarks(66)
    assert ModelContract.from_json(d.to_json()).landmarks == 66
    assert ModelContract.from_json(c.with_landmarks(64).to_json()).landmarks == 64  # files of the earlier layout
    for bad in (3, -1, 65, True, "66"):
        with pytest.raises(UserError, match="landmarks"):
            ModelContract(landmarks=bad)
    assert "agreement" not in d.to_dict()  # files from before the agreement output are unchanged
    assert ModelContract.from_json(d.with_agreement(True).to_json()).agreement is True
    for bad in ("yes", 1):
        with pytest.raises(UserError, match="agreement"):
            d.with_agreement(bad)
    with pytest.raises(UserError, match="agreement"):
        c.with_agreement(True)  # an image-only model has no second classifier to agree with


def test_a_contract_that_promises_landmarks_to_a_one_input_graph_is_refused(tmp_path):
    from asl_edge.runtime.model import OnnxClassifier

    path = make_tiny_onnx(tmp_path / "m.onnx", ModelContract(input_size=64, landmarks=66))
    with pytest.raises(UserError, match="does not match its graph"):
        OnnxClassifier(path)
