"""The landmark classifier of a landmark model (FusionHead.landmarks), fitted in a stage of its own.

It is a small MLP on 66 numbers per image (64 in older checkpoints) that shares no weight with the image path, so it need not
follow the image's schedule (a few epochs of batch 32, which leave it under-trained once its rows
are augmented): before the image epochs it is fitted full batch, to convergence, on every training
hand, each step on freshly turned hands (the pose augmentation), then frozen. Seconds on a CPU.
Measured against training it with the image (benchmarks/RESULTS.md, "The landmark classifier: its own stage").
"""
from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torch import nn

from asl_edge.runtime.landmarks import PRESENCE

from .augment import pose

log = logging.getLogger(__name__)

# Those of benchmarks/studies/fusion_lopo.py, set there before any left-out score was seen.
STEPS, LR, WEIGHT_DECAY = 300, 3e-3, 1e-4


def fit_landmark_classifier(mlp: nn.Module, rows: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor,
                            poses: bool, seed: int) -> None:
    """Train `mlp` on the rows with a hand (presence flag 1), weighted; then freeze it."""
    hand = rows[:, PRESENCE] > 0
    device = next(mlp.parameters()).device
    rows, labels, weights = rows[hand].numpy(), labels[hand].to(device), weights[hand].float().to(device)
    if len(rows):
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        turn = np.random.default_rng(seed)
        opt = torch.optim.Adam(mlp.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        mlp.train()
        for _ in range(STEPS):
            batch = torch.from_numpy(pose(rows, turn) if poses else rows).to(device)
            loss = (nn.functional.cross_entropy(mlp(batch), labels, reduction="none") * weights).sum() / weights.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        mlp.eval()
        with torch.no_grad():
            acc = (mlp(torch.from_numpy(rows).to(device)).argmax(1) == labels).float().mean().item()
        log.info(f"landmark classifier: {STEPS} full-batch steps on {len(rows)} hands"
                 f"{' (pose augmentation)' if poses else ''} in {time.perf_counter() - t0:.1f}s, train acc {acc:.3f}; "
                 "frozen for the image epochs")
    else:
        log.info("landmark classifier: no hand in the training images; it stays untrained (the image decides)")
    freeze(mlp)


def freeze(mlp: nn.Module) -> None:
    """The image epochs leave the fitted classifier as it is."""
    for p in mlp.parameters():
        p.requires_grad_(False)
