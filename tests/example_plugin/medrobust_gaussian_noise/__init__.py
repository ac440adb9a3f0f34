"""An example third-party defense for medrobust: Gaussian noise on the input pixels.

The model sees ``clip(x + sigma * z, 0, 1)``, ``z ~ N(0, 1)`` per pixel and
per image, drawn afresh on every forward pass in training (Gaussian data
augmentation) and at test time (a single-draw randomized-smoothing
classifier, Cohen et al. 2019, without the certification). It is registered
through the ``medrobust.defenses`` entry point in this package's
``pyproject.toml``; medrobust itself is not edited.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from robustbench_med.data.spec import DataInfo
from robustbench_med.defenses.base import Defense, register_defense


class GaussianInputNoise(nn.Module):
    """Wraps a model: fresh pixel-space Gaussian noise before every forward pass."""

    randomized = True  # tells medrobust to attack it with EOT and score it over fresh draws

    def __init__(self, model: nn.Module, sigma: float) -> None:
        super().__init__()
        self.model = model
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x + self.sigma * torch.randn_like(x)).clamp(0, 1))

    def resample(self) -> None:
        """Our noise is new on every pass; re-draw whatever the wrapped model holds."""
        inner = getattr(self.model, "resample", None)
        if callable(inner):
            inner()


def build(build_backbone: Callable[[], nn.Module], info: DataInfo, sigma: float = 0.1) -> nn.Module:
    """The backbone behind pixel-space Gaussian noise of standard deviation ``sigma``."""
    return GaussianInputNoise(build_backbone(), sigma)


DEFENSE = register_defense(Defense(
    name="gaussian-noise", build=build, randomized=True,
    reference="Gaussian data augmentation / randomized smoothing (Cohen et al., ICML 2019)",
    summary="Pixel-space Gaussian noise (sigma 0.1) on every forward pass, training and test.",
    evaluation="Random at test time: EOT attacks, scored over fresh draws.",
))
