"""The model contract: the one source of truth for classes and preprocessing.

It travels in every checkpoint (as a plain dict) and in every ONNX file (as JSON in
metadata_props under CONTRACT_KEY), so the runtime needs nothing but the model file.
Preprocessing is implemented here once, in numpy/OpenCV, and used both by the runtime
and by training's evaluation path, so both see the same tensor for the same image.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from asl_edge.common.errors import UserError, has_control
from .landmarks import LAYOUTS
from asl_edge.common.safeio import read_image_rgb

# Kaggle "ASL Alphabet" folder order (sorted as its folders list).
KAGGLE_CLASSES = [chr(c) for c in range(ord("A"), ord("Z") + 1)] + ["del", "nothing", "space"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained on (x*255 - 127) / 128.
LITE_MEAN = (127.0 / 255,) * 3
LITE_STD = (128.0 / 255,) * 3

CONTRACT_KEY = "asl_edge.contract"
CONTRACT_VERSION = 1
MAX_CONTRACT_CHARS = 100_000
MIN_STD = 1e-3
AGREEMENT_OUTPUT = "agreement"  # the graph output's name (ModelContract.agreement)
EMBEDDING_OUTPUT = "embedding"  # likewise (ModelContract.embedding)
EMBEDDING_PARTS = ("image", "landmarks")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# The hand crop (runtime/hands/roi.py square_box): a square this much wider than the hand's box, and
# what happens where it would leave the frame ("shift": moved inside, never larger than the frame's
# shorter side). Training crops the same way (train/data.py); measured against the edge-padded crop
# training used before: benchmarks/RESULTS.md, "The crop at the frame edge".
CROP_MARGIN = 0.25
CROP_EDGES = ("shift",)
# How the crop is resized to input_size. "area_down_linear_up": OpenCV's INTER_AREA when shrinking (its
# slow general path at a ratio that is not a whole number), linear when enlarging. "binned_linear":
# whole-factor pixel binning (INTER_AREA at an integer ratio, OpenCV's fast path) to the smallest size
# >= input_size, then linear. Files without the field keep the first; new models are trained with the
# second (benchmarks/RESULTS.md, "The crop's resize").
INTERPOLATIONS = ("area_down_linear_up", "binned_linear")
NEW_MODEL_INTERPOLATION = "binned_linear"


def _number(value) -> float:
    """A contract field as a float; NaN for anything that is not a number (text, None, true/false)."""
    if isinstance(value, bool):
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


@dataclass(frozen=True)
class ModelContract:
    classes: tuple = tuple(KAGGLE_CLASSES)
    input_size: int = 224
    color_order: str = "RGB"
    # center_crop: take the largest centred square, then resize to input_size x input_size.
    resize: str = "center_crop"
    interpolation: str = "area_down_linear_up"
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    layout: str = "NCHW"
    # "float": the graph takes normalised float32 NCHW; "uint8": the graph takes uint8 NHWC
    # RGB at input_size and normalises inside (the runtime then only resizes).
    input_format: str = "float"
    version: int = CONTRACT_VERSION
    # Confidence calibration: the runtime's probabilities are softmax(logits / temperature),
    # fitted on signers the model never trained on (benchmarks/studies/calibrate.py).
    # Optional: files from before it load with 1.0 (plain softmax).
    temperature: float = 1.0
    # Hand landmarks as a second input (runtime/landmarks.py): 0 = the image only; 66 = the graph
    # also takes "landmarks" (N, 66) float32, one row per image (all zeros where no hand was found);
    # 64 = the earlier layout without the hand's direction (files from before it).
    landmarks: int = 0
    # A landmark model's second output, "agreement" (N,) bool: true where its image and landmark
    # classifiers name the same class (or no hand was found), false where they differ. The speller accepts
    # only agreeing frames. Optional: files without it are treated as always agreeing.
    agreement: bool = False
    # The graph's last output, "embedding" (N, width) float32, what a personal profile is fitted on
    # (runtime/profile.py): ((part, width), ...) in column order, "image" (pooled image features)
    # then for a landmark model "landmarks" (its landmark classifier's last hidden layer).
    # Optional: files without it classify as before; asl-enroll refuses them.
    embedding: tuple = ()
    # The hand crop the model was trained on (JSON: "crop": {"margin": ..., "edge": ...}). Optional:
    # files without it get these defaults, the rule the runtime has always applied.
    crop_margin: float = CROP_MARGIN
    crop_edge: str = "shift"

    def __post_init__(self):
        # A contract comes from a file someone else wrote: check every field's type and range
        # here, so a bad one fails in one line instead of deep inside preprocessing.
        def bad(what):
            return UserError(f"malformed model contract: {what}; re-export the model with this asl-edge")

        if isinstance(self.classes, (str, bytes)) or not hasattr(self.classes, "__iter__"):
            raise bad("classes must be a list of names")
        object.__setattr__(self, "classes", tuple(self.classes))
        if not self.classes or not all(isinstance(c, str) and c for c in self.classes) \
                or len(set(self.classes)) != len(self.classes):
            raise bad("classes must be distinct, non-empty names")
        if any(has_control(c) or len(c) > 64 for c in self.classes):
            raise bad("class names must be printable text of at most 64 characters")
        for name in ("mean", "std"):
            v = getattr(self, name)
            try:
                v = tuple(float(m) for m in v)
            except (TypeError, ValueError):
                v = ()
            # pixels are 0..1 here: a std under MIN_STD would blow one grey level (1/255) up to 4 or more
            if len(v) != 3 or not all(abs(m) < 1e6 for m in v) or (name == "std" and min(v) < MIN_STD):
                raise bad(f"{name} must be 3 finite numbers" + (f" of at least {MIN_STD:g}" if name == "std" else ""))
            object.__setattr__(self, name, v)
        if isinstance(self.input_size, bool) or not isinstance(self.input_size, int) \
                or not 8 <= self.input_size <= 4096:
            raise bad(f"input_size must be a whole number of pixels from 8 to 4096, not {self.input_size!r}")
        if self.input_format not in ("float", "uint8"):
            raise bad(f"input_format must be float or uint8, not {self.input_format!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise bad(f"interpolation {self.interpolation!r}: this asl-edge knows {', '.join(INTERPOLATIONS)}")
        t = _number(self.temperature)
        if not (math.isfinite(t) and 0.01 <= t <= 100.0):
            raise UserError(f"bad model contract temperature {self.temperature!r}: must be a number in 0.01..100")
        object.__setattr__(self, "temperature", t)
        if self.landmarks not in (0, *LAYOUTS) or isinstance(self.landmarks, bool):
            raise bad(f"landmarks must be one of 0, {', '.join(map(str, LAYOUTS))}, not {self.landmarks!r}")
        if not isinstance(self.agreement, bool) or (self.agreement and not self.landmarks):
            raise bad(f"agreement must be true or false, and true only with landmarks, not {self.agreement!r}")
        try:
            parts = tuple((n, w) for n, w in (self.embedding.items() if isinstance(self.embedding, dict)
                                              else self.embedding) if isinstance(w, int) and not isinstance(w, bool))
        except (TypeError, ValueError):
            parts = None
        if parts is None or len(parts) != len(self.embedding) or len({n for n, _ in parts}) != len(parts) \
                or any(n not in EMBEDDING_PARTS or not 1 <= w <= 65536 for n, w in parts):
            raise bad(f"embedding must list distinct parts ({', '.join(EMBEDDING_PARTS)}) with their widths, "
                      f"not {self.embedding!r}")
        object.__setattr__(self, "embedding", parts)
        margin = _number(self.crop_margin)
        if not (math.isfinite(margin) and 0 <= margin <= 2):
            raise bad(f"crop margin must be a number in 0..2, not {self.crop_margin!r}")
        object.__setattr__(self, "crop_margin", margin)
        if self.crop_edge not in CROP_EDGES:
            raise bad(f"crop edge rule {self.crop_edge!r}: this asl-edge knows {', '.join(CROP_EDGES)}")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or not 1 <= self.version <= CONTRACT_VERSION:
            raise bad(f"version {self.version!r}: this asl-edge reads contract versions 1..{CONTRACT_VERSION}; "
                      "update asl-edge or re-export the model")
        if self.color_order != "RGB" or self.resize != "center_crop" or self.layout != "NCHW":
            raise UserError(f"unsupported model contract {self.to_dict()}: this asl-edge knows RGB, center_crop, NCHW")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def embedding_width(self) -> int:
        return sum(w for _, w in self.embedding)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        if self.temperature == 1.0:
            del d["temperature"]  # uncalibrated: the same dict (and cache keys) as before it existed
        if not self.landmarks:
            del d["landmarks"]  # image-only: likewise
        if not self.agreement:
            del d["agreement"]
        if self.embedding:
            d["embedding"] = dict(self.embedding)
        else:
            del d["embedding"]
        d["crop"] = {"margin": d.pop("crop_margin"), "edge": d.pop("crop_edge")}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelContract":
        if not isinstance(d, dict):
            raise UserError(f"malformed model contract: expected a mapping, found {type(d).__name__} "
                            "(a file from another asl-edge version?); re-export or retrain with this one")
        known = {f for f in cls.__dataclass_fields__} - {"crop_margin", "crop_edge"}
        crop = d.get("crop", {})
        if not isinstance(crop, dict):
            raise UserError(f"malformed model contract: crop must be a mapping of margin and edge, not {crop!r}")
        try:
            return cls(**{k: v for k, v in d.items() if k in known},
                       **{f"crop_{k}": v for k, v in crop.items() if k in ("margin", "edge")})
        except (TypeError, ValueError) as e:
            raise UserError(f"malformed model contract: {e}") from None

    @classmethod
    def from_json(cls, text: str) -> "ModelContract":
        if len(text) > MAX_CONTRACT_CHARS:  # a real one is under 2 kB: do not parse megabytes of it
            raise UserError(f"malformed model contract: {len(text):,} characters, more than a contract's "
                            f"{MAX_CONTRACT_CHARS:,}; re-export the model with this asl-edge")
        try:
            d = json.loads(text)
        except (ValueError, TypeError, RecursionError) as e:
            raise UserError(f"malformed model contract JSON: {str(e)[:200]}") from None
        return cls.from_dict(d)

    def with_input_format(self, fmt: str) -> "ModelContract":
        return self.with_fields(input_format=fmt)

    def with_landmarks(self, landmarks: int) -> "ModelContract":
        return self.with_fields(landmarks=landmarks)

    def with_agreement(self, agreement: bool) -> "ModelContract":
        return self.with_fields(agreement=agreement)

    def with_embedding(self, parts) -> "ModelContract":
        return self.with_fields(embedding=parts)

    def with_temperature(self, temperature: float) -> "ModelContract":
        return self.with_fields(temperature=temperature)

    def with_fields(self, **changes) -> "ModelContract":
        """A copy with these fields changed, checked as any contract read from a file."""
        return ModelContract.from_dict({**self.to_dict(), **changes})

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Logits (..., classes) -> calibrated class probabilities."""
        z = np.asarray(logits, np.float64) / self.temperature
        z = z - z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)

    # --- preprocessing -------------------------------------------------------------

    def resize_rgb(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 HxWx3 -> RGB uint8 SxSx3 (centre square crop, then resize)."""
        h, w = rgb.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = rgb[top:top + side, left:left + side]
        s = self.input_size
        if side == s:
            return np.ascontiguousarray(square)
        if side < s:  # enlarging: linear in both rules (area would be nearest here)
            return cv2.resize(square, (s, s), interpolation=cv2.INTER_LINEAR)
        if self.interpolation == "area_down_linear_up":
            return cv2.resize(square, (s, s), interpolation=cv2.INTER_AREA)
        return _binned_linear(square, s)

    def normalize(self, rgb_sized: np.ndarray) -> np.ndarray:
        """RGB uint8 SxSx3 (or NxSxSx3) -> float32 3xSxS (or Nx3xSxS), normalised: (x / 255 - mean) / std
        in float32, looked up per channel from a table of the 256 values (the same numbers as the
        arithmetic): OpenCV's LUT on each plane, written straight into the NCHW output."""
        x = np.asarray(rgb_sized)
        if x.dtype != np.uint8:
            x = x.astype(np.float32) * np.float32(1.0 / 255.0)
            x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
            return np.ascontiguousarray(np.moveaxis(x, -1, -3))
        table = _normalize_table(self.mean, self.std)
        out = np.empty(x.shape[:-3] + (3,) + x.shape[-3:-1], np.float32)
        for image, planes in zip(x.reshape(-1, *x.shape[-3:]), out.reshape(-1, *out.shape[-3:])):
            for k, plane in enumerate(cv2.split(np.ascontiguousarray(image))):
                cv2.LUT(plane, table[k], dst=planes[k])
        return out

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 HxWx3 -> the model's input for one image (no batch axis)."""
        sized = self.resize_rgb(rgb)
        return sized if self.input_format == "uint8" else self.normalize(sized)

    def preprocess_batch(self, images_rgb) -> np.ndarray:
        return np.stack([self.preprocess(im) for im in images_rgb])


def _binned_linear(square: np.ndarray, s: int) -> np.ndarray:
    """A square larger than s -> s x s: bin k x k pixels (k = side // s, OpenCV's whole-ratio INTER_AREA),
    then linear. The binned square is the centred k * (side // k) pixels (under k pixels dropped)."""
    side = square.shape[0]
    k = side // s
    if k >= 2:
        n = side // k
        top = (side - n * k) // 2
        square = cv2.resize(square[top:top + n * k, top:top + n * k], (n, n), interpolation=cv2.INTER_AREA)
    return cv2.resize(square, (s, s), interpolation=cv2.INTER_LINEAR)


@functools.lru_cache(maxsize=8)
def _normalize_table(mean: tuple, std: tuple) -> np.ndarray:
    """(3, 256) float32: each channel's normalised value of every uint8, by ModelContract.normalize's arithmetic."""
    values = np.arange(256, dtype=np.float32)[:, None] * np.float32(1.0 / 255.0)
    return np.ascontiguousarray(((values - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).T)


def read_rgb(path) -> np.ndarray:
    """Decode an image file to RGB uint8 HxWx3; UserError when it cannot be read (safeio:
    bounded read, pixel limit from the header, one decode path for every command)."""
    return read_image_rgb(path)


def bgr_to_rgb(frame_bgr: np.ndarray) -> np.ndarray:
    """OpenCV frames are BGR; the contract is RGB. Convert once, here."""
    return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
