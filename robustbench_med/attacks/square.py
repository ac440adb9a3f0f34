"""Square Attack (score-based black-box) through pyautoattack's implementation."""

from __future__ import annotations

import torch
from pyautoattack.square import SquareAttack
from torch import nn

from robustbench_med.attacks.spec import AttackContext, AttackFn, AttackSettings

DEFAULT_QUERIES = 5000


def square_attack(model: nn.Module, eps: float, queries: int, device: torch.device,
                  seed: int) -> AttackFn:
    """AutoAttack's Square settings (p_init 0.8, margin loss, one restart)."""
    attack = SquareAttack(model, norm="Linf", n_queries=queries, eps=eps, p_init=0.8,
                          n_restarts=1, seed=seed, verbose=False, device=device,
                          resc_schedule=False)

    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return attack.perturb(x, y).detach()

    return run


def build_square(model: nn.Module, settings: AttackSettings, ctx: AttackContext) -> AttackFn:
    return square_attack(model, settings.eps, settings.steps or DEFAULT_QUERIES, ctx.device, ctx.seed)
