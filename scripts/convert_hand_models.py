"""Dev-only: convert MediaPipe Hands' palm detector and hand-landmark model (.tflite, Apache-2.0,
inside the mediapipe 0.10.x wheel) to ONNX for runtime/models/, and check them.

    pip download --no-deps "mediapipe==0.10.21" -d wheels/
    python -m venv conv && conv/bin/pip install tflite onnx onnxruntime ai-edge-litert numpy
    conv/bin/python scripts/convert_hand_models.py wheels/mediapipe-0.10.21-*.whl --out runtime/models \
        --check-images ../shared/data/roboflow_asl_letters/train/A

(Shipped files made with tflite 2.18.0, onnx 1.23.2, ai-edge-litert 2.3.0, onnxruntime 1.32.0,
numpy 2.4.6; a rerun gave byte-identical .onnx files.)

Why a small converter of our own: tflite2onnx 0.4.1 stops on the palm detector (a layout
error at its channel PAD), and tf2onnx needs all of TensorFlow. These two graphs use 13 plain
TFLite ops (float16 weights + DEQUANTIZE, CONV_2D, DEPTHWISE_CONV_2D, PRELU, ADD, MAX_POOL_2D,
PAD, RESIZE_BILINEAR, RESHAPE, CONCATENATION, MEAN, FULLY_CONNECTED, LOGISTIC), each mapped to
its ONNX equivalent here; activations are NCHW inside the ONNX graph, input and outputs keep
the TFLite shapes (NHWC float input in [0, 1]). Weights are stored as float32.

Every file is checked with onnx.checker and numerically against the TFLite interpreter
(ai-edge-litert) on real-looking inputs (random noise and smooth gradients); the script fails
when any output differs by more than --tol. It writes the .onnx files and provenance.json
(wheel, member, SHA-256 of both files, max differences).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

MODELS = {  # wheel member -> (onnx file, output names in TFLite output order)
    "mediapipe/modules/palm_detection/palm_detection_full.tflite":
        ("palm_detection_full.onnx", ["regressors", "scores"]),
    "mediapipe/modules/hand_landmark/hand_landmark_full.tflite":
        ("hand_landmark_full.onnx", ["landmarks", "presence", "handedness", "world_landmarks"]),
    "mediapipe/modules/hand_landmark/hand_landmark_lite.tflite":
        ("hand_landmark_lite.onnx", ["landmarks", "presence", "handedness", "world_landmarks"]),
}
OPS = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
NP_TYPES = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16,
            tflite.TensorType.INT32: np.int32, tflite.TensorType.INT64: np.int64}
NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


def options(op, cls):
    table = op.BuiltinOptions()
    o = cls()
    o.Init(table.Bytes, table.Pos)
    return o


def same_pads(size, k, stride, dilation=1):
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class Converter:
    def __init__(self, data: bytes):
        self.m = tflite.Model.GetRootAsModel(data, 0)
        self.g = self.m.Subgraphs(0)
        self.nodes, self.inits = [], []
        self.consts = {}   # tensor index -> numpy (float32 for DEQUANTIZEd weights)
        self.names = {}    # tensor index -> ONNX value name
        self.nchw = set()  # tensor indices whose ONNX value is NCHW (4-D activations)
        self.count = 0
        for i in range(self.g.TensorsLength()):
            t = self.g.Tensors(i)
            buf = self.m.Buffers(t.Buffer()).DataAsNumpy()
            if isinstance(buf, np.ndarray) and buf.size:
                self.consts[i] = buf.view(NP_TYPES[t.Type()]).reshape(t.ShapeAsNumpy())

    def shape(self, i):
        return [int(v) for v in self.g.Tensors(i).ShapeAsNumpy()]

    def fresh(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, arr, hint="c"):
        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(self, op, inputs, hint=None, **attrs):
        out = self.fresh(hint or op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def value(self, i):
        """ONNX name of tensor i (constants become initializers on first use)."""
        if i not in self.names:
            self.names[i] = self.const(self.consts[i].astype(np.float32), "w")
        return self.names[i]

    def activation(self, name, fused):
        if fused == tflite.ActivationFunctionType.NONE:
            return name
        if fused == tflite.ActivationFunctionType.RELU:
            return self.node("Relu", [name])
        if fused == tflite.ActivationFunctionType.RELU6:
            return self.node("Clip", [name, self.const(np.float32(0)), self.const(np.float32(6))])
        raise NotImplementedError(f"fused activation {fused}")

    def to_nhwc(self, i):
        name = self.value(i)
        return self.node("Transpose", [name], perm=[0, 2, 3, 1]) if i in self.nchw else name

    def convert(self, out_names):
        g = self.g
        (inp,) = [g.Inputs(k) for k in range(g.InputsLength())]
        in_shape = self.shape(inp)
        self.names[inp] = self.node("Transpose", ["input"], "input_nchw", perm=[0, 3, 1, 2])
        self.nchw.add(inp)
        for k in range(g.OperatorsLength()):
            self.op(g.Operators(k))
        outputs = []
        for k, nice in enumerate(out_names):
            i = g.Outputs(k)
            self.nodes.append(helper.make_node("Identity", [self.to_nhwc(i)], [nice]))
            outputs.append(helper.make_tensor_value_info(nice, TensorProto.FLOAT, self.shape(i)))
        graph = helper.make_graph(self.nodes, "graph", [helper.make_tensor_value_info(
            "input", TensorProto.FLOAT, in_shape)], outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                  producer_name="asl-edge scripts/convert_hand_models.py")
        model.ir_version = 8
        return model

    def op(self, op):
        code = self.m.OperatorCodes(op.OpcodeIndex())
        name = OPS[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins = [op.Inputs(k) for k in range(op.InputsLength())]
        (out,) = [op.Outputs(k) for k in range(op.OutputsLength())]
        getattr(self, "op_" + name.lower())(op, ins, out)

    # --- ops -------------------------------------------------------------------------------
    def op_dequantize(self, op, ins, out):
        self.consts[out] = self.consts[ins[0]].astype(np.float32)

    def _conv(self, op, ins, out, depthwise):
        o = options(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
        w = self.consts[ins[1]]                      # [O, kh, kw, I] or [1, kh, kw, C*mult]
        _, ih, iw, cin = self.shape(ins[0])
        kh, kw = w.shape[1:3]
        if depthwise:
            w = w.transpose(3, 0, 1, 2)              # [C*mult, 1, kh, kw]
            group = cin
        else:
            w = w.transpose(0, 3, 1, 2)
            group = 1
        dh, dw = o.DilationHFactor(), o.DilationWFactor()
        if o.Padding() == tflite.Padding.SAME:
            (t, b), (l, r) = same_pads(ih, kh, o.StrideH(), dh), same_pads(iw, kw, o.StrideW(), dw)
        else:
            t = b = l = r = 0
        args = [self.value(ins[0]), self.const(w.astype(np.float32), "w")]
        if len(ins) > 2 and ins[2] >= 0:
            args.append(self.value(ins[2]))
        y = self.node("Conv", args, kernel_shape=[kh, kw], strides=[o.StrideH(), o.StrideW()],
                      dilations=[dh, dw], pads=[t, l, b, r], group=group)
        self.names[out] = self.activation(y, o.FusedActivationFunction())
        self.nchw.add(out)

    def op_conv_2d(self, op, ins, out):
        self._conv(op, ins, out, False)

    def op_depthwise_conv_2d(self, op, ins, out):
        self._conv(op, ins, out, True)

    def op_prelu(self, op, ins, out):
        alpha = self.consts[ins[1]]
        assert ins[0] in self.nchw and alpha.size == alpha.shape[-1], alpha.shape
        a = self.const(alpha.reshape(-1, 1, 1).astype(np.float32), "alpha")
        self.names[out] = self.node("PRelu", [self.value(ins[0]), a])
        self.nchw.add(out)

    def op_add(self, op, ins, out):
        assert all(i in self.nchw for i in ins), "ADD of non-activation tensors"
        y = self.node("Add", [self.value(i) for i in ins])
        self.names[out] = self.activation(y, options(op, tflite.AddOptions).FusedActivationFunction())
        self.nchw.add(out)

    def op_max_pool_2d(self, op, ins, out):
        o = options(op, tflite.Pool2DOptions)
        _, ih, iw, _ = self.shape(ins[0])
        kh, kw = o.FilterHeight(), o.FilterWidth()
        if o.Padding() == tflite.Padding.SAME:
            (t, b), (l, r) = same_pads(ih, kh, o.StrideH()), same_pads(iw, kw, o.StrideW())
        else:
            t = b = l = r = 0
        y = self.node("MaxPool", [self.value(ins[0])], kernel_shape=[kh, kw],
                      strides=[o.StrideH(), o.StrideW()], pads=[t, l, b, r])
        self.names[out] = self.activation(y, o.FusedActivationFunction())
        self.nchw.add(out)

    def op_pad(self, op, ins, out):
        p = self.consts[ins[1]].astype(np.int64)      # [[n0,n1],[h0,h1],[w0,w1],[c0,c1]]
        assert ins[0] in self.nchw
        order = [0, 3, 1, 2]
        pads = [p[a, 0] for a in order] + [p[a, 1] for a in order]
        self.names[out] = self.node("Pad", [self.value(ins[0]), self.const(np.array(pads, np.int64))])
        self.nchw.add(out)

    def op_resize_bilinear(self, op, ins, out):
        o = options(op, tflite.ResizeBilinearOptions)
        n, _, _, c = self.shape(ins[0])
        h, w = (int(v) for v in self.consts[ins[1]])
        mode = "align_corners" if o.AlignCorners() else "half_pixel" if o.HalfPixelCenters() else "asymmetric"
        self.names[out] = self.node("Resize", [self.value(ins[0]), "", "", self.const(np.array([n, c, h, w], np.int64))],
                                    mode="linear", coordinate_transformation_mode=mode)
        self.nchw.add(out)

    def op_reshape(self, op, ins, out):
        shape = np.array(self.shape(out), np.int64)
        self.names[out] = self.node("Reshape", [self.to_nhwc(ins[0]), self.const(shape)])

    def op_concatenation(self, op, ins, out):
        o = options(op, tflite.ConcatenationOptions)
        axis = o.Axis() % len(self.shape(out))
        if all(i in self.nchw for i in ins):
            axis = NHWC_TO_NCHW_AXIS[axis]
            self.nchw.add(out)
        y = self.node("Concat", [self.value(i) if out in self.nchw else self.to_nhwc(i) for i in ins], axis=axis)
        self.names[out] = self.activation(y, o.FusedActivationFunction())

    def op_mean(self, op, ins, out):
        keep = options(op, tflite.ReducerOptions).KeepDims()
        axes = [int(a) % 4 for a in self.consts[ins[1]].ravel()]
        assert ins[0] in self.nchw
        axes = [NHWC_TO_NCHW_AXIS[a] for a in axes]
        y = self.node("ReduceMean", [self.value(ins[0])], axes=sorted(axes), keepdims=int(bool(keep)))
        if keep:
            self.names[out] = y
            self.nchw.add(out)
        else:  # the remaining axes keep their NHWC order only when at most one non-unit remains
            self.names[out] = self.node("Reshape", [y, self.const(np.array(self.shape(out), np.int64))])

    def op_fully_connected(self, op, ins, out):
        o = options(op, tflite.FullyConnectedOptions)
        w = self.consts[ins[1]]                       # [out, in]
        x = self.node("Reshape", [self.to_nhwc(ins[0]), self.const(np.array([-1, w.shape[1]], np.int64))])
        args = [x, self.const(w.astype(np.float32), "w")]
        if len(ins) > 2 and ins[2] >= 0:
            args.append(self.value(ins[2]))
        y = self.node("Gemm", args, transB=1)
        y = self.activation(y, o.FusedActivationFunction())
        self.names[out] = self.node("Reshape", [y, self.const(np.array(self.shape(out), np.int64))])

    def op_logistic(self, op, ins, out):
        self.names[out] = self.node("Sigmoid", [self.value(ins[0])])
        if ins[0] in self.nchw:
            self.nchw.add(out)


def test_inputs(shape, n=4, seed=0):
    rng = np.random.default_rng(seed)
    _, h, w, _ = shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    smooth = np.stack([xx, yy, 0.5 * (xx + yy)], -1)[None].astype(np.float32)
    batch = [rng.random(shape, dtype=np.float32), smooth, 1 - smooth,
             np.clip(smooth + 0.2 * rng.standard_normal(shape), 0, 1).astype(np.float32)]
    return batch[:n]


def compare(tfl_bytes: bytes, onnx_path: Path, out_names, extra_inputs=()):
    from ai_edge_litert.interpreter import Interpreter
    import onnxruntime as ort
    it = Interpreter(model_content=tfl_bytes)
    it.allocate_tensors()
    (inp,) = it.get_input_details()
    outs = it.get_output_details()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = {n: 0.0 for n in out_names}
    for x in list(test_inputs(list(inp["shape"]))) + list(extra_inputs):
        it.set_tensor(inp["index"], x)
        it.invoke()
        ref = [it.get_tensor(o["index"]) for o in outs]
        got = sess.run(out_names, {"input": x})
        for n, r, g in zip(out_names, ref, got):
            assert r.shape == g.shape, (n, r.shape, g.shape)
            scale = max(1.0, float(np.abs(r).max()))
            worst[n] = max(worst[n], float(np.abs(r - g).max()) / scale)
    return worst


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("wheel", type=Path, help="a mediapipe 0.10.x wheel (pip download --no-deps mediapipe==0.10.21)")
    ap.add_argument("--out", type=Path, default=Path("runtime/models"))
    ap.add_argument("--tol", type=float, default=1e-3, help="max |tflite - onnx| / max(1, max|tflite|) per output")
    ap.add_argument("--check-images", type=Path, default=None,
                    help="optional folder of images; palm inputs are made from up to 8 of them")
    args = ap.parse_args(argv)
    if not args.wheel.is_file():
        sys.exit(f"error: wheel not found: {args.wheel}")
    args.out.mkdir(parents=True, exist_ok=True)
    prov = {"source": {"package": "mediapipe", "wheel": args.wheel.name, "sha256": sha256(args.wheel.read_bytes())},
            "converter": "scripts/convert_hand_models.py", "models": {}}
    with zipfile.ZipFile(args.wheel) as z:
        for member, (onnx_name, out_names) in MODELS.items():
            data = z.read(member)
            model = Converter(data).convert(out_names)
            onnx.checker.check_model(model, full_check=True)
            path = args.out / onnx_name
            onnx.save(model, str(path))
            extra = image_inputs(args.check_images, model.graph.input[0]) if args.check_images else ()
            worst = compare(data, path, out_names, extra)
            ok = all(v <= args.tol for v in worst.values())
            print(f"{onnx_name}: {path.stat().st_size / 1e6:.1f} MB, onnx.checker ok, max rel diff vs tflite "
                  + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()) + ("" if ok else "  FAILED"))
            if not ok:
                path.unlink()
                sys.exit(f"error: {onnx_name} differs from the TFLite model by more than {args.tol}")
            prov["models"][onnx_name] = {"wheel_member": member, "tflite_sha256": sha256(data),
                                         "onnx_sha256": sha256(path.read_bytes()),
                                         "max_rel_diff_vs_tflite": worst}
    (args.out / "hand_models_provenance.json").write_text(json.dumps(prov, indent=2) + "\n")
    print(f"wrote {args.out / 'hand_models_provenance.json'}")


def image_inputs(folder: Path, value_info):
    import cv2
    dims = [d.dim_value for d in value_info.type.tensor_type.shape.dim]
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:8]
    xs = []
    for f in files:
        bgr = cv2.imread(str(f))
        if bgr is None:
            continue
        rgb = cv2.cvtColor(cv2.resize(bgr, (dims[2], dims[1]), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        xs.append((rgb.astype(np.float32) / 255)[None])
    return xs


if __name__ == "__main__":
    main()
