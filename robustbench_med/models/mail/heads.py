"""TMTL: one classification head per task, all reading the same fused vector.

As the official code: every head reads GAP(concat(x_1^S, ..., x_m^S)), so a
task's prediction also sees the other modalities' features. The loss
(lambda-weighted cross-entropy per task, Eq. 14) lives in training.py.
"""

from __future__ import annotations

import torch
from torch import nn


class TaskHeads(nn.Module):
    """Linear heads on GAP(concat(branches)); one logits tensor per task."""

    def __init__(self, features: int, classes: tuple[int, ...]) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(features, n) for n in classes)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        fused = torch.cat(xs, 1).mean((-2, -1))
        return [head(fused) for head in self.heads]
