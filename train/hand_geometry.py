"""What the landmark classifier reads besides the normalised points: how bent each finger is and how
far apart the fingertips are.

Both are computed inside the model (so the exported graph and the runtime's 66-number row stay as
they are) from the row's 21 points (runtime/landmarks.py: relative to the wrist, upright, scaled by
the wrist-to-middle-knuckle length):
- flexion: the cosine of the angle between consecutive bones of each finger, 3 per finger (15);
  a bone's direction does not depend on how long it is, so another person's proportions leave it;
- spread: the distance between every two fingertips (10) and from each fingertip to the wrist (5).
An MLP could in principle learn these from the points; given them outright, the classifier fitted on a
handful of signers carried over better to people left out (benchmarks/RESULTS.md, "The hand's geometry
for the landmark classifier"). The row's presence flag zeroes them for a row without a hand.
"""
from __future__ import annotations

import torch
from torch import nn

from asl_edge.runtime.landmarks import PRESENCE, WRIST

from .augment import PARENT

FINGER_BASES = tuple(j for j in range(1, 21) if PARENT[j] == WRIST)  # each finger's first point; its four follow
FINGERTIPS = tuple(b + 3 for b in FINGER_BASES)
# (bone, next bone) of each finger, a bone named by the point it ends at: every bone not from the wrist, after its parent's
JOINTS = tuple((int(PARENT[j]), j) for j in range(1, 21) if PARENT[j] != WRIST)
TIP_PAIRS = tuple((a, b) for i, a in enumerate(FINGERTIPS) for b in FINGERTIPS[i + 1:]) + tuple(
    (t, WRIST) for t in FINGERTIPS)
GEOMETRY_FEATURES = len(JOINTS) + len(TIP_PAIRS)  # 30


def _differences(pairs) -> torch.Tensor:
    """(len(pairs), 21): row k takes point a minus point b of pairs[k] (a matrix product: plain for ONNX)."""
    m = torch.zeros(len(pairs), 21)
    for k, (a, b) in enumerate(pairs):
        m[k, a] += 1.0
        m[k, b] -= 1.0
    return m


def _picks(indices, n: int) -> torch.Tensor:
    m = torch.zeros(len(indices), n)
    m[torch.arange(len(indices)), torch.as_tensor(indices)] = 1.0
    return m


def _length(v: torch.Tensor) -> torch.Tensor:
    # clamped, not + eps: the exporter's optimiser drops a tiny added constant, and 0 / 0 would be nan
    return torch.sqrt((v * v).sum(2).clamp_min(1e-12))


class HandGeometry(nn.Module):
    """(N, width) landmark rows -> (N, width + 30): the row, then the fingers' flexion and spread."""

    def __init__(self):
        super().__init__()
        bones = [(j, int(PARENT[j])) for j in range(1, 21)]  # bone k ends at point k + 1
        self.register_buffer("bones", _differences(bones), persistent=False)
        self.register_buffer("into_joint", _picks([a - 1 for a, _ in JOINTS], 20), persistent=False)
        self.register_buffer("out_of_joint", _picks([b - 1 for _, b in JOINTS], 20), persistent=False)
        self.register_buffer("tip_pairs", _differences(TIP_PAIRS), persistent=False)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        points = rows[:, :63].reshape(-1, 21, 3)
        bones = torch.matmul(self.bones, points)
        unit = bones / _length(bones).unsqueeze(2)
        flexion = (torch.matmul(self.into_joint, unit) * torch.matmul(self.out_of_joint, unit)).sum(2)
        spread = _length(torch.matmul(self.tip_pairs, points))
        present = rows[:, PRESENCE:PRESENCE + 1]
        return torch.cat([rows, present * flexion, present * spread], 1)
