"""Grouped 1x1 and depth-wise convolutions computed the fast way on a CPU, with the same math.

MAIL is built from many cheap convolutions (grouped 1x1, depth-wise 3x3 and
5x5) that oneDNN handles poorly on a CPU: a grouped 1x1 conv (EMILA's
2-group fuse, the 16-group GPC) runs its backward 1.5-3x slower than the
same products as one batched matrix multiply per group, and a depth-wise
conv's backward in NCHW slower than in channels-last memory once the map is
16x16 or larger (measured with ``benchmarks/mail_step_ratio.py`` and
per-shape timings, one thread). So:

- a grouped 1x1 conv (any stride) is ``bmm(W_g, X_g)`` with the input laid
  out as (g, C/g, B*H*W), the stride taken by sub-sampling first (a 1x1
  kernel with stride s reads every s-th pixel); ungrouped 1x1 convs on
  maps larger than 4x4 stay ``F.conv2d`` (oneDNN is as fast there);
- a depth-wise conv on a small map (H*W <= 3 k*k: 5x5 kernels on maps up to
  8x8, 3x3 up to 5x5; at 28 px every stage after the first) is one batched
  product per channel with the (Ho*Wo, H*W) matrix its taps make on that
  map, the matrix built as the taps times a fixed one-hot basis. Up to 3x the
  conv's multiply-adds, and still faster: oneDNN's depth-wise backward is
  slow on small maps (a 5x5 on (32, 64, 7, 7): 3.8 ms forward and backward
  against 0.9 ms; on (32, 512, 1, 1), where it walks the padding taps, 15 ms
  against 0.4 ms). A map of 16x16 or more runs in
  channels-last memory (the caller converts once for both depth-wise
  branches; the concatenation that follows reads either layout);
- an ungrouped 1x1 conv on a map of at most 4x4 pixels (after its stride) is
  ``F.linear`` over the pixels as rows, 1.2-1.8x faster than oneDNN there,
  its output made contiguous again (``randn_like`` fills memory in order, so
  Robust-MAIL's noise lands where a plain conv's output would put it), and
  its input gradient too (:func:`contiguous_grad`).

All are exact rewrites (the same products, summed in another order, so equal
to ``F.conv2d`` to float rounding; the tests compare them, and
:func:`plain_layers` switches them off, for the FLOP counter); the layers keep
``nn.Conv2d``'s parameters, initialisation and repr and are called as modules, so forward
hooks and module surgery (the defenses') see every convolution, and the FLOP
counter counts the same multiply-adds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn

from robustbench_med.models.mail.shuffle import channel_shuffle

CHANNELS_LAST_MIN_PIXELS = 256  # 16x16 and up (on 8x8 maps NCHW measured faster, its copies fewer)
MATRIX_MAX_PIXELS_PER_TAP = 3  # matrix products up to 3x the conv's multiply-adds: H*W <= 3 k*k
LINEAR_MAX_PIXELS = 16  # ungrouped 1x1 convs on maps up to 4x4 run as one F.linear
_plain = False


@contextmanager
def plain_layers() -> Iterator[None]:
    """Within this block MAIL's layers run as plain PyTorch (``F.conv2d``, ``nn.BatchNorm2d``): for
    counting the network's multiply-adds rather than our implementation's, and for tests."""
    global _plain
    before, _plain = _plain, True
    try:
        yield
    finally:
        _plain = before


class _NCHWGrad(torch.autograd.Function):
    """``x`` as it is (``memory_format`` None) or copied into ``memory_format``; either way the
    gradient goes back contiguous (NCHW)."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor, memory_format: torch.memory_format | None) -> torch.Tensor:
        return x.view_as(x) if memory_format is None else x.contiguous(memory_format=memory_format)

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad.contiguous(), None


def contiguous_grad(x: torch.Tensor) -> torch.Tensor:
    """``x``, with its gradient made contiguous on the way back.

    An op that reads ``x`` through a (B, H, W, C) permutation (rows for ``F.linear``, tiny-map
    BatchNorm) hands back a channels-last-strided gradient; a ``bmm`` behind it whose batch
    dimension then has stride 1 falls back to one small product per batch entry (measured 6x
    slower on the 2x2 depth-wise convs of Robust-MAIL's branch-normalised MSGDC).
    """
    return _NCHWGrad.apply(x, None) if x.requires_grad else x


def is_plain() -> bool:
    """Whether :func:`plain_layers` is in force."""
    return _plain


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last memory for the depth-wise convs, its gradient handed back in NCHW:
    the caller's other branches send NCHW gradients to ``x``, and adding a channels-last one to
    them runs 4-5x slower than adding two of one layout."""
    if x.requires_grad:
        return _NCHWGrad.apply(x, torch.channels_last)
    return x.contiguous(memory_format=torch.channels_last)


def pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int = 1,
              groups: int = 1, shuffle: int = 0) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, 0, groups=groups)`` for a 1x1 ``weight``, on
    ``channel_shuffle(x, shuffle)`` when ``shuffle`` is set (for a grouped conv, the shuffle is
    folded into the copy that lays the input out for the batched product: one copy, not two)."""
    b, c = x.shape[:2]
    if shuffle and (_plain or groups == 1 or (c // shuffle) % groups):
        x, shuffle = channel_shuffle(x, shuffle), 0
    if _plain:
        return F.conv2d(x, weight, bias, stride, groups=groups)
    if groups == 1 and x.shape[-1] * x.shape[-2] > LINEAR_MAX_PIXELS * stride * stride:
        return F.conv2d(x, weight, bias, stride)
    if stride > 1:
        x = x[..., ::stride, ::stride]
    b, c, h, w = x.shape
    if groups == 1:
        rows = F.linear(contiguous_grad(x).permute(0, 2, 3, 1).reshape(-1, c), weight.flatten(1), bias)
        return rows.view(b, h, w, -1).permute(0, 3, 1, 2).contiguous()
    out = weight.shape[0]
    if shuffle:  # channel a * n + r (n = c / shuffle) goes to r * shuffle + a: group r // (n / groups)
        n = c // shuffle
        columns = (x.reshape(b, shuffle, groups, n // groups, h * w).permute(2, 3, 1, 0, 4)
                   .reshape(groups, c // groups, -1))
    else:
        columns = (x.reshape(b, groups, c // groups, h * w).permute(1, 2, 0, 3)
                   .reshape(groups, c // groups, -1))
    y = torch.bmm(weight.reshape(groups, out // groups, c // groups), columns)
    if bias is not None:
        y = y + bias.view(groups, out // groups, 1)
    return y.view(out, b, h * w).transpose(0, 1).reshape(b, out, h, w)


def prefers_channels_last(x: torch.Tensor) -> bool:
    """Whether depth-wise convs on ``x`` run faster in channels-last memory."""
    return x.shape[-1] * x.shape[-2] >= CHANNELS_LAST_MIN_PIXELS


def conv_size(n: int, kernel: int, stride: int, padding: int) -> int:
    """A convolution's output length along one side."""
    return (n + 2 * padding - kernel) // stride + 1


@cache
def tap_basis(height: int, width: int, kernel: int, stride: int, padding: int,
              device: torch.device) -> torch.Tensor:
    """(k*k, Ho*Wo*H*W) one-hot: tap t links output pixel o to input pixel i where it is 1."""
    out_h, out_w = conv_size(height, kernel, stride, padding), conv_size(width, kernel, stride, padding)
    di = torch.arange(height)[None, :] - (torch.arange(out_h) * stride - padding)[:, None]  # (Ho, H)
    dj = torch.arange(width)[None, :] - (torch.arange(out_w) * stride - padding)[:, None]   # (Wo, W)
    di, dj = di[:, None, :, None], dj[None, :, None, :]                                     # (Ho, Wo, H, W)
    inside = (di >= 0) & (di < kernel) & (dj >= 0) & (dj < kernel)
    index = torch.where(inside, di * kernel + dj, torch.tensor(kernel * kernel)).reshape(-1)
    basis = F.one_hot(index, kernel * kernel + 1)[:, : kernel * kernel].t()  # the last column: no tap
    return basis.float().contiguous().to(device)


def depthwise_matrix(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int,
                     padding: int) -> torch.Tensor:
    """A depth-wise conv as per-channel (Ho*Wo, H*W) matrices times the (H*W, B) columns.

    The matrices are the taps times a fixed one-hot basis (one matrix product), so their backward
    is a product too, not the scatter an index gather would need.
    """
    b, c, h, w = x.shape
    k = weight.shape[-1]
    if h == w == 1:  # only the centre tap meets the map: an elementwise product
        y = x * weight[:, 0, padding, padding].view(1, c, 1, 1)
        return y if bias is None else y + bias.view(1, c, 1, 1)
    basis = tap_basis(h, w, k, stride, padding, x.device).to(weight.dtype)
    out_h, out_w = conv_size(h, k, stride, padding), conv_size(w, k, stride, padding)
    matrices = (weight.reshape(c, k * k) @ basis).view(c, out_h * out_w, h * w)
    y = torch.bmm(matrices, x.reshape(b, c, h * w).permute(1, 2, 0))  # (C, Ho*Wo, B)
    y = y.permute(2, 0, 1).reshape(b, c, out_h, out_w)
    return y if bias is None else y + bias.view(1, c, 1, 1)


def uses_matrix(x: torch.Tensor, kernel: int) -> bool:
    """Whether a depth-wise conv with a ``kernel`` x ``kernel`` filter runs as matrix products on ``x``."""
    return x.shape[-1] * x.shape[-2] <= MATRIX_MAX_PIXELS_PER_TAP * kernel * kernel


def depthwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int,
              padding: int) -> torch.Tensor:
    """A depth-wise conv: matrix products on small maps, else channels-last."""
    if _plain:
        return F.conv2d(x, weight, bias, stride, padding, groups=x.shape[1])
    if uses_matrix(x, weight.shape[-1]):
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
