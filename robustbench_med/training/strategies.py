"""How a training batch becomes a loss: a :class:`TrainingStrategy`.

Standard cross-entropy, PGD adversarial training (paper Alg. 2: craft on one
random draw [A], update on a fresh one [I]), or a defense's own recipe (PNI's
mixed clean/adversarial loss, DBN's two BN branches, ...). The optimiser,
schedule and budget stay the benchmark's, so defenses compare on one shared
budget. Every strategy that crafts examples does it with the attack engine
(:mod:`robustbench_med.attacks.engine`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustbench_med.attacks.engine import pgd_examples
from robustbench_med.models.losses import multitask_loss
from robustbench_med.randomness import resample
from robustbench_med.training.config import TrainConfig
from robustbench_med.training.optim import param_groups


class TrainingStrategy:
    """How one training batch becomes a loss; defenses subclass it for their recipe."""

    name = "standard"

    def describe(self) -> dict[str, Any]:
        """Settings recorded with the checkpoint."""
        return {"strategy": self.name}

    def param_groups(self, model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
        return param_groups(model, weight_decay)

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        """Called before each epoch (1-based), e.g. to switch noise on after a delay."""

    def batch_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   epoch: int) -> torch.Tensor:
        """The loss to minimise on one batch; ``model`` is in training mode."""
        return multitask_loss(model(x), y)

    def after_step(self, model: nn.Module, epoch: int) -> None:
        """After every optimiser step: runs the modules' ``after_optimizer_step`` hooks."""
        for module in model.modules():
            hook = getattr(module, "after_optimizer_step", None)
            if callable(hook):
                hook()


class AdversarialTraining(TrainingStrategy):
    """Paper Alg. 2 (after Rice et al. 2020): PGD-k with random start, pure adversarial loss.

    A randomized model is re-drawn before crafting ([A]) and again before the
    update ([I]), so the attack and the update see different random networks.
    """

    name = "pgd-at"

    def __init__(self, eps: float, step: float, steps: int, name: str | None = None) -> None:
        self.eps, self.step, self.steps = eps, step, steps
        self.name = name or self.name

    def describe(self) -> dict[str, Any]:
        return {"strategy": self.name, "eps": self.eps, "step": self.step, "steps": self.steps}

    def batch_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   epoch: int) -> torch.Tensor:
        resample(model)
        x_adv = pgd_examples(model, x, y, eps=self.eps, step=self.step, steps=self.steps)
        resample(model)
        return multitask_loss(model(x_adv), y)


def default_strategy(config: TrainConfig) -> TrainingStrategy:
    """PGD adversarial training under ``--adversarial``, else plain cross-entropy."""
    if config.adversarial:
        return AdversarialTraining(config.adv_eps, config.adv_step, config.adv_steps)
    return TrainingStrategy()
