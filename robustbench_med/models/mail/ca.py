"""CA: the channel attention of EMILA (paper Eq. 4, as the official code computes it).

Pooling: the code adds min + mean + max + sum and then max - mean - min
(``channel_add + channel_sub``), which is 2*max + sum; the sum pooling grows
with H*W, as in the code. Two FC layers (C -> C/4 with ReLU -> C, linear, with
biases), times one learnable scalar theta_x (Keras He-normal init, so its sign
is random), then a sigmoid: the gate (B, C, 1, 1) that rescales x'.

Robust-MAIL's MAN (``noise.py``), one of two forms:

- ``paper``, Eq. 21: ``sigmoid(f(pool(x')) * theta_x * eta')``, eta' (B, C)
  drawn per sample and channel, multiplying the logits; no clipping.
- ``code``, notebook cell 23: ``sigmoid(clip(f(pool(x')) + eta', 0, 1) * theta_x)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from robustbench_med.models.mail.noise import MAN_PAPER, ModulatedNoise, check_form
from robustbench_med.models.mail.pooling import gap, gmn, gmp, gsum

REDUCTION = 4
HE_STD = math.sqrt(2.0) / 0.87962566103423978  # Keras' truncated-normal correction, fan_in = 1


def coded_pooling(x: torch.Tensor) -> torch.Tensor:
    """(GMN + GAP + GMP + GSum) + (GMP - GAP - GMN): the code's pooled descriptor, (B, C)."""
    mn, mean, mx = gmn(x), gap(x), gmp(x)
    return ((mn + mean + mx + gsum(x)) + (mx - mean - mn)).flatten(1)


class ChannelAttention(nn.Module):
    """The CA gate sigma(f(pool(x')) * theta_x), optionally with modulated noise (``man`` form)."""

    def __init__(self, channels: int, *, noise: ModulatedNoise | None = None, man: str = MAN_PAPER) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // REDUCTION)
        self.fc2 = nn.Linear(channels // REDUCTION, channels)
        self.theta = nn.Parameter(torch.empty(1))
        nn.init.trunc_normal_(self.theta, std=HE_STD, a=-2 * HE_STD, b=2 * HE_STD)
        self.noise = noise
        self.man = check_form(man)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The gate, shape (B, C, 1, 1)."""
        z = self.fc2(torch.relu(self.fc1(coded_pooling(x))))
        if self.noise is None:
            return torch.sigmoid(z * self.theta)[..., None, None]
        if self.man == MAN_PAPER:
            return torch.sigmoid(self.noise.modulate(z * self.theta))[..., None, None]
        return torch.sigmoid((z + self.noise(z)).clamp(0.0, 1.0) * self.theta)[..., None, None]

    def extra_repr(self) -> str:
        return f"man={self.man}" if self.noise is not None else ""
