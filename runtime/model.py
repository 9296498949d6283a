"""onnxruntime inference for an asl-edge ONNX model; everything it needs is in the file."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .contract import AGREEMENT_OUTPUT, CONTRACT_KEY, EMBEDDING_OUTPUT, ModelContract
from asl_edge.common.cpu import int8_isa
from asl_edge.common.errors import UserError, first_line
from asl_edge.common.fileio import file_sha256
from .landmarks import LANDMARKS_INPUT, PRESENCE, for_width
from asl_edge.common.limits import env_number
from asl_edge.common.sessions import BoundedRuns, choose_providers, ort_session, session_options
from .profile import Profile

log = logging.getLogger(__name__)

DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "default.onnx"
# Every inference is waited for at most this long (seconds; default 120): a graph that never ends stops
# with one line, and Ctrl-C works while it runs.
RUN_LIMIT_ENV = "ASL_EDGE_RUN_LIMIT_S"


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


def export_settings(metadata: dict) -> dict:
    """What asl-export wrote about how the file was made ({} for a file without it)."""
    text = metadata.get("asl_edge.export", "{}")
    try:
        export = json.loads(text) if len(text) <= 100_000 else {}
    except (ValueError, RecursionError):
        return {}
    return export if isinstance(export, dict) else {}


def needs_precise_int8(metadata: dict, isa: str) -> bool:
    """True for an INT8 file exported before pair-safe weights (or with --int8-weights 8bit) running
    on an x86 CPU without VNNI, where its int16 pair sums can overflow."""
    export = export_settings(metadata)
    if export.get("precision") != "int8":
        return False
    return "no VNNI" in isa and export.get("weight_range", "8bit") == "8bit"


_INPUT = {"float": ("tensor(float)", "N,3,S,S"), "uint8": ("tensor(uint8)", "N,S,S,3")}


def check_graph(session, contract: ModelContract, path):
    """The contract must describe the graph it travels with: one input of the stated dtype and
    shape, one output with one column per class. Otherwise the model is refused at load."""
    ins, outs = session.get_inputs(), session.get_outputs()

    def refuse(what):
        return UserError(f"{path}: its contract does not match its graph ({what}); "
                         "re-export it with asl-export, which writes both together")

    want_inputs = 2 if contract.landmarks else 1
    if len(ins) != want_inputs or not outs:
        raise refuse(f"{len(ins)} inputs and {len(outs)} outputs, expected {want_inputs} and 1")
    if contract.landmarks:
        lm = ins[1]
        dims = list(lm.shape)
        if lm.name != LANDMARKS_INPUT or lm.type != "tensor(float)" or len(dims) != 2 \
                or (isinstance(dims[1], int) and dims[1] != contract.landmarks):
            raise refuse(f"second input {lm.name} {lm.type} {dims}, contract says {LANDMARKS_INPUT} float "
                         f"[N, {contract.landmarks}]")
    dtype, layout = _INPUT[contract.input_format]
    if ins[0].type != dtype:
        raise refuse(f"input type {ins[0].type}, contract says {contract.input_format} ({dtype})")
    s = contract.input_size
    want = [None] + ([3, s, s] if layout == "N,3,S,S" else [s, s, 3])
    shape = list(ins[0].shape)
    fixed = [d if isinstance(d, int) else None for d in shape]  # symbolic dims match anything
    if len(shape) != 4 or any(f is not None and w is not None and f != w for f, w in zip(fixed, want)):
        raise refuse(f"input shape {shape}, contract says {layout} with S={s}")
    names = [o.name for o in outs]
    if contract.agreement and (len(outs) < 2 or outs[1].name != AGREEMENT_OUTPUT):
        raise refuse(f"outputs {names}, contract says a second output {AGREEMENT_OUTPUT!r}")
    if contract.embedding:
        emb = outs[-1]
        edims = list(emb.shape)
        if len(outs) != 2 + contract.agreement or emb.name != EMBEDDING_OUTPUT or emb.type != "tensor(float)" \
                or len(edims) != 2 or (isinstance(edims[1], int) and edims[1] != contract.embedding_width):
            raise refuse(f"outputs {names}, contract says a last output {EMBEDDING_OUTPUT!r} float "
                         f"[N, {contract.embedding_width}]")
    if outs[0].type not in ("tensor(float)", "tensor(float16)"):
        raise refuse(f"output type {outs[0].type}, expected float logits")
    oshape = list(outs[0].shape)
    if len(oshape) != 2 or (isinstance(oshape[1], int) and oshape[1] != contract.num_classes):
        raise refuse(f"output shape {oshape}, contract has {contract.num_classes} classes")


@dataclass(frozen=True)
class Scores:
    """One batch through the model (and the personal profile in use)."""
    logits: np.ndarray             # (N, classes): the model's own
    probs: np.ndarray              # (N, classes): calibrated; fused with the profile on rows with a hand
    agreement: np.ndarray          # (N,) bool: the image and landmark classifiers agree (all True without)
    embedding: np.ndarray | None   # (N, width), or None for a file without that output


class OnnxClassifier:
    """Loads an asl-edge ONNX file; classifies RGB images with the file's own contract."""

    def __init__(self, path=None, provider: str = "auto", threads: int | None = None, take_turns: bool = False):
        """take_turns: it takes turns with other models on the same cores (common/sessions.session_options)."""
        self.path = resolve_model_path(path)
        opts = session_options(threads, take_turns=take_turns)
        t0 = time.perf_counter()
        try:
            self.session = ort_session(self.path, opts=opts, providers=choose_providers(provider))
        except UserError:
            raise
        except Exception as e:
            raise UserError(f"cannot load ONNX model {self.path}: {first_line(e)}") from None
        self.load_seconds = time.perf_counter() - t0
        self._runs, self._limit = BoundedRuns(), env_number(RUN_LIMIT_ENV, 120.0)
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        if CONTRACT_KEY not in self.metadata:
            raise UserError(f"{self.path} is not an asl-edge model (no {CONTRACT_KEY} in its metadata); "
                            "export it with asl-export")
        try:
            self.contract = ModelContract.from_json(self.metadata[CONTRACT_KEY])
        except UserError as e:
            raise UserError(f"{self.path}: {e}") from None
        check_graph(self.session, self.contract, self.path)
        providers = self.session.get_providers()
        if export_settings(self.metadata).get("precision") == "int8" and providers[0] == "CUDAExecutionProvider":
            # INT8 (QDQ) on CUDA runs partly on the CPU with copies between, several times slower than the CPU
            # (benchmarks/RESULTS.md, "CUDA"). auto keeps such a file on the CPU; an explicit cuda is obeyed.
            if provider == "auto":
                providers = ["CPUExecutionProvider"]
            else:
                log.info(f"note: {self.path.name} is INT8, slower on CUDA than on the CPU; for a GPU use the FP32 or "
                         "FP16 file (asl-export --quantize fp16)")
        precise = needs_precise_int8(self.metadata, int8_isa())
        if precise:
            # an older full-range INT8 file on an AVX2-only CPU: its int16 pair sums would overflow;
            # onnxruntime's slower exact U8S8 path avoids that (re-export with asl-export to drop it)
            opts.add_session_config_entry("session.x64quantprecision", "1")
            log.info(f"note: {self.path.name} has full-range INT8 weights and this CPU lacks VNNI; using onnxruntime's "
                     "exact (slower) INT8 kernels. Re-export with asl-export for pair-safe weights.")
        if precise or providers != self.session.get_providers():
            self.session = ort_session(self.path, opts=opts, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.providers = self.session.get_providers()
        self.profile: Profile | None = None  # use_profile()
        self._sha256 = None

    @property
    def classes(self):
        return self.contract.classes

    @property
    def uses_landmarks(self) -> bool:
        return bool(self.contract.landmarks)

    def use_profile(self, path) -> Profile:
        """Fuse a personal profile (asl-enroll) into every classification from now on; one line when it
        was made for another model file or the file has no embedding."""
        if not self.contract.embedding:
            raise UserError(f"{self.path} has no embedding output, so a profile cannot be used with it; "
                            "re-export it with this asl-export")
        self.profile = Profile.load(path).check_model(self.sha256, self.contract, path)
        return self.profile

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = file_sha256(self.path)
        return self._sha256

    def run(self, batch: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        """Preprocessed batch (+ for a landmark model its (N, 66) landmark rows, runtime/landmarks.py;
        None: no hand in any image) -> logits (N, classes). An image-only model ignores landmarks."""
        return self._outputs(batch, landmarks)[0]

    def classify(self, batch: np.ndarray, landmarks: np.ndarray | None = None) -> Scores:
        """Preprocessed batch (and landmark rows) -> Scores: the logits, the calibrated probabilities
        (fused with the profile in use on rows with a hand), the agreement and the embedding."""
        out, agree, embedding, rows = self._outputs(batch, landmarks)
        probs = self.contract.probabilities(out)
        if self.profile is not None:
            # enrolled on frames with a hand: rows without one keep the model's probabilities
            hand = np.ones(len(out), bool) if rows is None else rows[:, PRESENCE] > 0
            if hand.any():
                probs[hand] = self.profile.scores(probs[hand], embedding[hand], self.classes, self.contract.embedding)
        return Scores(out, probs, agree, embedding)

    def _outputs(self, batch, landmarks=None) -> tuple:
        """The graph run and checked: (logits, agreement, embedding or None, the landmark rows fed or None)."""
        feeds = {self.input_name: batch}
        rows = None
        if self.contract.landmarks:
            rows = (np.zeros((len(batch), self.contract.landmarks), np.float32) if landmarks is None
                    else for_width(landmarks, self.contract.landmarks))
            feeds[LANDMARKS_INPUT] = rows
        try:
            outs = self._runs(lambda options: self.session.run(None, feeds, options), self._limit, self._too_long)
        except Exception as e:  # onnxruntime's run-time failures (a bad reshape, an allocation too large)
            if isinstance(e, (KeyboardInterrupt, UserError)):
                raise
            raise UserError(f"{self.path}: onnxruntime could not run the model ({first_line(e)}); "
                            "re-export it with asl-export") from None
        out = outs[0]
        if out.ndim != 2 or out.shape[1] != self.contract.num_classes:  # symbolic dims pass check_graph
            raise UserError(f"{self.path}: its contract does not match its graph (output shape {list(out.shape)}, "
                            f"contract has {self.contract.num_classes} classes); re-export it with asl-export")
        if not np.isfinite(out).all():
            raise UserError(f"{self.path}: the model gave non-finite scores (NaN or infinity): its weights are "
                            "broken; retrain or re-export it")
        agree = (np.asarray(outs[1]).reshape(len(out)).astype(bool) if self.contract.agreement
                 else np.ones(len(out), bool))
        embedding = np.asarray(outs[-1], np.float32) if self.contract.embedding else None
        return out, agree, embedding, rows

    def logits(self, images_rgb, landmarks=None) -> np.ndarray:
        return self.run(self.contract.preprocess_batch(images_rgb), landmarks)

    def predict(self, images_rgb, landmarks=None) -> np.ndarray:
        """RGB uint8 images (any size) -> class probabilities (N, classes), calibrated with the
        file's temperature (and fused with the profile in use)."""
        return self.classify(self.contract.preprocess_batch(images_rgb), landmarks).probs

    def warmup(self, runs: int = 2) -> float:
        """Run a blank frame through the model; returns the first run's seconds."""
        blank = np.zeros((1, self.contract.input_size, self.contract.input_size, 3), np.uint8)
        x = self.contract.preprocess_batch(blank)
        t0 = time.perf_counter()
        self.classify(x)
        first = time.perf_counter() - t0
        for _ in range(runs - 1):
            self.classify(x)
        return first

    def _too_long(self) -> UserError:
        return UserError(f"{self.path}: the model did not finish one inference in {self._limit:g} s (a graph that "
                         f"never ends?); re-export it with asl-export, or raise ${RUN_LIMIT_ENV}")

    def top_k(self, probs_row: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
        idx = np.argsort(-probs_row)[:k]
        return [(self.classes[i], float(probs_row[i])) for i in idx]
