"""The per-branch backbones ("base networks") that MAIL puts its ERLA blocks and EMCAMs into.

Each branch is a stem and four stages; an EMCAM follows every stage.

- ``resnet18``: the official code's layout: 7x7/2 conv (bias) + BN + ReLU +
  3x3/2 max-pool, then stages of [2, 2, 2, 2] blocks with widths 64..512,
  the first block of stages 2-4 with stride 2 and a 1x1 projection, and
  Dropout(0.25) after each stride-2 block. Padding is symmetric (k // 2);
  TF's 'same' pads stride-2 layers asymmetrically, which only matters for
  porting weights bit-exactly.
- ``resnet50``: the same blocks in ResNet50's stage layout [3, 4, 6, 3].
  No code exists; ERLA blocks are basic-block shaped (no bottleneck), so the
  widths stay 64..512 and the depth alone sets the size: 19.72 M parameters
  (19.81 M with BN statistics) and 2.19 GFLOPs in the paper's configuration
  (m = 2, 128 px), against the paper's 20.8 M / 2.18 GFLOPs -- close enough
  that no width change is warranted.
- ``mobilenetv2``: torchvision's MobileNetV2 body (random init) cut into four
  stages at the resolutions where EMCAM can act -- features[0:7] (32 ch, /8),
  [7:11] (64 ch, /16), [11:14] (96 ch, /16), [14:18] (320 ch, /32) -- each
  followed by one ERLA block at the stage's width (every width is a multiple
  of 16, as EMILA's 16-group GPC and shuffle need) and, for stages 2-4,
  Dropout(0.25). The final 1x1 conv to 1280 channels is left out: the heads
  read GAP(concat) of the 320-channel branches, which keeps the EMCAM after
  the last stage small. No code exists for MAIL-M2; this is medrobust's design.

The torchvision parts (MobileNetV2 body, the basic blocks of the "without
ERLA" ablation) keep torchvision's BN eps (1e-5); every BN gets the model's
momentum.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision
from torch import nn

from robustbench_med.models.mail.defaults import batch_norm

Block = Callable[[int, int, int], nn.Module]  # (in_channels, out_channels, stride) -> block
Dropout = Callable[[], nn.Module]

RESNET_WIDTHS = (64, 128, 256, 512)
RESNET_DEPTHS = {"resnet18": (2, 2, 2, 2), "resnet50": (3, 4, 6, 3)}
MOBILENET_CUTS = ((0, 1), (1, 7), (7, 11), (11, 14), (14, 18))  # stem, then the four stages
BODIES = ("resnet18", "resnet50", "mobilenetv2")


class Branch(nn.Module):
    """One modality's backbone: a stem and the stages an EMCAM follows."""

    def __init__(self, stem: nn.Module, stages: list[nn.Module], widths: tuple[int, ...]) -> None:
        super().__init__()
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.widths = widths

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The whole branch without EMCAMs (for inspection; MailNet interleaves them)."""
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x


def resnet_branch(in_channels: int, depths: tuple[int, ...], block: Block, dropout: Dropout,
                  widths: tuple[int, ...] = RESNET_WIDTHS) -> Branch:
    stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=True), batch_norm(widths[0]),
                         nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
    stages, previous = [], widths[0]
    for index, (depth, width) in enumerate(zip(depths, widths, strict=True)):
        stride = 1 if index == 0 else 2
        layers = [block(previous, width, stride)]
        if stride == 2:
            layers.append(dropout())
        layers += [block(width, width, 1) for _ in range(depth - 1)]
        stages.append(nn.Sequential(*layers))
        previous = width
    return Branch(stem, stages, tuple(widths))


def mobilenet_branch(in_channels: int, block: Block, dropout: Dropout) -> Branch:
    features = torchvision.models.mobilenet_v2(weights=None).features
    if in_channels != 3:
        features[0][0] = nn.Conv2d(in_channels, 32, 3, 2, 1, bias=False)
    parts = [nn.Sequential(*features[start:stop]) for start, stop in MOBILENET_CUTS]
    widths = tuple(int(part[-1].out_channels) for part in parts[1:])
    stages = []
    for index, (part, width) in enumerate(zip(parts[1:], widths, strict=True)):
        layers = [part, block(width, width, 1)]
        if index > 0:
            layers.append(dropout())
        stages.append(nn.Sequential(*layers))
    return Branch(parts[0], stages, widths)


def make_branch(body: str, in_channels: int, block: Block, dropout: Dropout) -> Branch:
    """A fresh branch of the named body."""
    if body == "mobilenetv2":
        return mobilenet_branch(in_channels, block, dropout)
    return resnet_branch(in_channels, RESNET_DEPTHS[body], block, dropout)
