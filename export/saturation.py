"""Where an INT8 model's dot products overflow on x86 CPUs without VNNI, found in numpy.

onnxruntime's U8S8 kernels for AVX2-only x86 CPUs (AMD Zen 1-3, Intel before ~2020) multiply
uint8 activations by int8 weights with VPMADDUBSW: the two products of each adjacent pair along
the reduction axis, (k, k+1) with k even, are summed into a *saturating* int16 before being
widened. 255 x 127 twice is 64,770, far past 32,767. VNNI (VPDPBUSD) and ARM's dot-product and
NEON kernels accumulate in int32 and never saturate, so without care one file gives different
answers on different CPUs. Pair sums stay in range whatever the activations when, for every
same-signed weight pair, |w_k| + |w_k+1| <= 128 (255 x 128 = 32,640): 7-bit weights ([-64, 64],
onnxruntime's reduce_range) guarantee it.

`quantized_layers` reads the U8S8 matrix products of a QDQ model (weights in kernel order);
`unsafe_channels` says, from the weights alone, which output channels *can* saturate;
`count_saturations` runs real images and counts the pair sums that *do*, per layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from asl_edge.common.sessions import ort_session

from .feeds import chunks

INT16_MIN, INT16_MAX = -32768, 32767
UINT8_MAX = 255
# Largest |w_k| + |w_k+1| of a same-signed pair that cannot overflow int16 for any uint8 input.
SAFE_PAIR_MAGNITUDE = INT16_MAX // UINT8_MAX  # 128


@dataclass
class QuantizedLayer:
    """One U8S8 matrix product: weights as (out_channels, K) in the order the kernel reduces."""
    node: str
    weight_name: str          # the float weight's name (what quantizer overrides refer to)
    activation: str           # the uint8 tensor (a QuantizeLinear output) the kernel reads
    weight: np.ndarray        # int8 (C_out, K), K per group
    groups: int = 1
    kernel: tuple = (1, 1)
    strides: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)
    dilations: tuple = (1, 1)
    pad_value: int = 0        # the activation zero point: what padded pixels hold
    matmul: bool = False
    saturated: int = 0        # pair sums that overflowed, over the images counted
    pair_sums: int = 0        # pair sums computed, over the images counted
    per_channel: np.ndarray = field(default=None, repr=False)

    @property
    def depthwise(self) -> bool:
        # one input channel per group: onnxruntime's depthwise kernel widens to int16 and
        # accumulates products in int32 (no pair sums), so it cannot saturate
        return self.groups > 1 and self.weight.shape[1] == self.kernel[0] * self.kernel[1]


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def quantized_layers(model: onnx.ModelProto) -> list[QuantizedLayer]:
    """The Conv / MatMul / Gemm nodes of a QDQ model that onnxruntime runs as U8S8 integer
    kernels: a uint8 QuantizeLinear -> DequantizeLinear activation and an int8 weight initializer
    behind a DequantizeLinear."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}

    def dequantized(name):
        node = producer.get(name)
        return node if node is not None and node.op_type == "DequantizeLinear" else None

    layers = []
    for node in graph.node:
        if node.op_type not in ("Conv", "MatMul", "Gemm") or len(node.input) < 2:
            continue
        act_dq, w_dq = dequantized(node.input[0]), dequantized(node.input[1])
        if act_dq is None or w_dq is None or w_dq.input[0] not in inits:
            continue
        act_q = producer.get(act_dq.input[0])
        if act_q is None or act_q.op_type != "QuantizeLinear" or len(act_q.input) < 3:
            continue
        zp = inits.get(act_q.input[2])
        w = numpy_helper.to_array(inits[w_dq.input[0]])
        if zp is None or numpy_helper.to_array(zp).dtype != np.uint8 or w.dtype != np.int8:
            continue
        weight_name = w_dq.input[0].removesuffix("_quantized")
        common = dict(node=node.name, weight_name=weight_name, activation=act_q.output[0])
        a = _attrs(node)
        rows, _ = kernel_rows(w, node.op_type, a.get("transB", 0))
        if node.op_type == "Conv":
            kh, kw = w.shape[2:]
            layers.append(QuantizedLayer(
                weight=rows, groups=int(a.get("group", 1)),
                kernel=(kh, kw), strides=tuple(a.get("strides", (1, 1))), pads=tuple(a.get("pads", (0, 0, 0, 0))),
                dilations=tuple(a.get("dilations", (1, 1))), pad_value=int(numpy_helper.to_array(zp)), **common))
        else:
            layers.append(QuantizedLayer(weight=rows, matmul=True, **common))
    return layers


def pairs(w: np.ndarray):
    """(even, odd) halves of the reduction axis, zero-padded to an even length as the kernel does."""
    if w.shape[-1] % 2:
        w = np.concatenate([w, np.zeros(w.shape[:-1] + (1,), w.dtype)], axis=-1)
    return w[..., 0::2], w[..., 1::2]


def kernel_rows(weight: np.ndarray, op_type: str, trans_b: int = 0) -> tuple[np.ndarray, int]:
    """A Conv / MatMul / Gemm weight as (out_channels, K) in the order the integer kernel reduces,
    and the weight's per-channel axis. onnxruntime runs quantized convs channels-last, so im2col
    rows are (kh, kw, c)."""
    if op_type == "Conv":
        return weight.transpose(0, 2, 3, 1).reshape(weight.shape[0], -1), 0
    return (weight, 0) if trans_b else (weight.T, 1)


def unsafe_channels(layer: QuantizedLayer) -> np.ndarray:
    """Output channels with a same-signed weight pair that overflows int16 for some uint8 input."""
    if layer.depthwise:
        return np.zeros(layer.weight.shape[0], bool)
    even, odd = pairs(layer.weight.astype(np.int32))
    same_sign = (even * odd) > 0
    return (same_sign & (np.abs(even) + np.abs(odd) > SAFE_PAIR_MAGNITUDE)).any(axis=1)


def _rows(layer: QuantizedLayer, x: np.ndarray, group: int) -> np.ndarray:
    """The kernel's input rows (M, K) for one group, from a uint8 activation batch."""
    if layer.matmul:
        return x.reshape(-1, x.shape[-1])
    n, c = x.shape[:2]
    cg = c // layer.groups
    x = x[:, group * cg:(group + 1) * cg]
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel, layer.strides, layer.dilations
    t, l, b, r = layer.pads[0], layer.pads[1], layer.pads[2], layer.pads[3]
    if t or l or b or r:
        x = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=layer.pad_value)
    if (kh, kw) == (1, 1):
        return x[:, :, ::sh, ::sw].transpose(0, 2, 3, 1).reshape(-1, cg)
    win = np.lib.stride_tricks.sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw]              # (N, C, OH, OW, KH, KW)
    return win.transpose(0, 2, 3, 4, 5, 1).reshape(-1, kh * kw * cg)


def _count_layer(layer: QuantizedLayer, x: np.ndarray) -> None:
    out_ch = layer.weight.shape[0]
    if layer.per_channel is None:
        layer.per_channel = np.zeros(out_ch, np.int64)
    per_group = out_ch // layer.groups
    for g in range(layer.groups if not layer.matmul else 1):
        rows = _rows(layer, x, g)
        w = layer.weight[g * per_group:(g + 1) * per_group].astype(np.int32)
        w_even, w_odd = pairs(w)
        x_even, x_odd = pairs(rows)
        layer.pair_sums += rows.shape[0] * w_even.shape[0] * w_even.shape[1]
        if layer.depthwise:
            continue
        risky = ((w_even * w_odd) > 0) & (np.abs(w_even) + np.abs(w_odd) > SAFE_PAIR_MAGNITUDE)
        for p in np.flatnonzero(risky.any(axis=0)):
            # the pair sum depends only on the two activations: count each (x_k, x_k+1) value once
            hist = np.bincount(x_even[:, p].astype(np.int32) * 256 + x_odd[:, p], minlength=65536)
            codes = np.flatnonzero(hist)
            xe, xo, n = (codes // 256)[:, None], (codes % 256)[:, None], hist[codes][:, None]
            outs = np.flatnonzero(risky[:, p])
            s = xe * w_even[outs, p] + xo * w_odd[outs, p]
            hits = (((s > INT16_MAX) | (s < INT16_MIN)) * n).sum(axis=0)
            layer.per_channel[g * per_group + outs] += hits
            layer.saturated += int(hits.sum())


def activation_model(model: onnx.ModelProto, layers) -> onnx.ModelProto:
    """A copy of the model that also outputs each layer's uint8 input."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for name in dict.fromkeys(layer.activation for layer in layers):
        if name not in have:
            m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.UINT8, None))
    return m


def count_saturations(model_path, batch, chunk: int = 8) -> list[QuantizedLayer]:
    """Run `batch` (the model's input format; or feeds by input name for a model with several
    inputs) through the QDQ model and count, per layer, the VPMADDUBSW pair sums that would
    overflow int16 on an AVX2-only x86 CPU."""
    model = onnx.load(str(model_path))
    layers = quantized_layers(model)
    if not layers:
        return []
    probe = activation_model(model, layers)
    # no fusion: the QuantizeLinear outputs must stay real tensors
    sess = ort_session(probe.SerializeToString(), optimize=False)
    names = [o.name for o in sess.get_outputs()]
    feeds = batch if isinstance(batch, dict) else {sess.get_inputs()[0].name: batch}
    for part in chunks(feeds, chunk):
        values = dict(zip(names, sess.run(None, part)))
        for layer in layers:
            _count_layer(layer, values[layer.activation])
    return layers


def summary(layers) -> dict:
    """Totals for reports: layers that can / did saturate and the overflowed pair-sum fraction."""
    risky = [layer for layer in layers if unsafe_channels(layer).any()]
    hit = [layer for layer in layers if layer.saturated]
    pair_sums = sum(layer.pair_sums for layer in layers)
    saturated = sum(layer.saturated for layer in layers)
    return {"layers": len(layers), "layers_that_can_saturate": len(risky), "layers_saturated": len(hit),
            "saturated_pair_sums": saturated, "pair_sums": pair_sums,
            "saturated_fraction": saturated / pair_sums if pair_sums else 0.0,
            "saturated_layers": [layer.node for layer in hit]}


def overflow_risk(model_path, batch, chunk: int = 8) -> tuple[dict, int]:
    """count_saturations' summary for `batch`, and the output channels whose int16 pair sums could overflow
    for some input (0 with pair-safe weights)."""
    layers = count_saturations(model_path, batch, chunk)
    return summary(layers), sum(int(unsafe_channels(layer).sum()) for layer in layers)
