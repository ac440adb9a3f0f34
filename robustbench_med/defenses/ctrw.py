"""CTRW: Constrained Trainable Random Weight (Ma, Dong, Xu, NeurIPS 2023).

Mechanism (official default ``--pos 0``): the normalised input image is
multiplied element-wise by a random weight ``Mu + SD * z``, ``z ~ N(0, 1)`` of
shape (1, C, H, W) (one draw shared by the batch), with ``Mu`` and ``SD``
trainable, both initialised to 1. The draw is made once per batch
(``set_rands()``), in training and at test time. A lower bound on the noise
scale (from the paper's gradient-similarity argument) is enforced by a shift:
when ``min(SD) < mean_lb``, every entry below ``mean_lb`` is raised by
``mean_lb - min(SD)``.

Choices:

- The bound is given per element: ``mean_lb = lb / (C*H*W)``. The official
  ``lb = 2048`` on 3x32x32 CIFAR inputs is ``mean_lb = 2/3``, kept as the
  default, so the constraint means the same at 28 px or 128 px (2048 on
  3x128x128 would be a bound of 0.04, almost none).
- The multiplicative weight sits at the start of the Classifier's ``net``,
  i.e. after the normalisation, as pos 0. For a packed multimodal input the
  shape is (1, m, C, H, W): one weight map per modality.
- The official code projects in ``set_rands()`` before each batch; here the
  projection runs after every optimiser step, which leaves the same ``SD`` for
  the next batch and for the saved model.
- The draw is held between :meth:`resample` calls (per batch);
  ``per_forward=true`` is the official ``--eot`` mode (a draw every pass).
- Recipe: the official one is RPF's (same lab): PGD on one draw, update on
  another -- :class:`~robustbench_med.training.AdversarialTraining` -- with the
  benchmark's weight decay on all parameters, ``Mu`` and ``SD`` included (the
  official code has one parameter group).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from robustbench_med.data.spec import DataInfo
from robustbench_med.defenses.base import Defense, register_defense
from robustbench_med.defenses.options import BackboneBuilder, defense_factory, parse_defense_options
from robustbench_med.defenses.randomness import RandomDraws
from robustbench_med.defenses.recipe import draw_attack_draw_update
from robustbench_med.errors import BadInputError
from robustbench_med.training.strategies import AdversarialTraining

NAME = "ctrw"
OFFICIAL_MEAN_LB = 2048 / (3 * 32 * 32)


@dataclass(frozen=True)
class CTRWOptions:
    """``--defense-option`` keys of CTRW."""

    mean_lb: float = OFFICIAL_MEAN_LB  # lower bound per element (official lb / (C*H*W))
    per_forward: bool = False  # True: the official --eot mode, a fresh draw on every pass

    def __post_init__(self) -> None:
        if self.mean_lb < 0:
            raise BadInputError(f"CTRW mean_lb must be >= 0, got {self.mean_lb}")


class RandomWeight(RandomDraws):
    """``x * (Mu + SD * z)`` with trainable Mu, SD of the input's shape and a batch-shared draw z."""

    def __init__(self, shape: tuple[int, ...], mean_lb: float, per_forward: bool) -> None:
        super().__init__(per_forward)
        self.mu = nn.Parameter(torch.ones(shape))
        self.sd = nn.Parameter(torch.ones(shape))
        self.mean_lb = mean_lb
        self.add_draw("z", shape)

    @property
    def lower_bound(self) -> float:
        """The paper's bound ``lb`` on the sum of SD, for this input size."""
        return self.mean_lb * self.sd.numel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.mu + self.sd * self.draw("z"))

    @torch.no_grad()
    def project(self) -> None:
        """Official shift: raise every SD below ``mean_lb`` by ``mean_lb - min(SD)``."""
        low = float(self.sd.min())
        if low < self.mean_lb:
            below = self.sd < self.mean_lb
            self.sd[below] += self.mean_lb - low

    def after_optimizer_step(self) -> None:
        self.project()

    def extra_repr(self) -> str:
        return f"shape={tuple(self.sd.shape)}, mean_lb={self.mean_lb:.4f}, lb={self.lower_bound:.1f}"


@defense_factory(CTRWOptions, NAME)
def build(build_backbone: BackboneBuilder, info: DataInfo, options: CTRWOptions) -> nn.Module:
    """The backbone behind a trainable random multiplicative weight on its normalised input."""
    model = build_backbone()
    if not isinstance(getattr(model, "net", None), nn.Module):
        raise BadInputError("CTRW needs a model with its normalisation inside (a Classifier with .net)")
    weight = RandomWeight((1, *info.input_shape), options.mean_lb, options.per_forward)
    model.net = nn.Sequential(weight, model.net)
    return model


def strategy(config: Any, defense_options: dict[str, Any]) -> AdversarialTraining:
    parse_defense_options(CTRWOptions, defense_options, NAME)
    return draw_attack_draw_update(NAME, config)


DEFENSE = register_defense(Defense(
    name=NAME, build=build, randomized=True,
    reference="Ma, Dong, Xu, 'Adversarial Robustness through Random Weight Sampling', NeurIPS 2023",
    summary="Trainable random multiplicative weight Mu + SD*z on the normalised input (Mu = SD = 1 "
            "at init), SD >= a lower bound rescaled per element; re-drawn per batch; PGD training "
            "on one draw, update on another.",
    strategy=strategy,
    evaluation="Random at test time (one draw per batch): the official protocol attacks one draw "
               "and classifies with another; report EOT-PGD (K draws per gradient) and "
               "AutoAttack-rand beside it.",
))
