"""Orthonormal DCT-II along the channel axis, the transform MFIFA applies in the official code.

The code calls ``tf.signal.dct(type=2, norm='ortho')`` on features reshaped to
(-1, C): a 1-D DCT across channels at every pixel, not a 2-D spatial DCT.
As a matrix, ``M[k, n] = sqrt(2/C) cos(pi (2n+1) k / 2C)`` with row 0 scaled
by 1/sqrt(2) (scipy's ``dct(type=2, norm='ortho')``).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def dct_matrix(n: int) -> torch.Tensor:
    """The (n, n) orthonormal DCT-II matrix."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    m = math.sqrt(2.0 / n) * torch.cos(math.pi * (2 * i + 1) * k / (2 * n))
    m[0] /= math.sqrt(2.0)
    return m.float()


class ChannelDCT(nn.Module):
    """DCT-II over dim -3 (channels) of (..., C, H, W), as one matrix product."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("matrix", dct_matrix(channels), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(-2)  # (..., C, HW)
        return torch.matmul(self.matrix, flat).view_as(x)
