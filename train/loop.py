"""The training loop's two steps as plain functions, as in torchvision's references/classification: one
epoch of training and one pass of evaluation. Every batch has one shape, (x, label, loss weight, landmark
row), whether x is an image (ImageRows) or the cached features of one (features.ViewDataset), and `net`
is either the whole model or the trainable suffix with the head: both have .features(x) and .head."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.data import Dataset

from asl_edge.common.errors import UserError

from .progress import progress


class ImageRows(Dataset):
    """An ImageDataset's images with each sample's loss weight and landmark row ((N, 0) for an image-only
    model): the batch shape of features.ViewDataset."""

    def __init__(self, images, weights: torch.Tensor, landmarks: torch.Tensor):
        self.images, self.weights, self.landmarks = images, weights, landmarks

    def set_epoch(self, epoch: int, generator: torch.Generator):
        self.images.epoch = epoch  # the jitter's draw; the order comes from the loader's generator

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x, y, _ = self.images[i]
        return x, y, self.weights[i], self.landmarks[i]


def losses(net, x, landmarks, y, uses_landmarks: bool) -> tuple:
    """(per-row loss, scores). A landmark model trains its two classifiers on their own losses
    (FusionHead.losses); its scores are the fused ones."""
    if not uses_landmarks:
        logits = net(x)
        return nn.functional.cross_entropy(logits, y, reduction="none"), logits
    f = net.features(x)
    return net.head.losses(f, landmarks, y), net.head(f, landmarks)


def train_one_epoch(net, loader, optimizer, device, uses_landmarks: bool, desc: str, lr: float) -> tuple:
    """One pass over `loader`, each row's loss weighted -> (mean loss, accuracy) of the training rows."""
    total, correct, loss_sum = 0, 0, 0.0
    bar = progress(loader, desc=desc, unit="batch")
    for x, y, w, lm in bar:
        x, y, w, lm = x.to(device), y.to(device), w.to(device), lm.to(device)
        per_row, logits = losses(net, x, lm, y, uses_landmarks)
        loss = (per_row * w).sum() / w.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        if not math.isfinite(value):  # stop before a nan model is saved (and exported, resumed)
            raise UserError(f"training diverged in {desc}: the loss became {value}; train again "
                            f"with a lower --lr (now {lr:g}) or --source-weights, and --force")
        loss_sum += value * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        total += len(y)
        bar.set_postfix(loss=f"{loss_sum / total:.4f}", acc=f"{correct / total:.3f}")
    return loss_sum / max(1, total), correct / max(1, total)


@torch.no_grad()
def evaluate(net, loader, device, uses_landmarks: bool) -> tuple:
    """-> (mean loss, predicted class per row) over `loader`, in its order."""
    preds, row_losses = [], []
    for x, y, _, lm in loader:
        x, y = x.to(device), y.to(device)
        logits = net(x, lm.to(device)) if uses_landmarks else net(x)
        row_losses.append(nn.functional.cross_entropy(logits, y, reduction="none").cpu())
        preds.append(logits.argmax(1).cpu())
    return torch.cat(row_losses).mean().item(), torch.cat(preds)
