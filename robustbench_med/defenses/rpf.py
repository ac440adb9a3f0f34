"""RPF: Random Projection Filters (Dong & Xu, CVPR 2023; code UniSerj/Random-Projection-Filters).

Mechanism (official default ``--rp_block -1 -1 --rp_out_channel 48``): the
stem convolution is split into two convolutions on the same input whose
outputs are concatenated: ``out - n`` trainable filters with weight
standardisation (``w / (std(w) + 1e-5) / k`` per filter, no mean
subtraction, so their scale matches) and ``n`` random filters drawn i.i.d.
from N(0, (1/k)^2), never trained, re-drawn once per batch
(``random_rp_matrix()``) -- in training and at test time. ``n / out`` is
48/64 = 0.75 by default (option ``ratio``).

Choices:

- "The stem" is every convolution that reads the image itself: found with a
  dummy forward pass as the convs whose input has the dataset's (C, H, W).
  That is ``conv1`` of a ResNet, the first conv of MobileNetV2, and the stem
  conv of each MAIL branch. Its stride, padding and bias are kept (the random
  filters have no bias, as the official ones).
- The trainable filters start from the backbone's own initial filters (the
  official code initialises them afresh; weight standardisation makes the
  scale irrelevant). ``1/k`` is ``1/sqrt(kh*kw)`` for a non-square kernel.
- The random filters are held between :meth:`resample` calls (per batch, as
  the official code); ``per_forward=true`` re-draws on every pass.
- Recipe: the official one is plain PGD training with a fresh draw before the
  attack and another before the update -- the benchmark's
  :class:`~robustbench_med.training.AdversarialTraining` -- with weight decay
  1e-2 on the trainable stem filters (``--rp_weight_decay``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustbench_med.data.spec import DataInfo
from robustbench_med.defenses.base import Defense, register_defense
from robustbench_med.defenses.options import BackboneBuilder, defense_factory, parse_defense_options
from robustbench_med.defenses.randomness import RandomDraws
from robustbench_med.defenses.recipe import draw_attack_draw_update
from robustbench_med.defenses.surgery import replace, trace_calls
from robustbench_med.errors import BadInputError
from robustbench_med.training.strategies import AdversarialTraining

NAME = "rpf"


@dataclass(frozen=True)
class RPFOptions:
    """``--defense-option`` keys of RPF."""

    ratio: float = 0.75  # official 48 of the stem's 64 filters
    weight_decay: float = 1e-2  # on the trainable (standardised) stem filters
    per_forward: bool = False  # True: a fresh draw on every pass, not once per batch

    def __post_init__(self) -> None:
        if not 0.0 < self.ratio < 1.0:
            raise BadInputError(f"RPF ratio must be in (0, 1), got {self.ratio}")


class RandomProjectionConv2d(RandomDraws):
    """Weight-standardised trainable filters || random N(0, (1/k)^2) filters, concatenated."""

    def __init__(self, conv: nn.Conv2d, ratio: float, weight_decay: float, per_forward: bool) -> None:
        super().__init__(per_forward)
        if conv.groups != 1 or conv.padding_mode != "zeros":
            raise BadInputError("RPF needs an ungrouped, zero-padded stem convolution")
        n_random = round(ratio * conv.out_channels)
        n_trained = conv.out_channels - n_random
        if n_random == 0 or n_trained == 0:
            raise BadInputError(f"RPF ratio {ratio} leaves no random or no trainable filter among "
                                f"{conv.out_channels}")
        kh, kw = conv.kernel_size
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.scale = 1.0 / math.sqrt(kh * kw)  # official 1/kernel_size, for the WS and the random std
        self.weight_decay = weight_decay
        self.weight = nn.Parameter(conv.weight.detach()[:n_trained].clone())
        self.bias = nn.Parameter(conv.bias.detach()[:n_trained].clone()) if conv.bias is not None else None
        self.add_draw("z", (n_random, conv.in_channels, kh, kw))

    def standardised_weight(self) -> torch.Tensor:
        """Official ``layer.Conv2d``: divide each filter by its std (+1e-5), then by k."""
        std = self.weight.flatten(1).std(dim=1).view(-1, 1, 1, 1)
        return self.weight / (std + 1e-5) * self.scale

    def random_weight(self) -> torch.Tensor:
        return self.scale * self.draw("z")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        trained = F.conv2d(x, self.standardised_weight(), self.bias, self.stride, self.padding,
                           self.dilation)
        random = F.conv2d(x, self.random_weight(), None, self.stride, self.padding, self.dilation)
        return torch.cat([trained, random], 1)

    def param_group_overrides(self) -> list[tuple[nn.Parameter, dict[str, Any]]]:
        """Official ``--rp_weight_decay 1e-2`` on the trainable filters (not on their bias)."""
        return [(self.weight, {"weight_decay": self.weight_decay})]

    def extra_repr(self) -> str:
        return (f"trained={self.weight.shape[0]}, random={self.z.shape[0]}, "
                f"kernel={tuple(self.weight.shape[2:])}, stride={self.stride}")


def input_convs(model: nn.Module, info: DataInfo) -> list[str]:
    """Names of the Conv2d layers that read the (normalised) image itself."""
    convs = {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    image = (info.channels, info.image_size, info.image_size)
    names = list(dict.fromkeys(c.name for c in trace_calls(model, info, convs) if c.input_shape == image))
    if not names:
        raise BadInputError("RPF found no convolution reading the input image")
    return names


@defense_factory(RPFOptions, NAME)
def build(build_backbone: BackboneBuilder, info: DataInfo, options: RPFOptions) -> nn.Module:
    """The backbone with random projection filters in its stem convolution(s)."""
    model = build_backbone()
    for name in input_convs(model, info):
        conv = model.get_submodule(name)
        replace(model, name, RandomProjectionConv2d(conv, options.ratio, options.weight_decay,
                                                    options.per_forward))
    return model


def strategy(config: Any, defense_options: dict[str, Any]) -> AdversarialTraining:
    parse_defense_options(RPFOptions, defense_options, NAME)
    return draw_attack_draw_update(NAME, config)


DEFENSE = register_defense(Defense(
    name=NAME, build=build, randomized=True,
    reference="Dong & Xu, CVPR 2023; code UniSerj/Random-Projection-Filters",
    summary="75% of the stem conv's filters are random N(0, (1/k)^2) projections re-drawn per batch, "
            "the rest weight-standardised and trained (decay 1e-2); PGD training that attacks one "
            "draw and updates on another.",
    strategy=strategy,
    evaluation="Random at test time (one draw per batch): the official protocol attacks one draw "
               "and classifies with another; the maintainer acknowledges EOT-PGD breaks it "
               "(issue #1). Report EOT-PGD and AutoAttack-rand beside the official protocol.",
))
