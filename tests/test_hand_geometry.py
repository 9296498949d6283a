"""The landmark classifier's geometry features (train/hand_geometry.py): what they read, what they
ignore, and checkpoints with and without them."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from asl_edge.runtime.landmarks import LANDMARK_FEATURES, PRESENCE, hand_features, normalise
from asl_edge.train.hand_geometry import FINGER_BASES, FINGERTIPS, GEOMETRY_FEATURES, JOINTS, TIP_PAIRS, HandGeometry

from onnx_fixtures import fake_hand

FLEXION = slice(LANDMARK_FEATURES, LANDMARK_FEATURES + len(JOINTS))
SPREAD = slice(LANDMARK_FEATURES + len(JOINTS), LANDMARK_FEATURES + GEOMETRY_FEATURES)


def open_hand(bend_index_deg: float = 0.0) -> np.ndarray:
    """Wrist at the origin, five straight fingers pointing up (y down in the frame), fanned out; the index
    finger's middle joint (between its points 6 and 7) bent by `bend_index_deg` towards the camera."""
    p = np.zeros((21, 3))
    for f, base in enumerate(FINGER_BASES):
        x = (f - 2) * 20.0
        p[base] = (x, -80.0, 0.0)
        for k in range(1, 4):
            p[base + k] = p[base + k - 1] + (0.0, -25.0, 0.0)
    a = math.radians(bend_index_deg)
    for j in (7, 8):  # points past the bent joint turn about it
        d = p[j] - p[6]
        p[j] = p[6] + (d[0], d[1] * math.cos(a), -d[1] * math.sin(a))
    return p


def geometry(points: np.ndarray) -> np.ndarray:
    return HandGeometry()(torch.from_numpy(hand_features(points, "Right"))[None]).numpy()[0]


def test_straight_fingers_read_1_and_a_right_angle_reads_0():
    straight, bent = geometry(open_hand()), geometry(open_hand(90))
    assert straight.shape == (LANDMARK_FEATURES + GEOMETRY_FEATURES,)
    np.testing.assert_allclose(straight[:LANDMARK_FEATURES], hand_features(open_hand(), "Right"))  # the row passes
    # every joint straight except each finger's first, from the wrist's bone to the finger's first bone
    firsts = [i for i, (a, _) in enumerate(JOINTS) if a in FINGER_BASES]
    others = [i for i in range(len(JOINTS)) if i not in firsts]
    np.testing.assert_allclose(straight[FLEXION][others], 1.0, atol=1e-5)
    changed = np.flatnonzero(np.abs(bent[FLEXION] - straight[FLEXION]) > 1e-4)
    assert list(changed) == [JOINTS.index((6, 7))]  # the bone ending at 7 turned; the next one turned with it
    np.testing.assert_allclose(bent[FLEXION][JOINTS.index((6, 7))], 0.0, atol=1e-5)


def test_spread_is_the_fingertips_distances_in_wrist_to_knuckle_lengths():
    g = geometry(open_hand())
    knuckle = 80.0  # wrist -> middle knuckle (point 9)
    for k, (a, b) in enumerate(TIP_PAIRS):
        expected = np.linalg.norm(open_hand()[a] - open_hand()[b]) / knuckle
        assert g[SPREAD][k] == pytest.approx(expected, rel=1e-4), (a, b)
    assert set(FINGERTIPS) <= {a for a, _ in TIP_PAIRS}


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 50), bones=st.floats(0.05, 0.5))
def test_flexion_does_not_change_with_the_hands_proportions(seed, bones):
    from asl_edge.train.augment import proportions

    p = fake_hand(seed)[None]
    other = proportions(p, np.random.default_rng(seed), bones)
    rows = torch.from_numpy(normalise(np.concatenate([p, other]), np.zeros(2, bool)))
    g = HandGeometry()(rows).numpy()
    np.testing.assert_allclose(g[0, FLEXION], g[1, FLEXION], atol=1e-4)


def test_a_row_without_a_hand_gets_no_geometry():
    rows = torch.zeros(2, LANDMARK_FEATURES)
    rows[1] = torch.from_numpy(hand_features(open_hand(30), "Left"))
    g = HandGeometry()(rows)
    assert torch.all(g[0] == 0) and g[1, PRESENCE] == 1 and g[1, LANDMARK_FEATURES:].abs().sum() > 0


def test_a_checkpoint_says_whether_its_landmark_classifier_reads_the_geometry():
    from asl_edge.runtime.contract import KAGGLE_CLASSES, ModelContract
    from asl_edge.train.checkpoint import landmark_geometry, model_from_checkpoint
    from asl_edge.train.models import build_model

    contract = ModelContract(classes=tuple(KAGGLE_CLASSES), input_size=64, mean=(0.5,) * 3, std=(0.5,) * 3, landmarks=66)
    rows = torch.from_numpy(np.stack([hand_features(fake_hand(i), "Right") for i in range(3)]))
    x = torch.rand(3, 3, 64, 64)
    for geometry, config in ((True, {"landmark_geometry": True}), (False, {})):  # {}: a checkpoint from before it
        torch.manual_seed(0)
        net = build_model("mobilenet_v2", len(KAGGLE_CLASSES), "none", 64, landmarks=66,
                          landmark_geometry=geometry).eval()
        ckpt = {"arch": "mobilenet_v2", "contract": contract.to_dict(), "config": config,
                "model_state_dict": net.state_dict()}
        assert landmark_geometry(ckpt) is geometry
        rebuilt, _ = model_from_checkpoint(ckpt)
        assert isinstance(rebuilt.head.landmarks[0], HandGeometry) is geometry
        with torch.no_grad():
            torch.testing.assert_close(rebuilt(x, rows), net(x, rows))


def test_the_exported_graph_answers_a_row_without_a_hand_as_pytorch_does(tmp_path):
    """A zero row has bones of length 0: the graph must not divide 0 by 0 (the image then decides alone)."""
    import onnxruntime as ort

    from asl_edge.export.onnx_export import export_fp32, for_input_format
    from asl_edge.runtime.contract import KAGGLE_CLASSES, ModelContract
    from asl_edge.train.models import build_model

    contract = ModelContract(classes=tuple(KAGGLE_CLASSES), input_size=64, mean=(0.5,) * 3, std=(0.5,) * 3, landmarks=66)
    net = build_model("mobilenet_v2", len(KAGGLE_CLASSES), "none", 64, landmarks=66, landmark_geometry=True).eval()
    module, contract = for_input_format(net, contract, "float")
    export_fp32(module, contract, tmp_path / "m.onnx")
    x = np.random.default_rng(0).random((2, 3, 64, 64), np.float32)
    rows = np.stack([np.zeros(LANDMARK_FEATURES, np.float32), hand_features(fake_hand(3), "Right")])
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"image": x, "landmarks": rows})[0]
    with torch.no_grad():
        want = net(torch.from_numpy(x), torch.from_numpy(rows)).numpy()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, atol=1e-4)
