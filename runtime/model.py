"""onnxruntime inference for an asl-edge ONNX model; everything it needs is in the file."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from .contract import CONTRACT_KEY, ModelContract
from .errors import UserError

DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "default.onnx"


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def resolve_model_path(model) -> Path:
    if model is None:
        if not DEFAULT_MODEL.is_file():
            raise UserError(f"no --model given and no default model shipped at {DEFAULT_MODEL}; "
                            "pass --model PATH.onnx (made by asl-export)")
        return DEFAULT_MODEL
    path = Path(model)
    if not path.is_file():
        raise UserError(f"model file not found: {path} (pass an .onnx file made by asl-export)")
    return path


def choose_providers(provider: str = "auto", log=print) -> list:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if provider == "cpu":
        return ["CPUExecutionProvider"]
    if provider in ("cuda", "auto"):
        if "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if provider == "cuda":
            log("CUDA was asked for but this onnxruntime has no CUDAExecutionProvider "
                "(install onnxruntime-gpu); falling back to CPU")
        return ["CPUExecutionProvider"]
    raise UserError(f"unknown provider {provider!r}: use auto, cpu or cuda")


class OnnxClassifier:
    """Loads an asl-edge ONNX file; classifies RGB images with the file's own contract."""

    def __init__(self, path=None, provider: str = "auto", threads: int | None = None, log=None):
        import onnxruntime as ort

        log = log or (lambda msg: print(msg, file=sys.stderr))
        self.path = resolve_model_path(path)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        t0 = time.perf_counter()
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts,
                                                providers=choose_providers(provider, log))
        except UserError:
            raise
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"cannot load ONNX model {self.path}: {first[:300]}") from None
        self.load_seconds = time.perf_counter() - t0
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        if CONTRACT_KEY not in self.metadata:
            raise UserError(f"{self.path} is not an asl-edge model (no {CONTRACT_KEY} in its metadata); "
                            "export it with asl-export")
        self.contract = ModelContract.from_json(self.metadata[CONTRACT_KEY])
        self.input_name = self.session.get_inputs()[0].name
        self.providers = self.session.get_providers()

    @property
    def classes(self):
        return self.contract.classes

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Preprocessed batch -> logits (N, classes)."""
        return self.session.run(None, {self.input_name: batch})[0]

    def logits(self, images_rgb) -> np.ndarray:
        return self.run(self.contract.preprocess_batch(images_rgb))

    def predict(self, images_rgb) -> np.ndarray:
        """RGB uint8 images (any size) -> class probabilities (N, classes), calibrated with the
        file's temperature."""
        return self.contract.probabilities(self.logits(images_rgb))

    def warmup(self, runs: int = 2) -> float:
        """Run a blank frame through the model; returns the first run's seconds."""
        blank = np.zeros((self.contract.input_size, self.contract.input_size, 3), np.uint8)
        t0 = time.perf_counter()
        self.predict([blank])
        first = time.perf_counter() - t0
        for _ in range(runs - 1):
            self.predict([blank])
        return first

    def top_k(self, probs_row: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
        idx = np.argsort(-probs_row)[:k]
        return [(self.classes[i], float(probs_row[i])) for i in idx]
