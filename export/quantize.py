"""INT8 (static, QDQ, calibrated on real images) and FP16 variants of an FP32 ONNX model."""
from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx

from asl_edge.common.errors import UserError
from asl_edge.train.progress import progress

from .feeds import LANDMARKS_NAME, chunks
from .saturation import kernel_rows, pairs

log = logging.getLogger(__name__)

MIN_CALIB_IMAGES = 100
CALIB_METHODS = ("minmax", "entropy", "percentile")


def preprocessing_nodes(graph) -> list:
    """Names of the nodes that compute the first convolution's input from the graph input: the
    in-graph normalisation (Transpose, Cast, Mul, Sub, Div) of an input_format="uint8" model;
    none for a float-input model, whose input feeds the first conv directly."""
    first = next((n for n in graph.node if n.op_type == "Conv"), None)
    if first is None:
        return []
    producer = {o: n for n in graph.node for o in n.output}
    names, todo = set(), [first.input[0]]
    while todo:
        node = producer.get(todo.pop())
        if node is not None and node.name not in names:
            names.add(node.name)
            todo.extend(node.input)
    return [n.name for n in graph.node if n.name in names]


class _BatchReader:
    """onnxruntime.quantization CalibrationDataReader over preprocessed images (float32 NCHW,
    or uint8 NHWC for a model that normalises inside), with their landmark rows if it takes them."""

    def __init__(self, feeds: dict, chunk=16):
        self._it = chunks(feeds, chunk)
        rows = len(next(iter(feeds.values())))
        self._bar = progress(total=-(-rows // chunk), desc="calibration", unit="batch")

    def get_next(self):
        batch = next(self._it, None)
        if batch is None:
            self._bar.close()
        else:
            self._bar.update()
        return batch


# How INT8 weights are ranged (see export/saturation.py for the CPU behaviour behind it):
#   pair-safe: per output channel, the smallest scale at which every same-signed adjacent weight
#              pair sums to <= 128 in magnitude, so AVX2's int16 pair sums can never overflow for
#              any input; most channels keep (nearly) full 8-bit resolution. The default.
#   7bit:      every weight in [-64, 64] (onnxruntime's reduce_range): safe too, half the resolution.
#   8bit:      full [-127, 127]: the most precise where the CPU has VNNI or ARM dot products, but
#              it overflows on AVX2-only x86; asl-export refuses it when the check finds overflows.
WEIGHT_RANGES = ("pair-safe", "7bit", "8bit")
# EfficientNet-Lite0's stem and first two blocks in float: more INT8 top-1 agreement with FP32 on held-out
# frames at about the same latency (benchmarks/RESULTS.md, "INT8 on every CPU").
DEFAULT_FLOAT_CONVS = 6


def pair_safe_overrides(graph, exclude=()) -> dict:
    """TensorQuantOverrides giving each output channel of each quantizable Conv / MatMul / Gemm
    weight a symmetric range whose int8 image has |q_k| + |q_k+1| <= 128 for every same-signed pair
    (k even) and |q| <= 127. Depthwise convs (no pair sums) keep the quantizer's default range."""
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    overrides = {}
    for node in graph.node:
        if node.op_type not in ("Conv", "MatMul", "Gemm") or node.name in exclude or len(node.input) < 2:
            continue
        if node.input[1] not in inits:
            continue
        w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv" and attrs.get("group", 1) > 1 and w.shape[1] == 1:
            continue
        rows, axis = kernel_rows(w, node.op_type, attrs.get("transB", 0))
        overrides[node.input[1]] = [{"axis": axis, "rmin": float(-a), "rmax": float(a)} for a in pair_safe_absmax(rows)]
    return overrides


def pair_safe_absmax(rows: np.ndarray) -> np.ndarray:
    """Per row (output channel) of float weights in kernel order, the symmetric range bound whose
    int8 scale (bound / 127) keeps every rounded same-signed adjacent pair at |q_k| + |q_k+1| <= 128."""
    rows = np.asarray(rows, np.float64)
    even, odd = pairs(rows)
    same_sign_sum = np.where(even * odd > 0, np.abs(even) + np.abs(odd), 0).max(axis=1)
    # |w_e| / scale + |w_o| / scale <= 127, and rounding adds at most 1
    return np.maximum(np.maximum(np.abs(rows).max(axis=1), same_sign_sum), 1e-12)


def landmark_nodes(graph) -> list:
    """Names of the nodes downstream of the landmarks input (the landmark MLP, the fusion and the
    classifier): tiny next to the backbone, so they stay float."""
    inputs = [i.name for i in graph.input if i.name == LANDMARKS_NAME]
    if not inputs:
        return []
    consumers = {}
    for n in graph.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    names, todo = set(), list(inputs)
    while todo:
        for node in consumers.get(todo.pop(), []):
            if node.name not in names:
                names.add(node.name)
                todo.extend(node.output)
    return [n.name for n in graph.node if n.name in names]


def quantize_int8(fp32_path, out_path, calib_batch, method="minmax", weight_range="pair-safe",
                  float_convs=DEFAULT_FLOAT_CONVS):
    """Static INT8 in QDQ format with per-channel weights, after quant_pre_process.

    Types: uint8 activations with int8 weights (U8S8): the fastest kernels on x86-64 and on ARM
    (benchmarks/RESULTS.md, "INT8 on every CPU": U8S8 was the fastest type). `weight_range` (see
    WEIGHT_RANGES) keeps AVX2's saturating pair sums in range. The first `float_convs`
    convolutions (raw pixels and the high-resolution early blocks) and the classifier layer (the
    logits) stay in float: that is where rounding hurts most. So do the nodes before the first conv
    (the in-graph normalisation of a uint8-input model): calib_batch is then uint8 NHWC, like the
    model's input. A landmark model's landmark branch and head stay float too (landmark_nodes);
    calib_batch is then feeds {"image": ..., "landmarks": ...}.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not isinstance(calib_batch, dict):
        calib_batch = {onnx.load(str(fp32_path), load_external_data=False).graph.input[0].name: calib_batch}
    with tempfile.TemporaryDirectory(prefix="asl-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=False)
        # histogram calibrators need equal-sized batches
        reader = _BatchReader(calib_batch, chunk=16 if method == "minmax" else 1)
        graph = onnx.load(str(pre)).graph
        convs = [n.name for n in graph.node if n.op_type == "Conv"]
        if float_convs >= len(convs):
            raise UserError(f"--float-convs {float_convs} keeps all {len(convs)} convolutions of this network float: "
                            f"nothing would be INT8; use at most {len(convs) - 1}")
        heads = [n.name for n in graph.node if n.op_type in ("Gemm", "MatMul")]
        branch = landmark_nodes(graph)
        # the classifier(s) stay float: the last Gemm/MatMul, or with landmarks every one (the image
        # classifier and the landmark MLP)
        exclude = preprocessing_nodes(graph) + convs[:float_convs] + (heads if branch else heads[-1:])
        exclude += [n for n in branch if n not in exclude]
        # the agreement output compares the two classifiers' top-1 on their float logits
        exclude += [n.name for n in graph.node if n.op_type == "ArgMax" and n.name not in exclude]
        quantize_qdq(pre, out_path, reader, exclude, weight_range, method)


def name_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give every unnamed node a unique name: the quantizer excludes nodes by name, and converted
    graphs (the MediaPipe hand models) leave names empty, so excluding '' would exclude them all."""
    taken = {n.name for n in model.graph.node if n.name}
    for i, n in enumerate(model.graph.node):
        if not n.name:
            name = f"{n.op_type}_{i}"
            while name in taken:
                name += "_"
            n.name = name
            taken.add(name)
    return model


def quantize_qdq(pre_path, out_path, reader, exclude, weight_range="pair-safe", method="minmax"):
    """onnxruntime's static quantization as every INT8 file of this project is made: QDQ, per-channel
    int8 weights ranged by `weight_range`, uint8 activations (U8S8), calibrated by `reader`; the nodes
    named in `exclude` stay float. pre_path: a graph after quant_pre_process."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    if weight_range not in WEIGHT_RANGES:
        raise ValueError(f"weight_range must be one of {WEIGHT_RANGES}, not {weight_range!r}")
    calib = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
             "percentile": CalibrationMethod.Percentile}[method]
    CalibrationDataReader.register(type(reader))
    extra = {"CalibMovingAverage": False, "CalibPercentile": 99.99}
    if weight_range == "pair-safe":
        extra["TensorQuantOverrides"] = pair_safe_overrides(onnx.load(str(pre_path)).graph, exclude)
    # the quantizer logs a WARNING per tensor (e.g. tiny-bias notes); keep the console readable
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_static(str(pre_path), str(out_path), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=weight_range == "7bit", activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=calib, nodes_to_exclude=list(exclude),
                        extra_options=extra)
    finally:
        root.setLevel(level)


def convert_fp16(fp32_path, out_path):
    """FP16 weights and activations for GPUs; inputs and outputs keep their types for the caller
    (float32, or a uint8 image input). The in-graph normalisation of a uint8-input model stays
    float32 (the converter would retype the Cast's output but not its `to`, an invalid graph)
    and is cast to float16 before the first conv."""
    from onnxconverter_common import float16

    m = onnx.load(str(fp32_path))
    with warnings.catch_warnings(record=True) as caught:  # one warning per clipped weight: a count says enough
        warnings.simplefilter("always")
        m = float16.convert_float_to_float16(m, keep_io_types=True, node_block_list=preprocessing_nodes(m.graph))
    clipped = sum("truncated" in str(w.message) for w in caught)
    if clipped:
        log.info(f"FP16: {clipped} weight value(s) outside float16's range were clipped to it")
    onnx.save(m, str(out_path))
