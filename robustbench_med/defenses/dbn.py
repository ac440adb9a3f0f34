"""DBN: adversarial training with Dual Batch Normalization (Han et al., Nat. Commun. 2021).

Code: peterhan91/Medical-Robust-Training (``model/dsbn.py``, ``main_bn.py``).
Every BatchNorm becomes two independent BatchNorms (own affine parameters and
own running statistics) -- one for clean inputs, one for adversarial inputs --
while all convolution and linear weights stay shared. Deterministic.

Training (official): PGD crafted through the adversarial branch with the
model in eval mode, then ``CE(clean branch on x) + CE(adversarial branch on
x_adv)`` with equal weights, both branches updated every step. We use the
benchmark's PGD settings instead of the official eps 0.005 / step 0.0025.

Deployment (the official evaluation routes clean inputs through the clean BN
and adversarial inputs through the adversarial BN -- an oracle no deployed
model has): a DBN model here always answers through *one* branch, chosen at
build time with ``branch`` (default ``adv``, the robust branch), in train and
eval mode alike, so the attack and the score see the same network.
``branch=clean`` gives the AdvProp-style deployment. The branches swap only
inside :func:`routed`, which the training strategy uses.

Choice: each branch is a deep copy of the backbone's own BatchNorm (its eps
and momentum; MAIL keeps Keras' 0.01), rather than the official momentum 0.01
everywhere, so DBN differs from its backbone only by the split.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from robustbench_med.attacks.engine import pgd_examples
from robustbench_med.data.spec import DataInfo
from robustbench_med.defenses.base import Defense, register_defense
from robustbench_med.defenses.options import BackboneBuilder, defense_factory, parse_defense_options
from robustbench_med.defenses.recipe import PGDSettings
from robustbench_med.defenses.surgery import of_type, replace
from robustbench_med.errors import BadInputError
from robustbench_med.models.losses import multitask_loss
from robustbench_med.training.strategies import TrainingStrategy

NAME = "dbn"
BRANCHES = ("clean", "adv")


@dataclass(frozen=True)
class DBNOptions:
    """``--defense-option`` keys of DBN."""

    branch: str = "adv"  # the deployed branch: attacked and scored

    def __post_init__(self) -> None:
        if self.branch not in BRANCHES:
            raise BadInputError(f"unknown DBN branch '{self.branch}' (allowed: {', '.join(BRANCHES)})")


class DualBatchNorm(nn.Module):
    """Two copies of one BatchNorm; :attr:`route` (or the deployed branch) picks which one runs."""

    def __init__(self, norm: nn.Module, deploy: str) -> None:
        super().__init__()
        self.clean = copy.deepcopy(norm)
        self.adv = copy.deepcopy(norm)
        self.deploy = deploy
        self.route: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch: nn.Module = getattr(self, self.route or self.deploy)
        return branch(x)

    def extra_repr(self) -> str:
        return f"deploy={self.deploy}"


@contextmanager
def routed(model: nn.Module, branch: str) -> Iterator[None]:
    """Inside the block, every :class:`DualBatchNorm` of ``model`` uses ``branch``."""
    duals = [m for m in model.modules() if isinstance(m, DualBatchNorm)]
    previous = [m.route for m in duals]
    for m in duals:
        m.route = branch
    try:
        yield
    finally:
        for m, route in zip(duals, previous, strict=True):
            m.route = route


@defense_factory(DBNOptions, NAME)
def build(build_backbone: BackboneBuilder, info: DataInfo, options: DBNOptions) -> nn.Module:
    """The backbone with every BatchNorm split into a clean and an adversarial branch."""
    model = build_backbone()
    norms = of_type(model, nn.modules.batchnorm._BatchNorm)
    if not norms:
        raise BadInputError("DBN found no BatchNorm layer to split")
    for name, norm in norms.items():
        replace(model, name, DualBatchNorm(norm, options.branch))
    return model


class DualBNTraining(TrainingStrategy):
    """Official DBN step: PGD through the adversarial branch; CE(clean branch) + CE(adv branch)."""

    name = "dbn"

    def __init__(self, pgd: PGDSettings) -> None:
        self.pgd = pgd

    def describe(self) -> dict[str, Any]:
        return {"strategy": self.name, **self.pgd.as_dict(),
                "loss": "ce(clean branch, x) + ce(adv branch, x_adv)"}

    def batch_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   epoch: int) -> torch.Tensor:
        with routed(model, "adv"):
            x_adv = pgd_examples(model, x, y, **self.pgd.as_dict())
            adversarial = multitask_loss(model(x_adv), y)
        with routed(model, "clean"):
            clean = multitask_loss(model(x), y)
        return clean + adversarial


def strategy(config: Any, defense_options: dict[str, Any]) -> DualBNTraining:
    parse_defense_options(DBNOptions, defense_options, NAME)
    return DualBNTraining(PGDSettings.of(config))


DEFENSE = register_defense(Defense(
    name=NAME, build=build, randomized=False,
    reference="Han et al., Nature Communications 12:4315 (2021); code peterhan91/Medical-Robust-Training",
    summary="Adversarial training with dual BatchNorm (clean / adversarial statistics and affine "
            "parameters, shared weights); deployed through one branch (default: adv).",
    strategy=strategy,
    evaluation="Deterministic: standard PGD/AutoAttack suffice. The deployed branch (option branch) "
               "is the one attacked and scored; the official clean-BN-for-clean, adv-BN-for-adv "
               "numbers come from two different networks.",
))
