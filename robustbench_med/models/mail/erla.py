"""ERLA: efficient residual learning attention block (paper Eq. 1, code ``RGSA``).

    y   = EMILA_s(x) -> BN -> ReLU -> EMILA_1 -> conv1x1 -> BN
    out = ReLU(y + shortcut(x))

The last 1x1 conv is ungrouped in the code (the paper calls it GPC). The
shortcut is the identity, or conv1x1_s + BN when the stride or width changes
(the code projects exactly on its stride-2 blocks).

``PlainBlock`` is the "without ERLA" ablation (paper Table 4): a ResNet basic
block (3x3 conv-BN-ReLU-3x3 conv-BN, torchvision layout, no biases).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from robustbench_med.models.mail.defaults import batch_norm
from robustbench_med.models.mail.emila import EMILA
from robustbench_med.models.mail.fastconv import PointwiseConv2d


def projection(in_channels: int, out_channels: int, stride: int, bias: bool = True) -> nn.Module:
    return nn.Sequential(PointwiseConv2d(in_channels, out_channels, stride, bias=bias),
                         batch_norm(out_channels))


class ERLA(nn.Module):
    """Two EMILAs, a 1x1 conv and a residual connection; EMILA options pass through."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1,
                 **emila: Any) -> None:
        super().__init__()
        self.emila1 = EMILA(in_channels, out_channels, stride=stride, **emila)
        self.norm1 = batch_norm(out_channels)
        self.emila2 = EMILA(out_channels, out_channels, **emila)
        self.pointwise = PointwiseConv2d(out_channels, out_channels)
        self.norm2 = batch_norm(out_channels)
        needs_projection = stride != 1 or in_channels != out_channels
        self.shortcut = projection(in_channels, out_channels, stride) if needs_projection else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm1(self.emila1(x)))
        y = self.norm2(self.pointwise(self.emila2(y)))
        return torch.relu(y + self.shortcut(x))


def plain_block(in_channels: int, out_channels: int, *, stride: int = 1) -> nn.Module:
    """A torchvision ResNet basic block, for the "without ERLA" ablation."""
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                   nn.BatchNorm2d(out_channels))
    return BasicBlock(in_channels, out_channels, stride, downsample)
