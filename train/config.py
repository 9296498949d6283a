"""asl-train's settings (TrainConfig), what a resumed run keeps of them, and the run folder it claims."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import click
import torch

from asl_edge.common.errors import UserError, first_line, printable
from asl_edge.runtime.contract import CROP_MARGIN
from asl_edge.runtime.options import FiniteFloat

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    data: list
    val_data: list = field(default_factory=list)
    arch: str = "resnet50"
    weights: str = "imagenet"
    init: str | None = None
    unfreeze: int = 0
    augment: tuple = ()
    views: int = 4
    epochs: int | None = None  # None: 10, or the resumed run's own
    lr: float = 1e-3
    backbone_lr: float | None = None  # unfrozen backbone blocks; None: lr / 10
    batch_size: int = 32
    workers: int = 2
    seed: int = 0
    device: str = "auto"
    out: str | None = None  # None: runs/train, or the resumed checkpoint's folder
    img_size: int = 224
    val_fraction: float = 0.2
    random_split: bool = False
    max_per_class: int = 0
    source_weights: tuple = ()
    box_margin: float = CROP_MARGIN  # the hand crop's margin, written into the model contract
    box_jitter: float = 0.15
    feature_engine: str = "auto"
    cache_dir: str | None = None
    resume: str | None = None
    hand_boxes: bool = True  # images without boxes.csv: hand boxes from runtime/hands/ (cached)
    force: bool = False  # --resume into an --out that holds another run's checkpoints
    # Index of a --data source held out whole as validation: never trained on, and best.ckpt is
    # chosen on it, so validation measures a stranger (the other sources still give in-source val).
    val_source: int | None = None
    # A second input: the hand's 21 landmarks from the hand finder (runtime/landmarks.py), fused
    # with the image features before the head (train/models.py FusionHead).
    landmarks: bool = False
    # Landmark-only sources (train/landmark_rows.py): rows for the landmark classifier, no images.
    landmark_data: list = field(default_factory=list)
    landmark_weight: float = 1.0
    # The landmark classifier also reads the fingers' flexion and spread (train/hand_geometry.py). A
    # checkpoint without this key predates it (False); --init and --resume keep the checkpoint's own.
    landmark_geometry: bool = True


DEFAULT_OUT, DEFAULT_EPOCHS = "runs/train", 10

# The numbers of asl-train's options, bounded once: the option types of train/cli.py, and what a checkpoint's
# config must hold (train/checkpoint.py), so a run asl-train accepts is one --resume and asl-export accept.
NUMBERS = {
    "views": click.IntRange(0, 64), "epochs": click.IntRange(1, 100_000), "lr": FiniteFloat(0, min_open=True),
    "backbone_lr": FiniteFloat(0), "batch_size": click.IntRange(1, 65_536), "workers": click.IntRange(0, 256),
    "seed": click.IntRange(0, 2**32 - 1),  # what numpy and torch take as a seed
    "img_size": click.IntRange(32, 1024), "val_source": click.IntRange(0, 1_000),
    "val_fraction": FiniteFloat(0, 0.9), "max_per_class": click.IntRange(0, 10_000_000),
    "landmark_weight": FiniteFloat(0, 100),
}


def is_number(value) -> bool:
    """An int or float, not a bool (True is an int to Python, never a number to a user)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number_problem(key: str, value) -> str | None:
    """Why `value` is not a number asl-train's --KEY accepts; None where it is one (or the unset value)."""
    kind = NUMBERS[key]
    if value is None:
        return None if TrainConfig.__dataclass_fields__[key].default is None else "None is not a number"
    ok = isinstance(value, (int, float) if isinstance(kind, click.FloatRange) else int) and not isinstance(value, bool)
    try:
        ok = ok and kind.convert(value, None, None) == value
    except (click.BadParameter, OverflowError) as e:
        return first_line(e, 120)
    return None if ok else f"{printable(repr(value)[:40])} is not a number"


def source_weights_problem(weights) -> str | None:
    """Loss weights must be positive finite numbers: a negative one trains the model away from a source,
    and nan or inf makes every loss nan."""
    bad = [w for w in weights if not is_number(w) or not math.isfinite(w) or w <= 0]
    return f"{printable(repr(bad[0])[:40])} is not a positive number" if bad else None

# What a resumed run may change; everything else (data, arch, recipe, seed) is the checkpoint's.
RUNTIME_KEYS = ("workers", "device", "cache_dir", "resume", "feature_engine", "force")


def resumed_config(cfg: TrainConfig, ckpt: dict) -> TrainConfig:
    """--resume CKPT alone continues the run in the checkpoint's folder with its data and recipe;
    --out, --data and --epochs change it only when given. A different --out that already holds
    a run is refused without --force (it would overwrite that run's checkpoints)."""
    saved = dict(ckpt.get("config", {}))
    known = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(k for k in saved if k not in known)
    if unknown:
        log.info(f"note: {cfg.resume}: ignoring setting(s) this asl-edge does not know: {', '.join(unknown)}")
    merged = {k: v for k, v in saved.items() if k in known and k not in RUNTIME_KEYS}
    merged.update({k: getattr(cfg, k) for k in RUNTIME_KEYS})
    merged.setdefault("hand_boxes", False)  # a run from before hand boxes trained on whole images
    home = Path(cfg.resume).resolve().parent
    out = Path(cfg.out) if cfg.out else home
    if out.resolve() != home and not cfg.force and any((out / n).exists() for n in ("last.ckpt", "best.ckpt")):
        raise UserError(f"--out {out} already holds another run's checkpoints; resuming there would overwrite "
                        f"them: pass --force to do so, or another --out (default: the checkpoint's folder {home})")
    merged["out"] = str(out)
    if cfg.data:
        merged["data"] = list(cfg.data)
    merged["epochs"] = cfg.epochs or saved.get("epochs") or DEFAULT_EPOCHS
    done = int(ckpt["epoch"])
    if merged["epochs"] <= done:
        raise UserError(f"{cfg.resume} already holds epoch {done} of {merged['epochs']}; "
                        f"pass --epochs N with N > {done} to train further")
    try:
        return TrainConfig(**merged)
    except TypeError as e:
        raise UserError(f"{cfg.resume}: unreadable run settings ({e}); retrain it") from None


RUN_FILES = ("last.ckpt", "best.ckpt")


def resume_from(out: Path) -> Path | None:
    """The checkpoint to continue the run in `out` from: last.ckpt, else best.ckpt (a run stopped between
    the two writes of its first epoch has only best.ckpt); None when it holds neither."""
    return next((out / n for n in RUN_FILES if (out / n).exists()), None)


def claim_out(out: Path, force: bool) -> None:
    """A fresh run's --out: refused when it holds another run, unless --force, which then also
    removes that run's exported files (they would sit beside checkpoints they were not made from)."""
    if not any((out / n).exists() for n in RUN_FILES):
        return
    if not force:
        raise UserError(f"--out {out} already holds a run ({', '.join(n for n in RUN_FILES if (out / n).exists())}): "
                        f"continue it with --resume {resume_from(out)}, pass another --out, or --force to replace it")
    stale = sorted(p for p in out.glob("*.onnx") if p.stem.split(".")[0] in ("best", "last"))
    for p in stale:
        p.unlink(missing_ok=True)
    log.info(f"note: --force: replacing the run in {out}" + (f" (removed {len(stale)} exported file(s))" if stale else ""))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for but torch sees no CUDA GPU; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise UserError(f"unknown --device {name!r}: use auto, cpu or cuda")
    return torch.device(name)
