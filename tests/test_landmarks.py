"""Hand landmarks as the model's second input: the features, the fusion head, and a real landmark
model trained, exported (FP32 + INT8), run by asl-run and measured by asl-bench."""
from __future__ import annotations

import json
import math

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asl_edge.runtime.contract import ModelContract
from asl_edge.common.errors import UserError
from asl_edge.runtime.landmarks import (DIRECTION, LANDMARK_FEATURES, PRESENCE, SHAPE_ONLY, for_width, hand_features,
                                        stack)

from conftest import DATA, assert_one_line_error, need, run_cli
from onnx_fixtures import make_tiny_onnx

CLOSEUP = DATA / "t32rahman_closeup"


def _hand(seed=0):
    """A plausible hand: wrist at the origin, middle knuckle straight up, fingers above."""
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 30, (21, 3))
    p[0] = 0
    p[9] = (0, -80, 0)
    return p


@settings(max_examples=60, deadline=None)
@given(dx=st.floats(-500, 500), dy=st.floats(-500, 500), scale=st.floats(0.2, 8), angle=st.floats(-math.pi, math.pi),
       seed=st.integers(0, 10))
def test_the_shape_ignores_position_scale_and_rotation_and_the_direction_is_the_rotation(dx, dy, scale, angle, seed):
    p = _hand(seed)
    moved = _turned(p, angle) * scale + (dx, dy, 0)
    a, b = hand_features(moved, "Right"), hand_features(p, "Right")
    np.testing.assert_allclose(a[:PRESENCE + 1], b[:PRESENCE + 1], atol=1e-4)
    np.testing.assert_allclose(b[DIRECTION], [0.0, 1.0], atol=1e-6)  # knuckle straight up: angle 0
    np.testing.assert_allclose(a[DIRECTION], [math.sin(angle), math.cos(angle)], atol=1e-4)


def _turned(p, angle):
    """The hand turned by `angle` in the frame (positive: the knuckle leans towards +x)."""
    c, s = math.cos(angle), math.sin(angle)
    out = p.copy()
    out[:, :2] = p[:, :2] @ np.array([[c, -s], [s, c]]).T
    return out


def test_letters_that_differ_only_in_direction_differ_only_in_the_direction():
    """U and H (or K and P, Q and G): the same hand shape pointing up, sideways or down."""
    p = _hand(3)
    u, h, down = (hand_features(_turned(p, a), "Right") for a in (0.0, math.pi / 2, math.pi))
    for other in (h, down):
        np.testing.assert_allclose(other[:PRESENCE + 1], u[:PRESENCE + 1], atol=1e-5)
    np.testing.assert_allclose([u[DIRECTION], h[DIRECTION], down[DIRECTION]], [[0, 1], [1, 0], [0, -1]], atol=1e-6)


@given(seed=st.integers(0, 50))
def test_a_mirrored_left_hand_looks_like_the_right_hand(seed):
    p = _turned(_hand(seed), 0.1 * seed - 2)  # leaning: the direction is mirrored too
    mirror = p * (-1, 1, 1)
    a, b = hand_features(p, "Right"), hand_features(mirror, "Left")
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert a[PRESENCE] == 1.0 and a.shape == (LANDMARK_FEATURES,) and a.dtype == np.float32
    assert not np.allclose(hand_features(p, "Right"), hand_features(p, "Left"))  # handedness is not ignored


def test_degenerate_or_missing_hands_are_no_hand():
    flat = np.zeros((21, 3))
    assert not hand_features(flat, "Right").any()
    nan = _hand()
    nan[4, 0] = np.nan
    assert not hand_features(nan, "Right").any()
    rows = stack([None, hand_features(_hand(), "Right")], 3)
    assert rows.shape == (3, 66) and not rows[0].any() and rows[1, PRESENCE] == 1 and not rows[2].any()
    old = stack([None, hand_features(_hand(), "Right")], 2, SHAPE_ONLY)  # what a file of the earlier layout takes
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
    hand = torch.from_numpy(np.stack([hand_features(_hand(i), "Right") for i in range(4)]))
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
    x, rows = torch.randn(3, 16), torch.from_numpy(np.stack([hand_features(_hand(i), "Left") for i in range(3)]))
    torch.testing.assert_close(fresh(x, rows), head(x, rows))


def test_pose_turns_hands_and_normalises_them_again_as_the_runtime_does(monkeypatch):
    from asl_edge.train import augment

    rows = np.stack([hand_features(_turned(_hand(i), i - 2.5), "Right") for i in range(6)] + [np.zeros(66, np.float32)])
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
    want = np.stack([hand_features(_turned(_hand(i), i - 2.5 + roll), "Right") for i in range(6)])
    np.testing.assert_allclose(augment.pose(rows, np.random.default_rng(2))[:-1], want, atol=1e-5)


def test_proportions_keep_every_bone_direction_and_scale_its_length_within_the_bounds():
    from asl_edge.train import augment

    hands = np.stack([_hand(i) for i in range(5)]).astype(np.float64)
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
    protos = [_hand(seed) for seed in range(3)]  # three hand shapes, one per class
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


# --- a real landmark model -----------------------------------------------------------------

def test_landmark_model_trains_exports_and_takes_two_inputs(landmark_run):
    from asl_edge.export.onnx_export import ort_logits
    from asl_edge.train.checkpoint import load_checkpoint

    out, summary = landmark_run
    ckpt = load_checkpoint(out / "best.ckpt")
    assert ckpt["contract"]["landmarks"] == 66 and ckpt["config"]["landmarks"] is True
    assert ckpt["config"]["augment"] == ["pose"]
    assert summary["best_val_acc"] > 0.3  # 26 letters: chance is 4%
    fp32, int8 = out / "best.onnx", out / "best.int8.onnx"
    for path in (fp32, int8):
        m = onnx.load(str(path))
        assert [i.name for i in m.graph.input] == ["image", "landmarks"]
        meta = {p.key: p.value for p in m.metadata_props}
        assert json.loads(meta["asl_edge.contract"])["landmarks"] == 66
    # the landmark branch stays float in the INT8 file: nothing downstream of "landmarks" is quantized
    from asl_edge.export.quantize import landmark_nodes

    g = onnx.load(str(int8)).graph
    branch = set(landmark_nodes(g))
    assert branch and not any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in g.node if n.name in branch)
    producer = {o: n for n in g.node for o in n.output}
    gemms = [n for n in g.node if n.op_type in ("Gemm", "MatMul")]
    assert len(gemms) == 4  # image classifier + 3 landmark layers, all float: no DequantizeLinear feeds them
    assert not any(producer[i].op_type == "DequantizeLinear" for n in gemms for i in n.input if i in producer)
    # the landmarks change the answer; a row with its presence flag off is the same as no hand
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3, 96, 96)).astype(np.float32)
    hands = np.stack([hand_features(_hand(i), "Right") for i in range(6)])
    off = hands.copy()
    off[:, PRESENCE] = 0
    zeros = np.zeros_like(hands)
    with_hands = ort_logits(fp32, {"image": x, "landmarks": hands})
    assert not np.allclose(with_hands, ort_logits(fp32, {"image": x, "landmarks": zeros}), atol=1e-3)
    np.testing.assert_allclose(ort_logits(fp32, {"image": x, "landmarks": off}),
                               ort_logits(fp32, {"image": x, "landmarks": zeros}), atol=1e-5)


def test_the_exported_files_say_whether_the_image_and_the_hand_shape_agree(landmark_run):
    """Second output "agreement": 1 where the image and landmark classifiers' top-1 are the same or no
    hand was given; the same in PyTorch and FP32; INT8 and FP16 up to a near-tie row."""
    import torch

    from asl_edge.export.quantize import convert_fp16
    from asl_edge.runtime.model import OnnxClassifier
    from asl_edge.train.checkpoint import load_checkpoint, model_from_checkpoint

    out, _ = landmark_run
    net, _ = model_from_checkpoint(load_checkpoint(out / "best.ckpt"))
    net.eval()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 3, 96, 96)).astype(np.float32)
    hands = np.stack([hand_features(_hand(i), "Right") for i in range(12)])
    hands[::4] = 0  # no hand in every fourth row
    with torch.no_grad():
        features = net.backbone(torch.from_numpy(x))
        a, b = net.head.branches(features, torch.from_numpy(hands))
        embedding = torch.cat([features, net.head.hidden(torch.from_numpy(hands))], 1).numpy()
    want = (a.argmax(1) == b.argmax(1)).numpy() | (hands[:, PRESENCE] == 0)
    assert want[::4].all() and not want.all()  # random images: the two views differ on some rows
    fp16 = out / "agree.fp16.onnx"
    convert_fp16(out / "best.onnx", fp16)
    for path in (out / "best.onnx", out / "best.int8.onnx", fp16):
        clf = OnnxClassifier(path, provider="cpu")
        assert clf.contract.agreement and [o.name for o in clf.session.get_outputs()] == ["logits", "agreement",
                                                                                           "embedding"]
        scores = clf.classify(x, hands)
        # the embedding a profile is fitted on: the pooled image features, then the landmark MLP's hidden layer
        assert dict(clf.contract.embedding) == {"image": net.feature_dim, "landmarks": 128}
        if path == out / "best.onnx":
            np.testing.assert_allclose(scores.embedding, embedding, rtol=1e-3, atol=1e-4)
        logits, agree = scores.logits, scores.agreement
        assert agree.dtype == bool and agree.shape == (12,)
        # FP32 matches PyTorch exactly; INT8 rounds the image backbone and FP16 everything, so on these
        # random-noise images one near-tie row of the image classifier may flip
        assert (agree == want).mean() >= (1.0 if path == out / "best.onnx" else 11 / 12), path.name
        np.testing.assert_array_equal(clf.run(x, hands), logits)


def test_asl_run_feeds_the_found_hands_landmarks(landmark_run, tmp_path):
    """asl-run's answer for each image equals the model run by hand on the finder's crop and
    landmarks; with --roi 0.6 the model says it runs on the image alone."""
    from asl_edge.runtime.contract import read_rgb
    from asl_edge.runtime.hands import HandFinder
    from asl_edge.runtime.landmarks import of_hand
    from asl_edge.runtime.model import OnnxClassifier

    out, _ = landmark_run
    folder = need(CLOSEUP) / "train" / "B"
    images = sorted(folder.iterdir())[:4]
    proc = run_cli("asl_edge.runtime.cli", "--model", out / "best.onnx", "--json", *images, check=True)
    recs = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    assert len(recs) == 4 and "+ hand landmarks" in proc.stdout + proc.stderr  # the model line
    clf = OnnxClassifier(out / "best.onnx")
    finder = HandFinder(video=False)
    found = 0
    for rec, path in zip(recs, images):
        rgb = read_rgb(path)
        box = finder.find(rgb)
        assert (box is None) == (rec["hand"] is None)
        if box is None:
            probs = clf.predict([rgb])[0]
        else:
            found += 1
            x, y, w, h = box
            probs = clf.predict([rgb[y:y + h, x:x + w]], of_hand(finder.hand)[None])[0]
        assert clf.classes[int(probs.argmax())] == rec["label"]
        assert abs(float(probs.max()) - rec["prob"]) < 1e-4
        assert isinstance(rec["agree"], bool)
    assert found >= 3  # close-ups: the finder sees these hands
    agreeing = sum(r["agree"] for r in recs)
    assert f"agreement: image and hand shape name the same class on {agreeing}/4 images" in proc.stderr
    proc = run_cli("asl_edge.runtime.cli", "--model", out / "best.onnx", "--roi", "0.6", images[0], check=True)
    assert "classifies from the image alone" in proc.stderr


def test_asl_bench_measures_a_landmark_model_on_hand_crops(landmark_run, tmp_path):
    out, _ = landmark_run
    data = need(CLOSEUP)
    proc = run_cli("asl_edge.benchmarks.cli", "--ckpt", out / "best.ckpt", "--onnx", out / "best.onnx",
                   "--onnx", out / "best.int8.onnx", "--data", data, "--max-images", "52", "--runs", "5",
                   "--warmup", "1", "--threads", "1", "--no-plots", "--out", tmp_path / "bench", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bench = json.loads((tmp_path / "bench" / "bench.json").read_text())
    assert bench["settings"]["hand_crops"] is True and bench["contract"]["landmarks"] == 66
    (ds,) = bench["datasets"]
    assert ds["hands_found"] >= 40  # of 52 close-ups
    files = {m["id"]: m["file"] for m in bench["models"]}
    agree = {files[rid]: r["agreement"]["top1_pct"] for rid, r in ds["results"].items()}
    assert set(agree) == {"best.ckpt", "best.onnx", "best.int8.onnx"}, agree
    # FP32 ONNX and PyTorch read the same crops and landmarks: they agree on every image
    assert agree["best.onnx"] == 100.0 and agree["best.int8.onnx"] >= 80.0, agree
    proc = run_cli("asl_edge.benchmarks.cli", "--ckpt", out / "best.ckpt", "--data", data, "--no-hands",
                   "--max-images", "5", "--runs", "2", "--no-plots", "--out", tmp_path / "b2")
    assert_one_line_error(proc, "takes hand landmarks")


def test_camera_mode_uses_the_full_landmark_model_for_a_landmark_model():
    from asl_edge.runtime.cli import RunOptions, camera_hand_model

    landmark, image_only = type("C", (), {"uses_landmarks": True})(), type("C", (), {"uses_landmarks": False})()
    assert camera_hand_model(RunOptions(), landmark) == "full"  # what it was trained on
    assert camera_hand_model(RunOptions(), image_only) == "lite"
    assert camera_hand_model(RunOptions(hand_model="lite"), landmark) == "lite"  # asked for


def _two_input_onnx(path, width, classes=("A", "B", "C")):
    """A tiny landmark model: logits = mean colour @ W1 + landmark row @ W2 (width numbers in)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(width)
    w1, w2 = rng.normal(size=(3, len(classes))), rng.normal(size=(width, len(classes)))
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image"], ["m"], axes=[2, 3], keepdims=0),
         helper.make_node("MatMul", ["m", "w1"], ["a"]), helper.make_node("MatMul", ["landmarks", "w2"], ["b"]),
         helper.make_node("Add", ["a", "b"], ["logits"])], "two_inputs",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 32, 32]),
         helper.make_tensor_value_info("landmarks", TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(classes)])],
        [numpy_helper.from_array(w1.astype(np.float32), "w1"), numpy_helper.from_array(w2.astype(np.float32), "w2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    helper.set_model_props(model, {"asl_edge.contract": ModelContract(classes=classes, input_size=32,
                                                                      landmarks=width).to_json()})
    onnx.save(model, str(path))
    return path, w2


def test_a_file_of_the_earlier_64_number_layout_still_runs_on_todays_rows(tmp_path):
    """Files exported before the direction take the first 64 numbers of today's rows; a file whose
    graph takes another width than its contract says is refused at load."""
    from asl_edge.runtime.model import OnnxClassifier

    rows = np.stack([hand_features(_turned(_hand(i), 0.5 * i), "Right") for i in range(4)])
    x = np.random.default_rng(0).normal(size=(4, 3, 32, 32)).astype(np.float32)
    for width in (64, 66):
        path, w2 = _two_input_onnx(tmp_path / f"m{width}.onnx", width)
        clf = OnnxClassifier(path, provider="cpu")
        got = clf.run(x, rows)
        np.testing.assert_allclose(got - clf.run(x, np.zeros_like(rows)), rows[:, :width] @ w2, rtol=1e-4, atol=1e-4)
    assert not np.allclose(clf.run(x, rows), clf.run(x, np.pad(rows[:, :64], ((0, 0), (0, 2)))))  # 66 reads the direction
    path, _ = _two_input_onnx(tmp_path / "liar.onnx", 64)
    m = onnx.load(str(path))
    m.metadata_props[0].value = ModelContract(classes=("A", "B", "C"), input_size=32, landmarks=66).to_json()
    onnx.save(m, str(path))
    with pytest.raises(UserError, match=r"\[N, 66\]"):
        OnnxClassifier(path, provider="cpu")
