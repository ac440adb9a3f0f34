"""The optimiser, its parameter groups and the learning-rate schedule a recipe names."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustbench_med.training.recipes import Recipe


def scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe, epochs: int) -> Any:
    """Multi-step decay at the recipe's milestones, else ReduceLROnPlateau on the validation loss."""
    if recipe.milestones:
        steps = sorted({max(1, round(f * epochs)) for f in recipe.milestones})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=steps, gamma=0.1)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=recipe.plateau_factor, patience=recipe.plateau_patience,
        min_lr=recipe.min_lr)


def optimizer(groups: list[dict[str, Any]], recipe: Recipe) -> torch.optim.Optimizer:
    """SGD (with the recipe's momentum) or Adam over ``groups``."""
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum)
    return torch.optim.Adam(groups, lr=recipe.lr)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Parameter groups; a module may set ``param_group_overrides()`` (e.g. no decay on noise scales)."""
    special: dict[int, dict[str, Any]] = {}
    for module in model.modules():
        hook = getattr(module, "param_group_overrides", None)
        if callable(hook):
            for param, settings in hook():
                special[id(param)] = settings
    plain = [p for p in model.parameters() if p.requires_grad and id(p) not in special]
    groups: list[dict[str, Any]] = [{"params": plain, "weight_decay": weight_decay}]
    by_settings: dict[tuple[tuple[str, Any], ...], list[nn.Parameter]] = {}
    for p in model.parameters():
        if id(p) in special and p.requires_grad:
            by_settings.setdefault(tuple(sorted(special[id(p)].items())), []).append(p)
    groups += [{"params": ps, **dict(k)} for k, ps in by_settings.items()]
    return groups
