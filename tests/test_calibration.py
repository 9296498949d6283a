"""Confidence temperature: the contract field, the runtime's softmax, writing it into a file, the fit."""
import subprocess
import sys

import numpy as np
import onnx
import pytest

from asl_edge.export.temperature import ece, fit_temperature
from asl_edge.runtime.contract import ModelContract
from asl_edge.common.errors import UserError
from asl_edge.runtime.model import OnnxClassifier, softmax
from onnx_fixtures import assert_one_line_error, make_tiny_onnx


def test_contract_temperature_defaults_and_old_contracts_load():
    old = ModelContract().to_dict()
    assert "temperature" not in old                       # uncalibrated: the dict (and cache keys) as before
    assert ModelContract.from_dict(old).temperature == 1.0
    warm = ModelContract().with_temperature(1.8)
    assert warm.to_dict()["temperature"] == 1.8
    assert ModelContract.from_json(warm.to_json()) == warm


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "warm", None, True, 1000])
def test_contract_rejects_bad_temperatures(bad):
    with pytest.raises(UserError, match="temperature"):
        ModelContract().with_temperature(bad)


def test_temperature_softens_without_changing_the_ranking():
    logits = np.array([[4.0, 1.0, 0.0], [0.0, 2.0, 2.5]], np.float32)
    plain = ModelContract().probabilities(logits)
    np.testing.assert_allclose(plain, softmax(logits), rtol=1e-6)
    warm = ModelContract().with_temperature(2.0).probabilities(logits)
    np.testing.assert_allclose(warm, softmax(logits / 2), rtol=1e-6)
    assert (warm.argmax(1) == plain.argmax(1)).all() and (warm.max(1) < plain.max(1)).all()


def test_temperature_written_into_a_file_is_used_by_the_runtime(tmp_path):
    from asl_edge.export.temperature import set_temperature

    path = make_tiny_onnx(tmp_path / "m.onnx")
    images = [np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8) for i in range(3)]
    before = OnnxClassifier(path, provider="cpu")
    logits = before.logits(images)
    set_temperature(path, 2.5)
    after = OnnxClassifier(path, provider="cpu")
    assert after.contract.temperature == 2.5
    np.testing.assert_allclose(after.logits(images), logits)                 # the graph is untouched
    np.testing.assert_allclose(after.predict(images), softmax(logits / 2.5), rtol=1e-5)
    assert not list(tmp_path.glob("*.tmp"))


def test_restamp_changes_the_resize_rule_and_nothing_else(tmp_path):
    from asl_edge.export.temperature import restamp

    path = make_tiny_onnx(tmp_path / "m.onnx")
    graph = onnx.load(str(path)).graph.SerializeToString()
    before = OnnxClassifier(path, provider="cpu").contract
    after = restamp(path, interpolation="binned_linear")
    assert after == before.with_fields(interpolation="binned_linear") != before
    assert OnnxClassifier(path, provider="cpu").contract == after
    assert onnx.load(str(path)).graph.SerializeToString() == graph
    with pytest.raises(UserError, match="interpolation"):
        restamp(path, interpolation="cubic")
    assert OnnxClassifier(path, provider="cpu").contract == after and not list(tmp_path.glob("*.tmp"))


def _set_cli(*args):
    return subprocess.run([sys.executable, "-m", "asl_edge.export.temperature", *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def test_set_temperature_cli_errors(tmp_path):
    assert_one_line_error(_set_cli(tmp_path / "missing.onnx", 1.5), "not found")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    assert_one_line_error(_set_cli(tmp_path / "junk.onnx", 1.5), "cannot read")
    plain = make_tiny_onnx(tmp_path / "plain.onnx", with_contract=False)
    assert_one_line_error(_set_cli(plain, 1.5), "not an asl-edge model")
    good = make_tiny_onnx(tmp_path / "good.onnx")
    assert_one_line_error(_set_cli(good, 0), "temperature")
    ok = _set_cli(good, 1.5)
    assert ok.returncode == 0 and "temperature 1.5" in ok.stdout


def test_fit_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 10))
    # Labels drawn from softmax(logits / 2): the model is over-confident by T = 2.
    p = softmax(logits / 2)
    labels = np.array([rng.choice(10, p=row) for row in p])
    assert fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.1)
    assert ece(softmax(logits / 2), labels) < 0.03 < 0.1 < ece(softmax(logits), labels)


def test_auto_fits_a_temperature_on_people_and_writes_it(tmp_path):
    import shutil

    from asl_edge.runtime.model import DEFAULT_MODEL, OnnxClassifier

    from conftest import KAGGLE_TEST, need

    model = tmp_path / "model.onnx"
    shutil.copy(DEFAULT_MODEL, model)
    dry = _set_cli(model, "auto", "--data", need(KAGGLE_TEST), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    fitted = float(dry.stdout.split(" T ")[1].split()[0])
    assert 0.2 <= fitted <= 10 and "NLL" in dry.stdout and len(dry.stdout.strip().splitlines()) == 1
    # the model has all of these right: the fit runs to the search's end, and says so
    assert fitted > 0.2 or "end of the search" in dry.stderr
    assert OnnxClassifier(model, provider="cpu").contract.temperature == OnnxClassifier(DEFAULT_MODEL).contract.temperature
    written = _set_cli(model, "auto", "--data", KAGGLE_TEST)
    assert written.returncode == 0 and abs(OnnxClassifier(model, provider="cpu").contract.temperature - fitted) < 0.01


def test_auto_and_a_number_are_used_as_meant(tmp_path):
    good = make_tiny_onnx(tmp_path / "good.onnx")
    assert_one_line_error(_set_cli(good, "auto"), "--data")
    assert_one_line_error(_set_cli(good, 1.5, "--data", tmp_path), "--data is for")
    assert_one_line_error(_set_cli(good, "warm"), "warm")
