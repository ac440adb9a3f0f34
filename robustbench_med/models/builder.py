"""Build a registered model, optionally wrapped by a registered defense."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from robustbench_med.data.spec import DataInfo
from robustbench_med.errors import BadInputError
from robustbench_med.registry import DEFENSES, MODELS


def call_with_options(kind: str, name: str, factory: Callable[..., Any], *args: Any,
                      **options: Any) -> Any:
    """Call a factory, turning an unknown option into a clear error that lists the known ones."""
    params = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [k for k in options if k not in params]
    if unknown and not takes_any:
        allowed = [p for p in list(params)[len(args):]] or ["none"]
        raise BadInputError(
            f"{kind} {name} has no option {', '.join(unknown)} (allowed: {', '.join(allowed)})"
        )
    return factory(*args, **options)


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
