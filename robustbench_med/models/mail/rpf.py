"""Random projection filters (RPF, Dong & Xu, CVPR 2023) inside a (grouped) convolution.

Robust-MAIL (paper App. A, Eq. 20/23) replaces a fraction of the kernels of
the group point-wise and depth-wise convolutions of MSGDC by random Gaussian
filters N(0, (1/k)^2), k the kernel size, the rest trainable. As in both RPF
implementations of the official notebook, the random kernels are drawn afresh
on every forward pass (and by :meth:`resample`), never trained.

Which kernels are random: ``floor(ratio * N)`` of the N output kernels,
evenly spread -- kernel i is random when ``floor((i + 1) * ratio)`` steps up.
With ratio 1/4 that is the last kernel of every run of four: for EMILA's
64-kernel, 16-group GPC exactly the notebook's per-group split (the last
kernel of each group), and it still gives every layer its share where a
group holds fewer kernels than 1/ratio (a depth-wise conv, MobileNetV2's
32-channel GPC) -- the notebook puts a depth-wise conv's random channels last
instead; which channels they are does not matter for the defense. Random
kernels have no bias (the notebook zeroes it); trainable kernels keep theirs.

The random kernels are non-persistent buffers: a checkpoint holds only what
was learnt. :meth:`param_group_overrides` asks the optimiser for weight decay
on the trainable kernels (paper Alg. 2, rho; the notebook's ``rpf_l2`` 1e-4).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from robustbench_med.models.mail.fastconv import DepthwiseConv2d, PointwiseConv2d, depthwise, pointwise


def random_kernel_mask(out_channels: int, ratio: float) -> torch.Tensor:
    """(out_channels,) booleans: which output kernels are random projections (evenly spread)."""
    steps = torch.floor(torch.arange(out_channels + 1, dtype=torch.float64) * ratio + 1e-9)
    return steps[1:] > steps[:-1]


class RobustMailRandomProjectionConv2d(nn.Module):
    """A Conv2d whose kernels are part trainable, part fresh Gaussian noise on every call."""

    randomized = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
                 groups: int = 1, bias: bool = True, ratio: float = 0.25,
                 weight_decay: float = 1e-4) -> None:
        super().__init__()
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"the random-filter ratio must be in (0, 1), got {ratio}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.groups = kernel_size, stride, groups
        self.padding = kernel_size // 2
        self.ratio, self.weight_decay = ratio, weight_decay
        self.std = 1.0 / kernel_size
        mask = random_kernel_mask(out_channels, ratio)
        n_random = int(mask.sum())
        if n_random == 0:
            raise ValueError(f"ratio {ratio} leaves no random kernel among {out_channels}")
        shape = (in_channels // groups, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.empty(out_channels - n_random, *shape))
        self.bias = nn.Parameter(torch.zeros(out_channels - n_random)) if bias else None
        self.register_buffer("random_weight", torch.empty(n_random, *shape), persistent=False)
        # position of each output kernel in cat([trainable, random])
        order = torch.empty(out_channels, dtype=torch.long)
        order[~mask] = torch.arange(out_channels - n_random)
        order[mask] = torch.arange(n_random) + out_channels - n_random
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("random_mask", mask, persistent=False)
        self.reset_parameters()
        self.resample()

    def reset_parameters(self) -> None:
        """Glorot-uniform over the full kernel's fans (Keras' default), zero biases."""
        receptive = self.kernel_size ** 2
        fan_in = self.in_channels // self.groups * receptive
        fan_out = self.out_channels // self.groups * receptive
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    @torch.no_grad()
    def resample(self) -> None:
        """Draw new random kernels N(0, (1/k)^2)."""
        self.random_weight.normal_(0.0, self.std)

    def full_weight(self) -> torch.Tensor:
        """The kernel as a plain conv sees it: trainable and random kernels in place."""
        return torch.cat([self.weight, self.random_weight]).index_select(0, self.order)

    def full_bias(self) -> torch.Tensor | None:
        if self.bias is None:
            return None
        zeros = self.bias.new_zeros(self.random_weight.shape[0])
        return torch.cat([self.bias, zeros]).index_select(0, self.order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.resample()
        if self.kernel_size == 1:
            return pointwise(x, self.full_weight(), self.full_bias(), self.stride, self.groups)
        if self.groups == self.in_channels == self.out_channels:
            return depthwise(x, self.full_weight(), self.full_bias(), self.stride, self.padding)
        return nn.functional.conv2d(x, self.full_weight(), self.full_bias(), self.stride, self.padding,
                                    groups=self.groups)

    def param_group_overrides(self) -> list[tuple[nn.Parameter, dict[str, Any]]]:
        """Weight decay on the trainable kernels (paper Alg. 2); biases are not decayed."""
        return [(self.weight, {"weight_decay": self.weight_decay})]

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, groups={self.groups}, random={int(self.random_mask.sum())}")


def conv2d(in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1, groups: int = 1,
           bias: bool = True, rpf_ratio: float = 0.0, rpf_weight_decay: float = 1e-4) -> nn.Module:
    """A 'same'-padded conv; with ``rpf_ratio > 0`` part of its kernels are random projections."""
    if rpf_ratio > 0.0:
        return RobustMailRandomProjectionConv2d(in_channels, out_channels, kernel_size, stride=stride,
                                                groups=groups, bias=bias, ratio=rpf_ratio,
                                                weight_decay=rpf_weight_decay)
    if kernel_size == 1:
        return PointwiseConv2d(in_channels, out_channels, stride, groups=groups, bias=bias)
    if groups == in_channels == out_channels:
        return DepthwiseConv2d(in_channels, kernel_size, stride, bias=bias)
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups,
                     bias=bias)
