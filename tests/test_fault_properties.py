"""Property tests: random bytes as images, random image shapes and regions, random contract JSON, profiles
with any field replaced, any text to the option parsers.
Whatever comes in, the answer is a result or one UserError, never another exception."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from asl_edge.runtime.camera import GuideBox
from asl_edge.runtime.contract import ModelContract
from asl_edge.common.errors import UserError
from asl_edge.runtime.model import OnnxClassifier, check_graph
from asl_edge.common.safeio import decode_rgb, header_size
from onnx_fixtures import make_tiny_onnx

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"BM", b"RIFF\0\0\0\0WEBPVP8X", b"II*\x00", b"MM\x00*", b"GIF89a"]


@FAST
@given(st.sampled_from(MAGIC), st.binary(max_size=2000))
def test_random_bytes_decode_or_one_user_error(magic, body):
    try:
        rgb = decode_rgb(magic + body, "x")
    except UserError:
        return
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and min(rgb.shape[:2]) >= 8


@FAST
@given(st.sampled_from([".png", ".jpg", ".bmp", ".webp", ".tiff"]), st.integers(1, 300), st.integers(1, 300),
       st.integers(0, 2 ** 16), st.integers(0, 400))
def test_real_images_of_random_shapes_and_cuts(ext, w, h, seed, cut):
    """Encoded at any size, then maybe cut short: the header reads the true size, and the decode
    gives the image, or one UserError for the tiny and the truncated."""
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(ext, img)
    assert ok
    data = buf.tobytes()
    if ext != ".webp" or w * h > 1:  # header_size: None is allowed, a wrong size is not
        size = header_size(data)
        assert size in (None, (w, h))
    data = data[: len(data) - cut] if cut and cut < len(data) else data
    try:
        rgb = decode_rgb(data, "x")
    except UserError:
        return
    assert rgb.shape[2] == 3 and min(rgb.shape[:2]) >= 8


@FAST
@given(st.integers(2, 2000), st.integers(2, 2000), st.floats(0.01, 1.0), st.integers(8, 256))
def test_guide_box_and_preprocess_any_frame(w, h, frac, size):
    box = GuideBox(fraction=frac).box(w, h)
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    c = ModelContract(classes=("A", "B"), input_size=size)
    crop = np.zeros((max(1, min(y1 - y0, 300)), max(1, min(x1 - x0, 300)), 3), np.uint8)
    assert c.preprocess(crop).shape == (3, size, size)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-10 ** 6, 10 ** 6) | st.floats(allow_nan=True)
                    | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5),
                    max_leaves=12)
FIELDS = ["classes", "input_size", "color_order", "resize", "interpolation", "mean", "std", "layout",
          "input_format", "version"]
GOOD = ModelContract(classes=("A", "B", "C", "del", "nothing", "space"), input_size=64).to_dict()


@st.composite
def contract_json(draw):
    """Mostly a good contract with a few fields replaced by random JSON; sometimes pure noise."""
    if draw(st.booleans()) and draw(st.booleans()):
        return json.dumps(draw(JSON))
    d = dict(GOOD)
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        d[key] = draw(JSON | st.sampled_from([["A"] * 40, list("ABCDE"), 32, 64, "uint8", [0.5, 0.5, 0.5]]))
    text = json.dumps(d)
    return text[: draw(st.integers(0, len(text)))] if draw(st.integers(0, 9)) == 0 else text


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    clf = OnnxClassifier(make_tiny_onnx(tmp_path_factory.mktemp("m") / "c.onnx", kind="color"), provider="cpu")
    return clf.session


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(contract_json())
def test_random_contract_json_loads_or_one_user_error(session, text):
    try:
        contract = ModelContract.from_json(text)
        check_graph(session, contract, "m.onnx")
    except UserError as e:
        assert "\n" not in str(e)
        return
    # accepted: it really fits this 6-way, any-size float graph and can preprocess a frame
    assert contract.num_classes == 6 and contract.input_format == "float"
    assert contract.preprocess(np.zeros((50, 70, 3), np.uint8)).shape == (3, contract.input_size, contract.input_size)


FIELD_VALUES = st.one_of(
    st.integers(-2**70, 2**70).map(lambda v: np.array(v) if abs(v) < 2**63 else np.array(str(v))),
    st.floats(allow_nan=True, allow_infinity=True).map(np.array),
    st.text(max_size=30).map(np.array),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6).map(lambda v: np.array(v, np.float64)),
    st.lists(st.text(max_size=5), max_size=4).map(np.array),
    st.tuples(st.integers(0, 3), st.integers(0, 5)).map(lambda s: np.zeros(s, np.float32)),
)


@FAST
@given(st.sampled_from(["version", "model_sha256", "classes", "parts", "weights", "bias", "base_weight", "counts",
                        "method", "check", None]), FIELD_VALUES)
@example("version", np.array(np.inf))  # found by hypothesis: int(inf) overflowed past the one-line error
@example("counts", np.array([np.inf, 1.0]))
def test_a_profile_with_any_field_replaced_loads_or_is_one_user_error(tmp_path, field, value):
    from asl_edge.runtime.profile import Profile

    good = tmp_path / "good.npz"
    Profile("0" * 64, ("A", "B"), ("image",), np.ones((2, 4), np.float32), np.zeros(2, np.float32), 0.5, (5, 5),
            "prototypes", {"top1": 1.0}).save(good)
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    if field is None:
        arrays.pop("weights")
    else:
        arrays[field] = value
    edited = tmp_path / "edited.npz"
    with open(edited, "wb") as fh:
        np.savez(fh, **arrays)
    try:
        Profile.load(edited)
    except UserError:
        pass


@FAST
@given(st.text(max_size=60))
def test_option_parsers_take_any_text_to_a_value_or_one_clear_refusal(text):
    import click

    from asl_edge.benchmarks.speller import parse_decoder
    from asl_edge.runtime.options import FiniteFloat
    from asl_edge.runtime.spelling import Hold

    for parse, refusals in ((parse_decoder, (UserError,)), (Hold.parse, (ValueError,)),
                            (lambda t: FiniteFloat(0, 1).convert(t, None, None), (click.BadParameter,))):
        try:
            parse(text)
        except refusals:
            pass
    for spec in ("evidence:" + text, "hold:" + text):
        try:
            parse_decoder(spec)
        except UserError:
            pass
