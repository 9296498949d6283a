"""INT8 (static, QDQ, calibrated on real images) and FP16 variants of an FP32 ONNX model."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx

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
    or uint8 NHWC for a model that normalises inside)."""

    def __init__(self, input_name, batch, chunk=16):
        self._it = iter([{input_name: batch[i:i + chunk]} for i in range(0, len(batch), chunk)])

    def get_next(self):
        return next(self._it, None)


def quantize_int8(fp32_path, out_path, calib_batch: np.ndarray, method="minmax", reduce_range=False):
    """Static INT8 in QDQ format with per-channel weights, after quant_pre_process.

    Types: uint8 activations with int8 weights (U8S8): the fastest kernels on x86-64 with
    VNNI and on ARM (measured here: U8S8 0.34 ms, S8S8 1.56 ms, U8U8 5.3 ms per image).
    On x86-64 CPUs *without* VNNI (AVX2 only), U8S8 uses VPMADDUBSW whose int16 sums can
    saturate: reduce_range=True (7-bit weights) avoids that there, at some accuracy cost,
    so it is an option rather than the default. The first convolution (raw pixels) and
    the classifier layer (the logits) stay in float: both are tiny, and both are where
    rounding hurts most. So do the nodes before the first conv (the in-graph normalisation of
    a uint8-input model): calib_batch is then uint8 NHWC, like the model's input.
    """
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calib = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
             "percentile": CalibrationMethod.Percentile}[method]
    input_name = onnx.load(str(fp32_path), load_external_data=False).graph.input[0].name
    with tempfile.TemporaryDirectory(prefix="asl-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=False)
        # histogram calibrators need equal-sized batches
        reader = _BatchReader(input_name, calib_batch, chunk=16 if method == "minmax" else 1)
        graph = onnx.load(str(pre)).graph
        convs = [n.name for n in graph.node if n.op_type == "Conv"]
        heads = [n.name for n in graph.node if n.op_type in ("Gemm", "MatMul")]
        exclude = preprocessing_nodes(graph) + convs[:1] + heads[-1:]
        CalibrationDataReader.register(_BatchReader)
        # the quantizer logs a WARNING per tensor (e.g. tiny-bias notes); keep the console readable
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            quantize_static(str(pre), str(out_path), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            reduce_range=reduce_range, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=calib, nodes_to_exclude=exclude,
                            extra_options={"CalibMovingAverage": False, "CalibPercentile": 99.99})
        finally:
            root.setLevel(level)


def convert_fp16(fp32_path, out_path):
    """FP16 weights and activations for GPUs; inputs and outputs keep their types for the caller
    (float32, or a uint8 image input). The in-graph normalisation of a uint8-input model stays
    float32 (the converter would retype the Cast's output but not its `to`, an invalid graph)
    and is cast to float16 before the first conv."""
    from onnxconverter_common import float16

    m = onnx.load(str(fp32_path))
    m = float16.convert_float_to_float16(m, keep_io_types=True, node_block_list=preprocessing_nodes(m.graph))
    onnx.save(m, str(out_path))
