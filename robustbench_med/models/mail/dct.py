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
        # one (N*HW, C) x (C, C) product; matmul(matrix, x) would copy the matrix once per sample
        c, h, w = x.shape[-3:]
        rows = x.reshape(-1, c, h * w).transpose(1, 2).reshape(-1, c)  # (N*HW, C)
        y = nn.functional.linear(rows, self.matrix)
        # contiguous, as before: randn_like keeps strides, so MAN's noise would land elsewhere
        return y.view(-1, h * w, c).transpose(1, 2).contiguous().view(x.shape)
