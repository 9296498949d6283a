"""Landmark models end to end: a real one trained, exported (FP32 + INT8), run by asl-run and
measured by asl-bench, and two-input files of the earlier 64-number layout (tests/test_landmarks.py:
the features and the fusion head)."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from asl_edge.runtime.contract import ModelContract
from asl_edge.common.errors import UserError
from asl_edge.runtime.landmarks import PRESENCE, hand_features

from conftest import CLOSEUP, assert_one_line_error, need, run_cli
from onnx_fixtures import fake_hand, turned


# --- a real landmark model -----------------------------------------------------------------

def test_landmark_model_trains_exports_and_takes_two_inputs(landmark_run):
    from asl_edge.export.onnx_export import ort_logits
    from asl_edge.train.checkpoint import load_checkpoint

    out, summary = landmark_run
    ckpt = load_checkpoint(out / "best.ckpt")
    assert ckpt["contract"]["landmarks"] == 66 and ckpt["config"]["landmarks"] is True
    assert ckpt["config"]["augment"] == ["pose"]
    assert ckpt["config"]["landmark_geometry"] is True  # asl-train's default: the classifier reads the hand's geometry
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
    # image classifier + 3 landmark layers + the hand geometry's 4 matrix products, all float: no DequantizeLinear feeds them
    assert len(gemms) == 4 + 4
    assert not any(producer[i].op_type == "DequantizeLinear" for n in gemms for i in n.input if i in producer)
    # the landmarks change the answer; a row with its presence flag off is the same as no hand
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3, 96, 96)).astype(np.float32)
    hands = np.stack([hand_features(fake_hand(i), "Right") for i in range(6)])
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
    hands = np.stack([hand_features(fake_hand(i), "Right") for i in range(12)])
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


def test_camera_mode_uses_the_full_landmark_model_in_int8_for_a_landmark_model(monkeypatch):
    from asl_edge.runtime.cli import RunOptions, camera_hand_model
    from asl_edge.runtime.hands import geometry

    landmark, image_only = type("C", (), {"uses_landmarks": True})(), type("C", (), {"uses_landmarks": False})()
    assert camera_hand_model(RunOptions(), landmark) == "full-int8"  # the full model, quantized (it ships)
    assert camera_hand_model(RunOptions(), image_only) == "lite"
    assert camera_hand_model(RunOptions(hand_model="lite"), landmark) == "lite"  # asked for
    assert camera_hand_model(RunOptions(hand_model="full"), landmark) == "full"
    monkeypatch.delitem(geometry.LANDMARK_MODELS, "full-int8")  # a checkout without the INT8 file
    assert camera_hand_model(RunOptions(), landmark) == "full"


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

    rows = np.stack([hand_features(turned(fake_hand(i), 0.5 * i), "Right") for i in range(4)])
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
