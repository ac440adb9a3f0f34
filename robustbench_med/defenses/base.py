"""What a defense plugin is: a model transformer, its training recipe, and its randomness.

A defense is registered (built-in or through the ``medrobust.defenses`` entry
point) as a :class:`Defense`. ``build(build_backbone, info, **options)`` gets a
function that builds the undefended model (a ``Classifier`` around a
ResNet18, MAIL, ...) and returns the defended model; ``strategy(train_config,
options)`` returns the :class:`~robustbench_med.training.TrainingStrategy` of
its original recipe (the optimiser, schedule and epoch budget stay the
benchmark's, so every defense is compared on one shared budget).
``randomized`` says whether it draws fresh randomness at inference, which
makes the attack suite use EOT on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from robustbench_med.registry import DEFENSES

BackboneBuilder = Callable[[], nn.Module]


@dataclass(frozen=True)
class Defense:
    """A registered defense: how to build it, how to train it, how to evaluate it honestly."""

    name: str
    build: Callable[..., nn.Module]
    randomized: bool
    reference: str
    summary: str = ""
    strategy: Callable[[Any, dict[str, Any]], Any] | None = None
    evaluation: str = ""


def register_defense(defense: Defense) -> Defense:
    """Add a defense to the registry (third-party packages may call this too)."""
    DEFENSES.add(defense.name, defense, origin=defense.build.__module__.split(".")[0])
    return defense
