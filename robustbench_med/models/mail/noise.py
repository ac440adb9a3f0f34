"""Modulated attention noise (MAN), paper Eq. 22 as the official notebook computes it.

``eta ~ N(0, std^2)`` elementwise (std 0.6 in the notebook), modulated by a
weight ``delta``: ``eta' = eta * (delta + eta * delta)``. The noise is drawn on
every forward pass, in training and at inference (the notebook ignores the
``training`` flag), so a model holding one is randomized.

``delta`` is channel-wise and learnable by default (the paper: delta in R^c).
The notebook's variant is one scalar, fixed at 1 in EMILA and learnable in
EMCAM: ``channelwise=False`` with ``learnable`` chosen per place.
"""

from __future__ import annotations

import torch
from torch import nn

NOISE_STD = 0.6


class ModulatedNoise(nn.Module):
    """Draws eta' = eta * (delta + eta * delta) shaped like its input (B, C, ...)."""

    randomized = True

    def __init__(self, channels: int, *, std: float = NOISE_STD, channelwise: bool = True,
                 learnable: bool = True) -> None:
        super().__init__()
        self.std = std
        delta = torch.ones(channels if channelwise else 1)
        if learnable:
            self.delta = nn.Parameter(delta)
        else:
            self.register_buffer("delta", delta)

    def forward(self, like: torch.Tensor) -> torch.Tensor:
        """Fresh modulated noise with the shape of ``like``; delta broadcasts over dim 1."""
        eta = torch.randn_like(like) * self.std
        delta = self.delta.view(1, -1, *([1] * (like.ndim - 2)))
        return eta * (delta + eta * delta)

    def extra_repr(self) -> str:
        return f"std={self.std}, delta={tuple(self.delta.shape)}, learnable={self.delta.requires_grad}"


class AlwaysOnDropout(nn.Dropout):
    """Dropout that stays active in eval mode, as the notebook's ``Dropout(0.25)(x, training=True)``."""

    randomized = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.dropout(x, self.p, training=True, inplace=self.inplace)
