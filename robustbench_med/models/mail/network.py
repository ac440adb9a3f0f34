"""MailNet: m modality-specific branches, an EMCAM after each stage, TMTL heads.

Input: (B, C, H, W) for one modality, (B, m, C, H, W) packed for m; output:
logits (B, n) for m = 1, else a tuple of per-task logits (task i = dataset i).
Each branch has its own weights; the EMCAMs are shared by all branches (the
official code's MSTL phase).
"""

from __future__ import annotations

import torch
from torch import nn

from robustbench_med.models.mail.bodies import Branch
from robustbench_med.models.mail.heads import TaskHeads


class MailNet(nn.Module):
    """Branches interleaved with shared EMCAMs, then the task heads."""

    def __init__(self, branches: list[Branch], emcams: list[nn.Module] | None, heads: TaskHeads) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.emcams = nn.ModuleList(emcams) if emcams is not None else None
        self.heads = heads

    @property
    def modalities(self) -> int:
        return len(self.branches)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The m branches' last-stage features x_i^S."""
        m = self.modalities
        if (m == 1 and x.ndim != 4) or (m > 1 and (x.ndim != 5 or x.shape[1] != m)):
            expected = "(B, C, H, W)" if m == 1 else f"(B, {m}, C, H, W)"
            raise ValueError(f"MAIL with {m} branch(es) takes {expected} inputs, got {tuple(x.shape)}")
        inputs = [x] if m == 1 else list(x.unbind(1))
        xs = [branch.stem(xi) for branch, xi in zip(self.branches, inputs, strict=True)]
        for stage in range(len(self.branches[0].stages)):
            xs = [branch.stages[stage](xi) for branch, xi in zip(self.branches, xs, strict=True)]
            if self.emcams is not None:
                xs = self.emcams[stage](xs)
        return xs

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        logits = self.heads(self.features(x))
        return logits[0] if self.modalities == 1 else tuple(logits)
