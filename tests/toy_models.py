"""Small models built to trip (or pass) the gradient-masking checks, on top of a real ResNet18."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from robustbench_med.data.spec import DataInfo
from robustbench_med.models.backbones import resnet
from robustbench_med.registry import MODELS


class InputQuantiser(nn.Module):
    """floor(x * levels) / levels: piecewise constant, so its gradient is zero almost everywhere."""

    def __init__(self, levels: int = 4) -> None:
        super().__init__()
        self.levels = levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.floor(x * self.levels) / self.levels + 0.5 / self.levels


class GaussianInputNoise(nn.Module):
    """Fresh N(0, sigma^2) noise on every pass: single-draw gradients are noisy, EOT averages them."""

    randomized = True

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sigma * torch.randn_like(x)


class ConstantLogits(nn.Module):
    """Replaces the logits by one fixed class: a collapsed training run that answers the same for all."""

    def __init__(self, label: int = 1) -> None:
        super().__init__()
        self.label = label

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        constant = nn.functional.one_hot(torch.tensor(self.label), logits.shape[1]).to(logits) * 5.0
        return logits * 0.0 + constant


def quantised_resnet18(info: DataInfo) -> nn.Module:
    model = resnet(18)(info)
    model.net = nn.Sequential(InputQuantiser(), model.net)
    return model


def noisy_resnet18(info: DataInfo, sigma: float = 0.05) -> nn.Module:
    model = resnet(18)(info)
    model.net = nn.Sequential(GaussianInputNoise(sigma), model.net)
    return model


def constant_resnet18(info: DataInfo) -> nn.Module:
    model = resnet(18)(info)
    model.net = nn.Sequential(model.net, ConstantLogits())
    return model


TOYS = {
    "test-quantised-resnet18": quantised_resnet18,
    "test-noisy-resnet18": noisy_resnet18,
    "test-constant-resnet18": constant_resnet18,
}


@contextmanager
def registered() -> Iterator[list[str]]:
    """The toy models in the model registry for the ``with`` block, and only for it.

    Use it through the ``toys`` fixture of ``tests/conftest.py``. On exit every name is restored
    to what it was before (removed, or the earlier entry put back)."""
    MODELS.names()  # built-ins first: loading them later must not see, or outlive, the toys
    before = {name: MODELS._entries.get(name) for name in TOYS}
    for name, build in TOYS.items():
        MODELS.add(name, build, origin="tests", replace=True)
    try:
        yield list(TOYS)
    finally:
        for name, entry in before.items():
            if entry is None:
                MODELS._entries.pop(name, None)
            else:
                MODELS._entries[name] = entry


def register() -> None:
    """Registers the toys without undoing it; use the ``toys`` fixture of ``tests/conftest.py``
    instead. (Kept for callers not moved yet: the autouse ``registry_state`` fixture removes what
    this added when the calling test module ends.)"""
    for name, build in TOYS.items():
        MODELS.add(name, build, origin="tests", replace=True)
