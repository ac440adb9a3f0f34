"""Build a registered model, optionally wrapped by a registered defense."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from robustbench_med.data.spec import DataInfo
from robustbench_med.factory_options import check_options
from robustbench_med.registry import DEFENSES, MODELS


def call_with_options(kind: str, name: str, factory: Callable[..., Any], *args: Any,
                      **options: Any) -> Any:
    """Call a factory after checking its options' names and value types (one-line errors)."""
    return factory(*args, **check_options(kind, name, factory, len(args), options))


def build_model(model: str, info: DataInfo, *, defense: str | None = None,
                model_options: dict[str, Any] | None = None,
                defense_options: dict[str, Any] | None = None, seed: int | None = None) -> nn.Module:
    """A fresh (untrained) model for ``info``; same seed, same initial weights."""
    if seed is not None:
        torch.manual_seed(seed)
    name = MODELS.resolve(model)
    factory = MODELS.get(name)

    def build_backbone() -> nn.Module:
        return call_with_options("model", name, factory, info, **(model_options or {}))

    if defense is None:
        return build_backbone()
    defense_name = DEFENSES.resolve(defense)
    plugin = DEFENSES.get(defense_name)
    return call_with_options("defense", defense_name, plugin.build, build_backbone, info,
                             **(defense_options or {}))


def check_buildable(model: str, info: DataInfo, *, defense: str | None = None,
                    model_options: dict[str, Any] | None = None,
                    defense_options: dict[str, Any] | None = None) -> None:
    """Build once and discard, random state untouched: every check a factory makes on its options
    fails here, before a training run is announced or started, not minutes into it."""
    with torch.random.fork_rng(devices=[]):
        build_model(model, info, defense=defense, model_options=model_options,
                    defense_options=defense_options)
