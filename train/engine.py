"""The plain train loop: cached-feature head training or end-to-end, checkpoints, resume."""
from __future__ import annotations

import logging
import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from asl_edge.runtime.contract import KAGGLE_CLASSES, NEW_MODEL_INTERPOLATION, ModelContract
from asl_edge.common.errors import UserError, first_line
from asl_edge.runtime.landmarks import LANDMARK_FEATURES, for_width, stack
from asl_edge.common.fileio import ensure_dir, sweep_temps

from .checkpoint import carry_best, checkpoint_contract, landmark_geometry, load_checkpoint, save_checkpoint, saved_epoch
from .features import FeatureStore, ImageDataset, ViewDataset
from .landmark_fit import fit_landmark_classifier, freeze
from .landmark_rows import load_landmark_rows
from .loop import ImageRows, evaluate, train_one_epoch
from .models import NORMALIZATION, build_model, freeze_batchnorm_of_frozen, set_trainable, split_frozen
from .presets import EvalPreset, TrainPreset, image_augment
from .config import DEFAULT_EPOCHS, DEFAULT_OUT, TrainConfig, claim_out, resolve_device, resume_from, resumed_config
from .run_data import in_source_vs_left_out, load_run_data, write_manifest

log = logging.getLogger(__name__)


def _fmt_time(s):
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Trainer:
    def __init__(self, cfg: TrainConfig):
        resume_ckpt = None
        if cfg.resume:
            resume_ckpt = load_checkpoint(cfg.resume)
            cfg = resumed_config(cfg, resume_ckpt)
        else:
            if not cfg.data:
                raise UserError("no --data given: pass --data DIR (a folder of class folders), or --resume CKPT")
            cfg = TrainConfig(**{**asdict(cfg), "out": cfg.out or DEFAULT_OUT, "epochs": cfg.epochs or DEFAULT_EPOCHS})
            claim_out(Path(cfg.out), cfg.force)
        self._resume_ckpt = resume_ckpt
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.out = Path(cfg.out)

        init_ckpt = load_checkpoint(cfg.init) if cfg.init else None
        if init_ckpt is not None:
            self.contract = checkpoint_contract(init_ckpt)
            if init_ckpt["arch"] != cfg.arch:
                log.info(f"note: --init checkpoint is {init_ckpt['arch']}; using that arch")
                cfg.arch = init_ckpt["arch"]
        elif resume_ckpt is not None:  # the run's own classes and preprocessing
            self.contract = checkpoint_contract(resume_ckpt)
        else:
            mean, std = NORMALIZATION.get(cfg.arch, (None, None))
            if mean is None:
                raise UserError(f"unknown --arch {cfg.arch!r}")
            self.contract = ModelContract(classes=tuple(KAGGLE_CLASSES), input_size=cfg.img_size, mean=mean, std=std,
                                          landmarks=LANDMARK_FEATURES if cfg.landmarks else 0,
                                          crop_margin=cfg.box_margin, interpolation=NEW_MODEL_INTERPOLATION)
        if bool(self.contract.landmarks) != bool(cfg.landmarks) and init_ckpt is not None:
            log.info(f"note: --init {cfg.init} is {'a landmark' if self.contract.landmarks else 'an image-only'} model; "
                     "training it as one")
        cfg.landmarks = bool(self.contract.landmarks)  # --init and --resume keep the checkpoint's own
        if init_ckpt is not None or resume_ckpt is not None:
            cfg.landmark_geometry = landmark_geometry(init_ckpt if init_ckpt is not None else resume_ckpt)
        if cfg.landmarks and not cfg.hand_boxes:
            raise UserError("--landmarks needs the hand finder's landmarks: drop --no-hand-boxes")
        classes = list(self.contract.classes)

        if cfg.landmark_data and not cfg.landmarks:
            raise UserError("--landmark-data trains the landmark classifier: add --landmarks")
        self.landmark_sources = [load_landmark_rows(p, classes, cfg.max_per_class) for p in cfg.landmark_data]
        for extra in self.landmark_sources:
            log.info(f"landmark rows {extra.path}: {len(extra.labels)} hands, {len(set(extra.labels.tolist()))} classes"
                     + (f"; {extra.skipped} row(s) skipped (other classes or non-finite numbers)" if extra.skipped else ""))
        self.data = load_run_data(cfg, classes, resume_ckpt)
        self.samples, self.val_samples = self.data.train, self.data.val
        self.model = build_model(cfg.arch, len(classes), "none" if init_ckpt else cfg.weights, self.contract.input_size,
                                 landmarks=self.contract.landmarks, landmark_geometry=cfg.landmark_geometry)
        if init_ckpt is not None:
            self.model.load_state_dict(init_ckpt["model_state_dict"])
        set_trainable(self.model, cfg.unfreeze)
        # The frozen prefix of the backbone is cached (augmented as `views` copies); only
        # --unfreeze all, or --views 0 with augmentation, runs the whole network every step.
        self.feature_mode = cfg.unfreeze != -1 and (not image_augment(cfg.augment) or cfg.views > 0)
        self.model.to(self.device)
        # pretrained blocks move at a tenth of the new head's rate: fine-tuning, not retraining
        backbone = [p for p in self.model.backbone.parameters() if p.requires_grad]
        groups = [{"params": list(self.model.head.parameters()), "lr": cfg.lr}]
        if backbone:
            groups.append({"params": backbone, "lr": cfg.backbone_lr if cfg.backbone_lr is not None else cfg.lr / 10})
        self.optimizer = torch.optim.Adam(groups, lr=cfg.lr)
        self.start_epoch, self.history = 0, []
        self.best_acc, self.best_epoch = float("-inf"), 0  # a score: val acc, or -train loss without val
        self.feature_info = None
        if resume_ckpt is not None:
            try:
                self.model.load_state_dict(resume_ckpt["model_state_dict"])
                self.optimizer.load_state_dict(resume_ckpt["optimizer_state_dict"])
            except (RuntimeError, ValueError, KeyError, TypeError) as e:
                raise UserError(f"{cfg.resume}: its weights or optimizer state do not fit arch {cfg.arch} "
                                f"({first_line(e, 150)}); retrain it") from None
            self.start_epoch = int(resume_ckpt["epoch"])
            self.history = list(resume_ckpt.get("history", []))
            self.best_acc = float(resume_ckpt.get("best_val_acc", float("-inf")))
            self.best_epoch = int(resume_ckpt.get("best_epoch", 0))
            log.info(f"resumed from {cfg.resume} at epoch {self.start_epoch}")

    # --- data --------------------------------------------------------------------------

    def _landmarks(self, samples):
        """(N, width) landmark rows of a landmark model (its contract's width), (N, 0) for an image-only one."""
        if not self.cfg.landmarks:
            return torch.zeros(len(samples), 0)
        return torch.from_numpy(stack([s.hand for s in samples], len(samples), self.contract.landmarks))

    def _sample_weights(self, samples):
        sw = self.cfg.source_weights
        return torch.tensor([float(sw[s.source]) if s.source < len(sw) else 1.0 for s in samples])

    # --- epochs ------------------------------------------------------------------------

    def _epoch_generator(self, epoch):
        return torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)

    def _prepare(self):
        cfg = self.cfg
        if self.feature_mode:
            prefix, self.net = split_frozen(self.model)  # self.net (suffix + head) is what trains
            store = FeatureStore(prefix, cfg.arch, self.contract, self.device, cfg.cache_dir,
                                 cfg.feature_engine, cfg.workers)
            if image_augment(cfg.augment):
                train = store.view_features(self.samples, image_augment(cfg.augment), cfg.views, cfg.seed,
                                            self._box_jitter())
            else:
                train = store.eval_features(self.samples)
            labels = torch.tensor([s.label for s in self.samples])
            self.train_set = ViewDataset(train, labels, self._sample_weights(self.samples), self._landmarks(self.samples))
            self.val_set = None
            if self.val_samples:
                vl = torch.tensor([s.label for s in self.val_samples])
                self.val_set = ViewDataset(store.eval_features(self.val_samples), vl, torch.ones(len(vl)),
                                           self._landmarks(self.val_samples))
            info = store.info
            self.feature_info = {**info, "cache_hit": store.cache_hit, "stages_cached": len(prefix.stages),
                                 "stages_trained": len(self.net.stages)}
            if info["computed"]:
                log.info(f"feature cache: computed {info['computed']} and reused {info['loaded']} file(s); "
                         f"{info['images']} images in {info['seconds']:.1f}s")
            else:
                log.info(f"feature cache: hit ({info['loaded']} file(s))")
        else:
            self.net = self.model
            self.train_set = ImageRows(ImageDataset(self.samples, TrainPreset(self.contract, cfg.augment),
                                                    box_jitter=self._box_jitter(), seed=cfg.seed, augment=cfg.augment),
                                       self._sample_weights(self.samples), self._landmarks(self.samples))
            self.val_set = (ImageRows(ImageDataset(self.val_samples, EvalPreset(self.contract)),
                                      torch.ones(len(self.val_samples)), self._landmarks(self.val_samples))
                            if self.val_samples else None)

    def _landmark_stage(self):
        """A landmark model's landmark classifier: fitted in its own stage when training starts (a
        resumed run has it in the checkpoint), frozen for the image epochs (train/landmark_fit.py)."""
        mlp = self.model.head.landmarks
        if self.start_epoch > 0:
            freeze(mlp)
            return
        rows, labels = self._landmarks(self.samples), torch.tensor([s.label for s in self.samples])
        weights = self._sample_weights(self.samples)
        for extra in self.landmark_sources:
            rows = torch.cat([rows, torch.from_numpy(for_width(extra.rows, self.contract.landmarks))])
            labels = torch.cat([labels, torch.from_numpy(extra.labels)])
            weights = torch.cat([weights, torch.full((len(extra.labels),), float(self.cfg.landmark_weight))])
        fit_landmark_classifier(mlp, rows, labels, weights, "pose" in self.cfg.augment, self.cfg.seed)

    def _box_jitter(self):
        return self.cfg.box_jitter if "jitter" in self.cfg.augment else 0.0

    def _workers(self) -> int:
        return 0 if self.feature_mode else self.cfg.workers  # cached features are in memory already

    def train_epoch(self, epoch):
        g = self._epoch_generator(epoch)
        torch.manual_seed(self.cfg.seed * 100_003 + epoch)
        self.train_set.set_epoch(epoch, g)  # before the loader shuffles with g: the same draws as ever
        loader = DataLoader(self.train_set, batch_size=self.cfg.batch_size, shuffle=True, generator=g,
                            num_workers=self._workers(), persistent_workers=False, drop_last=False)
        self.net.train()
        freeze_batchnorm_of_frozen(self.model)
        return train_one_epoch(self.net, loader, self.optimizer, self.device, self.cfg.landmarks,
                               f"epoch {epoch + 1}/{self.cfg.epochs}", self.cfg.lr)

    def evaluate(self):
        if self.val_set is None:
            return float("nan"), float("nan"), {}
        loader = DataLoader(self.val_set, batch_size=64, shuffle=False, num_workers=self._workers())
        loss, pred = evaluate(self.net.eval(), loader, self.device, self.cfg.landmarks)
        labels = torch.tensor([s.label for s in self.val_samples])
        sources = np.array([s.source for s in self.val_samples])
        hit = (pred == labels).numpy()
        by_source = {int(k): float(hit[sources == k].mean()) for k in np.unique(sources)}
        return loss, float(hit.mean()), by_source

    def _state(self, epoch, train_loss):
        return {
            "epoch": epoch,
            "model_state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer_state_dict": self.optimizer.state_dict(),
            "train_loss": float(train_loss),
            "arch": self.cfg.arch,
            "contract": self.contract.to_dict(),
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.cfg).items()},
            "split": {"method": self.data.split_method, "val_fraction": self.cfg.val_fraction, "seed": self.cfg.seed,
                      "val_files": [s.path for s in self.val_samples],
                      "val_labels": [s.label for s in self.val_samples],
                      "train_count": len(self.samples)},
            "history": self.history,
            "best_val_acc": float(self.best_acc),
            "best_epoch": int(self.best_epoch),
            "versions": {"torch": str(torch.__version__), "python": platform.python_version()},
        }

    def fit(self) -> dict:
        cfg = self.cfg
        ensure_dir(self.out, "--out")
        sweep_temps(self.out, names=("last.ckpt", "best.ckpt", "split.csv"))  # left by a killed run
        if self._resume_ckpt is not None:
            carry_best(self._resume_ckpt, self.out / "best.ckpt", self.cfg.resume)
        self._prepare()
        write_manifest(self.out / "split.csv", self.contract.classes, self.data)
        if cfg.landmarks:
            self._landmark_stage()
        if self.feature_mode:
            views = f", {cfg.views} augmented views" if image_augment(cfg.augment) else ""
            mode = (f"cached features{views}, training "
                    + (f"the last {self.feature_info['stages_trained'] - 1} stage(s) and the head"
                       if self.feature_info["stages_trained"] > 1 else "the head"))
        else:
            mode = "end to end"
        log.info(f"training {cfg.arch} ({mode}) on {self.device} for epochs {self.start_epoch + 1}..{cfg.epochs}")
        times = [h["seconds"] for h in self.history]
        last = None
        try:
            for epoch in range(self.start_epoch, cfg.epochs):
                t0 = time.perf_counter()
                tr_loss, tr_acc = self.train_epoch(epoch)
                va_loss, va_acc, by_source = self.evaluate()
                held = in_source_vs_left_out(by_source, self.val_samples, cfg.val_source)
                dt = time.perf_counter() - t0
                times.append(dt)
                self.history.append({"epoch": epoch + 1, "train_loss": tr_loss, "train_acc": tr_acc,
                                     "val_loss": va_loss, "val_acc": va_acc, "seconds": dt,
                                     "val_acc_by_source": {str(k): v for k, v in by_source.items()}, **held})
                score = va_acc if va_acc == va_acc else -tr_loss  # no val set: lowest train loss
                if held:
                    score = held["val_acc_left_out"]
                improved = score > self.best_acc
                if improved:
                    self.best_acc, self.best_epoch = score, epoch + 1
                state = self._state(epoch + 1, tr_loss)
                # best before last: a kill between the two leaves last one epoch behind, and
                # --resume redoes that epoch and rewrites best; never a best older than last says
                if improved:
                    save_checkpoint(state, self.out / "best.ckpt")
                last = save_checkpoint(state, self.out / "last.ckpt")
                eta = np.mean(times[-3:]) * (cfg.epochs - epoch - 1)
                src = "" if len(by_source) < 2 else " (" + ", ".join(f"src{k} {v:.3f}" for k, v in by_source.items()) + ")"
                if held:
                    inside, left = held["val_acc_in_source"], held["val_acc_left_out"]
                    src += f"  in-source {inside:.4f} vs left-out src{cfg.val_source} {left:.4f} (gap {inside - left:+.4f})"
                log.info(f"epoch {epoch + 1:>3}/{cfg.epochs}  train loss {tr_loss:.4f} acc {tr_acc:.4f}  "
                         f"val loss {va_loss:.4f} acc {va_acc:.4f}{src}  time {dt:.1f}s  ETA {_fmt_time(eta)}"
                         + ("  *" if improved else ""))
        except KeyboardInterrupt:
            held = resume_from(self.out)  # what is on disk, not what the loop got to; what claim_out names
            done = saved_epoch(held) if held else None
            if done is None:
                log.info("interrupted: no epoch was saved; run the same asl-train command again"
                         + (" with --force" if held else ""))
            else:
                log.info(f"interrupted: {held} holds epoch {done}; continue with asl-train "
                         f"--resume {held} --out {self.out}")
            raise SystemExit(130)
        best = self.out / "best.ckpt"
        by = f"val acc {self.best_acc:.4f}" if self.val_samples else f"train loss {-self.best_acc:.4f}, no val set"
        if cfg.val_source is not None:
            by = f"left-out source {cfg.val_source} acc {self.best_acc:.4f}"
        log.info(f"done: best epoch {self.best_epoch} ({by}) -> {best}; last -> {last}")
        return {"best": str(best), "last": str(last) if last else None, "best_epoch": self.best_epoch,
                "best_val_acc": self.best_acc, "history": self.history, "feature_info": self.feature_info}
