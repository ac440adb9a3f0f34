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
  kernel with stride s reads every s-th pixel); ungrouped 1x1 convs on
  larger maps than 1x1 stay ``F.conv2d`` (oneDNN is as fast there);
- a depth-wise conv on a map smaller than its kernel (H*W < k*k: the last
  stages at 28 px, 1x1 to 4x4) is one batched product per channel with the
  (Ho*Wo, H*W) matrix its taps make on that map, so padding taps are never
  visited (oneDNN's backward walks them: 15 ms against 0.4 ms for a 5x5 on
  (32, 512, 1, 1)); a map of 8x8 or more runs in channels-last memory (the
  caller converts once for both depth-wise branches; the concatenation that
  follows reads either layout). Channels-last would help from 7x7 up too,
  but it changes the memory layout of what follows, and ``randn_like`` fills
  memory in order: Robust-MAIL's noise would land on other pixels;
- an ungrouped 1x1 conv on a 1x1 map (EMSCA's S(S_i), the last stage at
  28 px) is ``F.linear``, 2.5-4x faster than oneDNN's backward there.

All are exact rewrites (the same products, summed in another order, so equal
to ``F.conv2d`` to float rounding; the tests compare them); the layers keep
``nn.Conv2d``'s parameters, initialisation and repr and are called as modules, so forward
hooks and module surgery (the defenses') see every convolution, and the FLOP
counter counts the same multiply-adds.
"""

from __future__ import annotations

from functools import cache

import torch
import torch.nn.functional as F
from torch import nn

CHANNELS_LAST_MIN_PIXELS = 64


def pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int = 1,
              groups: int = 1) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, 0, groups=groups)`` for a 1x1 ``weight``."""
    if groups == 1:
        if x.shape[-2:] == (1, 1):
            return F.linear(x.flatten(1), weight.flatten(1), bias)[..., None, None]
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


@cache
def tap_index(height: int, width: int, kernel: int, stride: int, padding: int,
              device: torch.device) -> torch.Tensor:
    """(Ho*Wo, H*W): which of the k*k taps links output pixel o to input pixel i (k*k: none)."""
    out_h, out_w = (height + 2 * padding - kernel) // stride + 1, (width + 2 * padding - kernel) // stride + 1
    di = torch.arange(height)[None, :] - (torch.arange(out_h) * stride - padding)[:, None]  # (Ho, H)
    dj = torch.arange(width)[None, :] - (torch.arange(out_w) * stride - padding)[:, None]   # (Wo, W)
    di, dj = di[:, None, :, None], dj[None, :, None, :]                                     # (Ho, Wo, H, W)
    inside = (di >= 0) & (di < kernel) & (dj >= 0) & (dj < kernel)
    index = torch.where(inside, di * kernel + dj, torch.tensor(kernel * kernel))
    return index.reshape(out_h * out_w, height * width).to(device)


def depthwise_matrix(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int,
                     padding: int) -> torch.Tensor:
    """A depth-wise conv as per-channel (Ho*Wo, H*W) matrices times the (H*W, B) columns."""
    b, c, h, w = x.shape
    k = weight.shape[-1]
    if h == w == 1:  # only the centre tap meets the map: an elementwise product
        y = x * weight[:, 0, padding, padding].view(1, c, 1, 1)
        return y if bias is None else y + bias.view(1, c, 1, 1)
    index = tap_index(h, w, k, stride, padding, x.device)
    taps = torch.cat([weight.reshape(c, k * k), weight.new_zeros(c, 1)], 1)
    y = torch.bmm(taps[:, index], x.reshape(b, c, h * w).permute(1, 2, 0))  # (C, Ho*Wo, B)
    out_h, out_w = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    y = y.permute(2, 0, 1).reshape(b, c, out_h, out_w)
    return y if bias is None else y + bias.view(1, c, 1, 1)


def depthwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int,
              padding: int) -> torch.Tensor:
    """A depth-wise conv: a matrix product on maps smaller than the kernel, else channels-last."""
    if x.shape[-1] * x.shape[-2] < weight.shape[-1] * weight.shape[-2]:
        return depthwise_matrix(x, weight, bias, stride, padding)
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
