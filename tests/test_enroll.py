"""Personal profiles: the fit and fusion in numpy, the profile file, asl-enroll and asl-run --profile."""
from __future__ import annotations

import pickle
import shutil

import cv2
import numpy as np
import pytest

from asl_edge.common.errors import UserError
from asl_edge.runtime.profile import Enrollment, Profile, fit_profile, fuse, time_split

from conftest import DATA, assert_one_line_error, need, run_cli
from onnx_fixtures import make_tiny_onnx

CLOSEUP = DATA / "t32rahman_closeup" / "train"
CLASSES = tuple("ABCDE")
PARTS = (("image", 32), ("landmarks", 8))
SHA = "ab" * 32


def _people(n_per_class=40, seed=0, shift=0.0):
    """Embeddings with a class direction per part plus noise; the 'model' is right on 40% of frames."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(len(CLASSES), 40))
    labels = np.repeat(np.arange(len(CLASSES)), n_per_class)
    emb = centres[labels] + 0.8 * rng.normal(size=(len(labels), 40)) + shift
    probs = np.full((len(labels), len(CLASSES)), 0.1)
    right = rng.random(len(labels)) < 0.4
    probs[np.arange(len(labels)), np.where(right, labels, (labels + 1) % len(CLASSES))] = 0.6
    return Enrollment(emb.astype(np.float32), probs.astype(np.float32), labels)


def test_the_check_takes_each_class_last_frames():
    labels = np.array([0] * 8 + [1] * 4)
    fit, check = time_split(labels)
    assert check.tolist() == [False] * 6 + [True] * 2 + [False] * 3 + [True]


def test_a_profile_learns_a_person_from_frames_and_leaves_other_classes_to_the_model():
    enroll, test = _people(seed=0), _people(seed=1)
    for method in ("prototypes", "ridge"):
        p = fit_profile(enroll, CLASSES, PARTS, SHA, method=method)
        fused = p.scores(test.probs, test.embedding, CLASSES, PARTS)
        assert np.allclose(fused.sum(1), 1, atol=1e-5)
        assert (fused.argmax(1) == test.labels).mean() > 0.9 > (test.probs.argmax(1) == test.labels).mean()
        assert p.check["profile_top1"] > p.check["model_top1"]
    # only A and B enrolled: C, D, E keep the model's probability, A and B share what the model gave them
    two = np.isin(enroll.labels, [0, 1])
    p = fit_profile(Enrollment(enroll.embedding[two], enroll.probs[two], enroll.labels[two]), CLASSES, PARTS, SHA)
    assert p.classes == ("A", "B")
    fused = p.scores(test.probs, test.embedding, CLASSES, PARTS)
    np.testing.assert_allclose(fused[:, 2:], test.probs[:, 2:], atol=1e-6)
    np.testing.assert_allclose(fused[:, :2].sum(1), test.probs[:, :2].sum(1), atol=1e-6)


def test_fusion_with_no_head_and_full_base_weight_is_the_model():
    probs = np.random.default_rng(0).dirichlet(np.ones(5), size=7).astype(np.float32)
    np.testing.assert_allclose(fuse(probs, np.zeros((7, 5)), np.arange(5), 1.0), probs, atol=1e-6)


def test_too_few_frames_for_a_letter_is_one_line():
    e = _people(n_per_class=3)
    with pytest.raises(UserError, match="too few frames"):
        fit_profile(e, CLASSES, PARTS, SHA)


def test_a_profile_file_round_trips_and_refuses_another_model(tmp_path):
    p = fit_profile(_people(), CLASSES, PARTS, SHA)
    path = p.save(tmp_path / "me.npz")
    q = Profile.load(path)
    e = _people(seed=3)
    np.testing.assert_array_equal(p.scores(e.probs, e.embedding, CLASSES, PARTS),
                                  q.scores(e.probs, e.embedding, CLASSES, PARTS))
    assert q.check == p.check and q.counts == p.counts

    from asl_edge.runtime.contract import ModelContract

    contract = ModelContract(classes=CLASSES, embedding=PARTS)
    q.check_model(SHA, contract, path)
    with pytest.raises(UserError, match="another model file"):
        q.check_model("cd" * 32, contract, path)
    with pytest.raises(UserError, match="does not fit"):
        q.check_model(SHA, ModelContract(classes=CLASSES, embedding=(("image", 32),)), path)


def test_a_full_size_profile_is_small(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(29), 20)
    e = Enrollment(rng.normal(size=(len(labels), 1408)).astype(np.float32),
                   rng.dirichlet(np.ones(29), size=len(labels)).astype(np.float32), labels)
    classes = tuple(f"c{i}" for i in range(29))
    path = fit_profile(e, classes, (("image", 1280), ("landmarks", 128)), SHA).save(tmp_path / "big.npz")
    assert path.stat().st_size < 1_000_000


@pytest.mark.parametrize("damage", ["pickle", "truncated", "nan", "shape", "text", "object"])
def test_a_broken_profile_is_one_line(tmp_path, damage):
    good = fit_profile(_people(), CLASSES, PARTS, SHA).save(tmp_path / "good.npz")
    bad = tmp_path / "bad.npz"
    if damage == "pickle":
        bad.write_bytes(pickle.dumps({"weights": np.zeros(3)}))
    elif damage == "truncated":
        bad.write_bytes(good.read_bytes()[:300])
    elif damage == "text":
        bad.write_text("weights = 1, 2, 3\n")
    else:
        with np.load(good) as z:
            arrays = {k: z[k] for k in z.files}
        if damage == "nan":
            arrays["weights"][0, 0] = np.nan
        elif damage == "shape":
            arrays["bias"] = arrays["bias"][:-1]
        else:
            arrays["classes"] = np.array([{"A": 1}], dtype=object)
        np.savez(bad, **arrays)
    with pytest.raises(UserError, match="not a usable asl-edge profile"):
        Profile.load(bad)


@pytest.fixture(scope="module")
def embedding_model(landmark_run):
    """The session's landmark model (exported with its embedding output)."""
    return landmark_run[0] / "best.int8.onnx"


def _closeups(tmp_path, letters="ABC", per=12):
    need(CLOSEUP)
    for c in letters:
        (tmp_path / c).mkdir(parents=True)
        for f in sorted((CLOSEUP / c).iterdir())[:per]:
            shutil.copy(f, tmp_path / c / f.name)
    return tmp_path


def test_enroll_from_folders_then_run_and_check_with_the_profile(embedding_model, tmp_path):
    data = _closeups(tmp_path / "me")
    out = tmp_path / "me.npz"
    proc = run_cli("asl_edge.runtime.enroll", "--data", data, "--out", out, "--model", embedding_model)
    assert proc.returncode == 0, proc.stderr
    assert "profile" in proc.stdout and "3 letters" in proc.stdout
    p = Profile.load(out)
    assert p.classes == ("A", "B", "C") and min(p.counts) >= 4
    run = run_cli("asl_edge.runtime.cli", data, "--model", embedding_model, "--profile", out, check=True)
    assert "3 letters enrolled" in run.stderr and "accuracy:" in run.stdout
    check = run_cli("asl_edge.runtime.enroll", "--check", out, "--data", data, "--model", embedding_model, check=True)
    assert "with the profile" in check.stdout
    # a failed enrollment (no hand anywhere) leaves the good profile as it was
    before = out.read_bytes()
    empty = tmp_path / "empty" / "A"
    empty.mkdir(parents=True)
    cv2.imwrite(str(empty / "blank.png"), np.zeros((120, 120, 3), np.uint8))
    proc = run_cli("asl_edge.runtime.enroll", "--data", empty.parent, "--out", out, "--model", embedding_model)
    assert_one_line_error(proc, "no frame with a hand")
    assert out.read_bytes() == before
    # the same profile with another model file (the same network in FP32): one line
    other = embedding_model.with_name("best.onnx")
    assert_one_line_error(run_cli("asl_edge.runtime.cli", data, "--model", other, "--profile", out),
                          "another model file")


def test_guided_enrollment_from_a_video_headless(embedding_model, tmp_path):
    need(CLOSEUP)
    path = tmp_path / "signing.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 320))
    for c in "AB":
        frames = sorted((CLOSEUP / c).iterdir())[:30]
        for f in frames:
            writer.write(cv2.resize(cv2.imread(str(f)), (320, 320)))
    writer.release()
    out = tmp_path / "me.npz"
    proc = run_cli("asl_edge.runtime.enroll", "--camera", path, "--out", out, "--model", embedding_model,
                   "--classes", "A,B", "--countdown", "0.5", "--seconds", "1", "--no-display")
    assert proc.returncode == 0, proc.stderr
    assert "A: sign A" in proc.stderr and "B: sign B" in proc.stderr
    assert Profile.load(out).classes == ("A", "B")


def test_a_model_without_an_embedding_is_one_line(tmp_path):
    model = make_tiny_onnx(tmp_path / "old.onnx")
    data = tmp_path / "d" / "A"
    data.mkdir(parents=True)
    cv2.imwrite(str(data / "x.png"), np.zeros((64, 64, 3), np.uint8))
    assert_one_line_error(run_cli("asl_edge.runtime.enroll", "--data", data.parent, "--out", tmp_path / "p.npz",
                                  "--model", model), "no embedding output")
    p = fit_profile(_people(), CLASSES, PARTS, SHA).save(tmp_path / "p.npz")
    assert_one_line_error(run_cli("asl_edge.runtime.cli", data, "--model", model, "--profile", p),
                          "no embedding output")


@pytest.mark.parametrize("args, fragment", [
    ((), "give one of --camera"),
    (("--data", "."), "give --out"),
    (("--data", ".", "--out", "me.txt"), "must end in .npz"),
    (("--data", "/nonexistent/x", "--out", "me.npz"), "not a folder"),
])
def test_enroll_usage_mistakes_are_one_line(args, fragment):
    assert_one_line_error(run_cli("asl_edge.runtime.enroll", *args), fragment)


class ScriptedWindow:
    """Stands in for the OpenCV window: presses the scripted key on the Nth shown frame; q closes it."""

    def __init__(self, keys: dict):
        self.keys, self.shown, self.key = keys, 0, None

    def show(self, frame) -> bool:
        self.key = self.keys.get(self.shown)
        self.shown += 1
        return self.key != "q"


def test_guided_enrollment_keys_redo_skip_and_finish(logged):
    from asl_edge.runtime.camera import VideoFileSource
    from asl_edge.runtime.enroll import record_guided
    from asl_edge.runtime.model import OnnxClassifier

    video = need(DATA / "webcam_recordings") / "lolzorus" / "B.mp4"  # a hand in view throughout, 30 fps
    clf = OnnxClassifier(provider="cpu")
    # frame 2: r during A's countdown (the first letter: A again); 20: s skips A; B records 0.4 s from
    # frame 32; 50: r during C's countdown goes back to B, which is recorded again; 80: q finishes
    window = ScriptedWindow({2: "r", 20: "s", 50: "r", 80: "q"})
    said = logged
    source = VideoFileSource(video)
    try:
        rec = record_guided(clf, source, ["A", "B", "C"], seconds=0.4, countdown=0.3, give_up=5.0, window=window)
    finally:
        source.close()
    text = "\n".join(said)
    assert said.count("A: sign A and hold it (0.3 s to get ready, then 0.4 s)") == 2  # announced again after r
    assert "A: skipped; it falls back to the model" in text
    assert text.count("B: sign B") == 2 and text.count("B: ") >= 3  # redone after the r in C's countdown
    assert "finished early" in text and window.shown == 81
    assert rec.count("A") == 0 and rec.count("B") > 0 and rec.count("C") == 0
