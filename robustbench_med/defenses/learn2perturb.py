"""Learn2Perturb (Jeddi et al., CVPR 2020; code ArmenJeddi/Learn2Perturb).

Mechanism: perturbation-injection modules add ``sigma * z`` (``z ~ N(0, 1)``
of shape (C, H, W), one draw shared by the batch, fresh on every forward pass
in training and evaluation) to feature maps; ``sigma`` is a learnt
per-element map of the same shape, initialised to 0.25 and clamped to >= 0.01
after every optimiser step.

Placement, as the official ResNets: after the stem's BatchNorm (before its
ReLU) and on every residual block's output after the residual sum, before the
block's final ReLU. Adding noise to the residual branch's last BatchNorm output
is the same sum ``(y + n) + shortcut`` and needs no change to the block's
forward, so a block is recognised by type and its last norm is wrapped:
torchvision ``BasicBlock`` (``bn2``), ``Bottleneck`` (``bn3``), MAIL's
``ERLA`` (``norm2``); a MobileNetV2 ``InvertedResidual`` with a residual
connection has no final activation, so its whole output is perturbed. The
stem norms are the BatchNorms that run before the first block (one per branch
in MAIL). The sigma shapes come from a dummy forward pass at the dataset's
input size (the official shapes are hard-coded for 32 px CIFAR).

Recipe ("alternating back-propagation"), official values scaled to the
budget: noise off for the first 10/350 of the epochs, clean-only training for
the first 20/350; then ``0.5 * CE(clean) + 0.5 * CE(adv)`` with PGD on the
model's predicted labels, plus the regulariser
``-(gamma / H_t) * sum(sqrt(sigma))`` (gamma 1e-4, ``H_t`` the harmonic number
of the epochs since the noise started, counted from 1 -- the official count
starts at 0 and divides by zero). Choice: the official code takes the
regulariser step on sigma with a separate optimiser before the joint step;
the benchmark has one optimiser, so the regulariser is added to the joint
loss (the same gradients on sigma, to first order; the network weights do
not see it). sigma is kept out of weight decay (official: its optimiser has
decay 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from robustbench_med.attacks.engine import pgd_examples
from robustbench_med.data.spec import DataInfo
from robustbench_med.defenses.base import Defense, register_defense
from robustbench_med.defenses.options import BackboneBuilder, defense_factory, parse_defense_options
from robustbench_med.defenses.randomness import RandomDraws
from robustbench_med.defenses.recipe import PGDSettings, predicted_labels, scaled_delay
from robustbench_med.defenses.surgery import output_shapes, replace, trace_calls
from robustbench_med.errors import BadInputError
from robustbench_med.models.losses import multitask_loss
from robustbench_med.randomness import resample
from robustbench_med.training.strategies import TrainingStrategy

NAME = "learn2perturb"
NOISE_DELAY_FRACTION = 10 / 350  # official noise_add_delay 10 of 350 epochs
ADV_DELAY_FRACTION = 20 / 350  # official adv_train_delay 20 of 350 epochs
# Residual blocks by class name, and the attribute of the last norm on their residual branch
# (None: perturb the block's output, which has no activation after the sum).
RESIDUAL_BLOCKS: dict[str, str | None] = {"BasicBlock": "bn2", "Bottleneck": "bn3", "ERLA": "norm2",
                                          "InvertedResidual": None}


@dataclass(frozen=True)
class L2POptions:
    """``--defense-option`` keys of Learn2Perturb."""

    sigma_init: float = 0.25
    sigma_min: float = 0.01
    gamma: float = 1e-4
    per_forward: bool = True  # False: hold one draw until resample()
    noise_delay: int | None = None  # epochs without noise; None: 10/350 of the budget
    adv_delay: int | None = None  # clean-only epochs; None: 20/350 of the budget

    def __post_init__(self) -> None:
        if not 0 < self.sigma_min <= self.sigma_init:
            raise BadInputError(f"Learn2Perturb needs 0 < sigma_min <= sigma_init, "
                                f"got {self.sigma_min} and {self.sigma_init}")


class PerturbationMap(RandomDraws):
    """``x + sigma * z``: a learnt (C, H, W) noise-scale map over one batch-shared draw."""

    def __init__(self, shape: tuple[int, ...], sigma_init: float, sigma_min: float,
                 per_forward: bool) -> None:
        super().__init__(per_forward)
        self.sigma = nn.Parameter(torch.full(shape, float(sigma_init)))
        self.sigma_min = sigma_min
        self.enabled = True
        self.add_draw("z", shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sigma * self.draw("z") if self.enabled else x

    def after_optimizer_step(self) -> None:
        """Official: ``sigma.data = clamp(sigma, min=0.01)`` after every step."""
        with torch.no_grad():
            self.sigma.clamp_(min=self.sigma_min)

    def param_group_overrides(self) -> list[tuple[nn.Parameter, dict[str, Any]]]:
        return [(self.sigma, {"weight_decay": 0.0})]

    def extra_repr(self) -> str:
        return f"shape={tuple(self.sigma.shape)}, enabled={self.enabled}"


class Perturbed(nn.Module):
    """``module`` followed by its perturbation map."""

    def __init__(self, module: nn.Module, perturb: PerturbationMap) -> None:
        super().__init__()
        self.module = module
        self.perturb = perturb

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.perturb(self.module(x))


def injection_points(model: nn.Module, info: DataInfo) -> dict[str, tuple[int, ...]]:
    """Modules whose output gets a perturbation map (stem norms, then block outputs) -> output shape."""
    blocks = {name: m for name, m in model.named_modules() if type(m).__name__ in RESIDUAL_BLOCKS}
    norms = {name: m for name, m in model.named_modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    calls = trace_calls(model, info, {**blocks, **norms})
    shapes = output_shapes(calls)
    first_block = next((i for i, c in enumerate(calls) if c.name in blocks), len(calls))
    stem = {c.name: c.output_shape for c in calls[:first_block] if c.name in norms}
    outputs = {}
    for name, block in blocks.items():
        last_norm = RESIDUAL_BLOCKS[type(block).__name__]
        target = f"{name}.{last_norm}" if last_norm is not None else name
        if (last_norm is not None or getattr(block, "use_res_connect", False)) and target in shapes:
            outputs[target] = shapes[target]
    if not outputs:
        raise BadInputError("Learn2Perturb found no residual block (known: "
                            f"{', '.join(RESIDUAL_BLOCKS)}) in this model")
    return {**stem, **outputs}


@defense_factory(L2POptions, NAME)
def build(build_backbone: BackboneBuilder, info: DataInfo, options: L2POptions) -> nn.Module:
    """The backbone with learnt noise maps after the stem norm and on every residual block output."""
    model = build_backbone()
    for name, shape in injection_points(model, info).items():
        noise = PerturbationMap(shape, options.sigma_init, options.sigma_min, options.per_forward)
        replace(model, name, Perturbed(model.get_submodule(name), noise))
    return model


def perturbation_maps(model: nn.Module) -> list[PerturbationMap]:
    return [m for m in model.modules() if isinstance(m, PerturbationMap)]


def harmonic(n: int) -> float:
    return sum(1.0 / i for i in range(1, n + 1))


class L2PTraining(TrainingStrategy):
    """Noise and adversarial delays, predicted-label PGD, 0.5/0.5 loss, annealed sqrt(sigma) reward."""

    name = "learn2perturb"

    def __init__(self, pgd: PGDSettings, noise_delay: int, adv_delay: int, gamma: float) -> None:
        self.pgd, self.noise_delay, self.adv_delay, self.gamma = pgd, noise_delay, adv_delay, gamma

    def describe(self) -> dict[str, Any]:
        return {"strategy": self.name, **self.pgd.as_dict(), "noise_delay": self.noise_delay,
                "adv_delay": self.adv_delay, "gamma": self.gamma, "attack_labels": "predicted",
                "loss": "0.5*ce_clean + 0.5*ce_adv - gamma/H_t*sum(sqrt(sigma))"}

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        for noise in perturbation_maps(model):
            noise.enabled = epoch > self.noise_delay

    def regulariser(self, model: nn.Module, epoch: int) -> torch.Tensor:
        """``-(gamma / H_t) * sum sqrt(sigma)``, t = noisy epochs so far (this one included)."""
        weight = self.gamma / harmonic(epoch - self.noise_delay)
        return -weight * sum(noise.sigma.sqrt().sum() for noise in perturbation_maps(model))

    def batch_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   epoch: int) -> torch.Tensor:
        resample(model)
        output = model(x)
        loss = multitask_loss(output, y)
        if epoch > self.adv_delay:
            x_adv = pgd_examples(model, x, predicted_labels(output), **self.pgd.as_dict())
            resample(model)
            loss = 0.5 * loss + 0.5 * multitask_loss(model(x_adv), y)
        if epoch > self.noise_delay:
            loss = loss + self.regulariser(model, epoch)
        return loss


def strategy(config: Any, defense_options: dict[str, Any]) -> L2PTraining:
    options = parse_defense_options(L2POptions, defense_options, NAME)
    return L2PTraining(PGDSettings.of(config),
                       scaled_delay(NOISE_DELAY_FRACTION, config.epochs, options.noise_delay),
                       scaled_delay(ADV_DELAY_FRACTION, config.epochs, options.adv_delay),
                       options.gamma)


DEFENSE = register_defense(Defense(
    name=NAME, build=build, randomized=True,
    reference="Jeddi, Shafiee, Karg, Scharfenberger, Wong, CVPR 2020 (arXiv 2003.01090); "
              "code ArmenJeddi/Learn2Perturb",
    summary="Learnt per-element Gaussian feature-noise maps (init 0.25, >= 0.01) after the stem norm "
            "and every residual block, fresh per forward; delayed noise and PGD training with an "
            "annealed reward for larger noise.",
    strategy=strategy,
    evaluation="Random at test time (fresh noise per forward pass): attack with EOT over K separate "
               "forward passes (the official EOT replicates one image in one batch, which shares one "
               "noise draw, so it is plain PGD) and score over fresh draws.",
))
