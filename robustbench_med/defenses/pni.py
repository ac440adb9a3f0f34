"""PNI: Parametric Noise Injection (He, Rakin, Fan, CVPR 2019; code elliothe/CVPR_2019_PNI).

Mechanism (PNI-W, the paper's default): every convolution and linear layer
computes with ``W + alpha * eta``, ``eta ~ N(0, std(W)^2)`` (``std(W)`` one
scalar over the whole tensor, without gradient), a fresh ``eta`` on every
forward pass in training *and* evaluation, shared by the batch. ``alpha`` is
learnt, initialised to 0.25, and kept out of weight decay (decay would drive
the noise to zero).

Choices:

- ``alpha`` is channel-wise by default (one per output channel), as the
  official code's default and the README's best row; ``mode=layerwise`` is
  the paper's formulation, ``elementwise`` the third variant.
- The noise is a ``torch.nn.utils.parametrize`` parametrization of each
  layer's ``weight``, so it applies to any ``nn.Conv2d``/``nn.Linear``
  subclass (MAIL's fast point-wise and depth-wise convs included) without
  knowing their forward.
- Recipe: the official PGD training with the benchmark's attack settings:
  the attack targets the model's *predicted* labels on the clean batch, and
  the loss is ``0.5 * CE(clean) + 0.5 * CE(adv)``, after a clean-only delay
  of 5/160 of the epoch budget (``--epoch_delay 5`` of 160; option
  ``delay``). The noise stays on during the delay, as in the official code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from robustbench_med.attacks.engine import pgd_examples
from robustbench_med.data.spec import DataInfo
from robustbench_med.defenses.base import Defense, register_defense
from robustbench_med.defenses.options import BackboneBuilder, defense_factory, parse_defense_options
from robustbench_med.defenses.randomness import RandomDraws
from robustbench_med.defenses.recipe import PGDSettings, predicted_labels, scaled_delay
from robustbench_med.defenses.surgery import of_type
from robustbench_med.errors import BadInputError
from robustbench_med.models.losses import multitask_loss
from robustbench_med.randomness import resample
from robustbench_med.training.strategies import TrainingStrategy

NAME = "pni"
MODES = ("layerwise", "channelwise", "elementwise")
DELAY_FRACTION = 5 / 160  # official: --epoch_delay 5 of 160 epochs


@dataclass(frozen=True)
class PNIOptions:
    """``--defense-option`` keys of PNI."""

    mode: str = "channelwise"
    alpha_init: float = 0.25
    per_forward: bool = True  # False: hold one draw until resample()
    delay: int | None = None  # clean-only epochs; None: 5/160 of the budget

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise BadInputError(f"unknown PNI mode '{self.mode}' (allowed: {', '.join(MODES)})")
        if self.alpha_init < 0:
            raise BadInputError(f"PNI alpha_init must be >= 0, got {self.alpha_init}")


class WeightNoise(RandomDraws):
    """Parametrization ``W -> W + alpha * std(W) * z``, ``z ~ N(0, 1)`` shaped like ``W``."""

    def __init__(self, weight: torch.Tensor, mode: str, alpha_init: float, per_forward: bool) -> None:
        super().__init__(per_forward)
        shape = {"layerwise": (1,) * weight.ndim,
                 "channelwise": (weight.shape[0],) + (1,) * (weight.ndim - 1),
                 "elementwise": tuple(weight.shape)}[mode]
        self.alpha = nn.Parameter(torch.full(shape, float(alpha_init)))
        self.add_draw("z", tuple(weight.shape))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.alpha * weight.detach().std() * self.draw("z")

    def param_group_overrides(self) -> list[tuple[nn.Parameter, dict[str, Any]]]:
        """No weight decay on alpha (official: a separate optimiser group with decay 0)."""
        return [(self.alpha, {"weight_decay": 0.0})]


def add_weight_noise(net: nn.Module, options: PNIOptions) -> list[WeightNoise]:
    """Parametrize every Conv2d and Linear weight under ``net``; returns the noise modules."""
    layers = of_type(net, (nn.Conv2d, nn.Linear))
    if not layers:
        raise BadInputError("PNI found no Conv2d or Linear layer to inject noise into")
    noises = []
    for layer in layers.values():
        noise = WeightNoise(layer.weight, options.mode, options.alpha_init, options.per_forward)
        parametrize.register_parametrization(layer, "weight", noise)
        noises.append(noise)
    return noises


@defense_factory(PNIOptions, NAME)
def build(build_backbone: BackboneBuilder, info: DataInfo, options: PNIOptions) -> nn.Module:
    """The backbone with learnable Gaussian noise on every conv and linear weight."""
    model = build_backbone()
    add_weight_noise(model, options)
    return model


class PNITraining(TrainingStrategy):
    """Official PNI training: predicted-label PGD, loss 0.5 clean + 0.5 adversarial, after a delay."""

    name = "pni"

    def __init__(self, pgd: PGDSettings, delay: int) -> None:
        self.pgd, self.delay = pgd, delay

    def describe(self) -> dict[str, Any]:
        return {"strategy": self.name, **self.pgd.as_dict(), "delay": self.delay,
                "attack_labels": "predicted", "loss": "0.5*ce_clean + 0.5*ce_adv"}

    def batch_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   epoch: int) -> torch.Tensor:
        resample(model)
        output = model(x)
        clean = multitask_loss(output, y)
        if epoch <= self.delay:
            return clean
        x_adv = pgd_examples(model, x, predicted_labels(output), **self.pgd.as_dict())
        resample(model)
        return 0.5 * clean + 0.5 * multitask_loss(model(x_adv), y)


def strategy(config: Any, defense_options: dict[str, Any]) -> PNITraining:
    options = parse_defense_options(PNIOptions, defense_options, NAME)
    return PNITraining(PGDSettings.of(config), scaled_delay(DELAY_FRACTION, config.epochs, options.delay))


DEFENSE = register_defense(Defense(
    name=NAME, build=build, randomized=True,
    reference="He, Rakin, Fan, CVPR 2019 (arXiv 1811.09310); code elliothe/CVPR_2019_PNI",
    summary="Learnable Gaussian noise on every conv/linear weight (alpha channel-wise, init 0.25), "
            "drawn on every forward pass; PGD training on predicted labels, 0.5 clean + 0.5 adv.",
    strategy=strategy,
    evaluation="Random at test time (fresh noise per forward pass): attack with EOT (K draws per "
               "gradient) and score by softmax averaged over fresh draws; the single-draw numbers "
               "are upper bounds.",
))
