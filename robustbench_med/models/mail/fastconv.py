"""Grouped 1x1 and depth-wise convolutions computed the fast way on a CPU, with the same math.

MAIL is built from many cheap convolutions (grouped 1x1, depth-wise 3x3 and
5x5) that oneDNN handles poorly on a CPU: a grouped 1x1 conv (EMILA's
2-group fuse, the 16-group GPC) runs its backward 1.5-3x slower than the
same products as one batched matrix multiply per group, and a depth-wise
conv's backward in NCHW ~1.7x slower than in channels-last memory once the
map is 8x8 or larger (measured with ``benchmarks/mail_step_ratio.py`` and
per-shape timings, one thread). So:

- a grouped 1x1 conv (any stride) is ``bmm(W_g, X_g)`` with the input laid
  out as (g, C/g, B*H*W), the stride taken by sub-sampling first (a 1x1
  kernel with stride s reads every s-th pixel); ungrouped 1x1 convs stay
  ``F.conv2d`` (oneDNN is as fast there);
- a depth-wise conv on a map of 8x8 or more runs in channels-last memory
  (the caller converts once for both depth-wise branches; the concatenation
  that follows reads either layout).

Both are exact rewrites (the same products and sums, the same gradients; the
tests compare them with ``F.conv2d``); the layers keep ``nn.Conv2d``'s
parameters, initialisation and repr and are called as modules, so forward
hooks and module surgery (the defenses') see every convolution, and the FLOP
counter counts the same multiply-adds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CHANNELS_LAST_MIN_PIXELS = 64


def pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int = 1,
              groups: int = 1) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, 0, groups=groups)`` for a 1x1 ``weight``."""
    if groups == 1:
        return F.conv2d(x, weight, bias, stride)
    if stride > 1:
        x = x[..., ::stride, ::stride]
    b, c, h, w = x.shape
    out = weight.shape[0]
    columns = x.reshape(b, groups, c // groups, h * w).permute(1, 2, 0, 3).reshape(groups, c // groups, -1)
    y = torch.bmm(weight.reshape(groups, out // groups, c // groups), columns)
    if bias is not None:
        y = y + bias.view(groups, out // groups, 1)
    return y.view(out, b, h * w).transpose(0, 1).reshape(b, out, h, w)


def prefers_channels_last(x: torch.Tensor) -> bool:
    """Whether depth-wise convs on ``x`` run faster in channels-last memory."""
    return x.shape[-1] * x.shape[-2] >= CHANNELS_LAST_MIN_PIXELS


def depthwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int,
              padding: int) -> torch.Tensor:
    """A depth-wise conv, in channels-last memory on large maps (the output keeps that layout)."""
    if prefers_channels_last(x):
        x = x.contiguous(memory_format=torch.channels_last)
    return F.conv2d(x, weight, bias, stride, padding, groups=x.shape[1])


class PointwiseConv2d(nn.Conv2d):
    """A 1x1 ``nn.Conv2d`` whose forward is :func:`pointwise`."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, groups: int = 1,
                 bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, 1, stride, 0, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pointwise(x, self.weight, self.bias, self.stride[0], self.groups)


class DepthwiseConv2d(nn.Conv2d):
    """A 'same'-padded depth-wise ``nn.Conv2d`` whose forward is :func:`depthwise`."""

    def __init__(self, channels: int, kernel_size: int, stride: int = 1, bias: bool = True) -> None:
        super().__init__(channels, channels, kernel_size, stride, kernel_size // 2, groups=channels,
                         bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depthwise(x, self.weight, self.bias, self.stride[0], self.padding[0])
