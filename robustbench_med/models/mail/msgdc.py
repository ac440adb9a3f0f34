"""MSGDC: multi-scale group and depth-wise convolution (paper Eq. 2).

Three parallel branches on x -- a group point-wise conv (GPC, 1x1, 16
groups), depth-wise 3x3 and depth-wise 5x5 -- concatenated and fused by a 1x1
conv. The official code uses it in two places with different trimmings:

- in EMILA: branches with bias, concat -> channel shuffle (16 groups) -> fuse
  (1x1, 2 groups) -> BN; Robust-MAIL adds a BN on each branch;
- in EMSCA: branches without bias, concat -> fuse (1x1, 1 group), no shuffle,
  no BN.

With ``rpf_ratio > 0`` the GPC and both depth-wise convs hold random
projection filters (Robust-MAIL, paper Eq. 20/23); the fusing conv never does.
"""

from __future__ import annotations

import torch
from torch import nn

from robustbench_med.models.mail.defaults import batch_norm
from robustbench_med.models.mail.fastconv import (
    PointwiseConv2d,
    channels_last,
    pointwise,
    prefers_channels_last,
)
from robustbench_med.models.mail.rpf import conv2d
from robustbench_med.models.mail.shuffle import channel_shuffle

GROUPS = 16  # the code's ``groups=16`` for the GPC and the shuffle


class MSGDC(nn.Module):
    """GPC + DW3 + DW5 on x, concatenated, optionally shuffled, fused to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, groups: int = GROUPS,
                 fuse_groups: int = 2, shuffle: bool = True, bias: bool = True,
                 branch_norm: bool = False, fuse_norm: bool = True, rpf_ratio: float = 0.0,
                 rpf_weight_decay: float = 1e-4) -> None:
        super().__init__()
        rpf = {"rpf_ratio": rpf_ratio, "rpf_weight_decay": rpf_weight_decay, "bias": bias}
        self.gpc = conv2d(in_channels, out_channels, 1, stride=stride, groups=groups, **rpf)
        self.dw3 = conv2d(in_channels, in_channels, 3, stride=stride, groups=in_channels, **rpf)
        self.dw5 = conv2d(in_channels, in_channels, 5, stride=stride, groups=in_channels, **rpf)
        norm = batch_norm if branch_norm else (lambda _: nn.Identity())
        self.gpc_norm, self.dw3_norm, self.dw5_norm = norm(out_channels), norm(in_channels), norm(in_channels)
        self.shuffle_groups = groups if shuffle else 0
        self.branch_norm = branch_norm
        self.fuse = PointwiseConv2d(out_channels + 2 * in_channels, out_channels, groups=fuse_groups,
                                    bias=bias)
        self.fuse_norm = batch_norm(out_channels) if fuse_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = channels_last(x) if prefers_channels_last(x) else x
        gpc = self.gpc_norm(self.gpc(x))  # first: random-projection convs draw in gpc, dw3, dw5 order
        dw3, dw5 = self.dw3(spatial), self.dw5(spatial)
        if self.branch_norm:  # BatchNorm's backward on channels-last maps is ~5x slower than on NCHW
            dw3, dw5 = dw3.contiguous(), dw5.contiguous()
        out = torch.cat([gpc, self.dw3_norm(dw3), self.dw5_norm(dw5)], 1)
        return self.fuse_norm(self._fuse(out))

    def _fuse(self, out: torch.Tensor) -> torch.Tensor:
        """fuse(shuffle(out)); the shuffle folded into the fuse's own input copy when the fuse is
        still our layer (a defense that replaced or wrapped it gets the shuffled input)."""
        if not self.shuffle_groups:
            return self.fuse(out)
        if type(self.fuse) is PointwiseConv2d:
            fuse = self.fuse
            return pointwise(out, fuse.weight, fuse.bias, 1, fuse.groups, shuffle=self.shuffle_groups)
        return self.fuse(channel_shuffle(out, self.shuffle_groups))


class PointwiseOnly(nn.Module):
    """What is left of MSGDC without its multi-scale part (ablation): the GPC branch and BN."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, groups: int = GROUPS,
                 bias: bool = True, norm: bool = True, rpf_ratio: float = 0.0,
                 rpf_weight_decay: float = 1e-4) -> None:
        super().__init__()
        self.gpc = conv2d(in_channels, out_channels, 1, stride=stride, groups=groups, bias=bias,
                          rpf_ratio=rpf_ratio, rpf_weight_decay=rpf_weight_decay)
        self.norm = batch_norm(out_channels) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.gpc(x))
