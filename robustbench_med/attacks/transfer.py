"""The paper's black-box protocol: craft on a surrogate, transfer to the target.

The paper crafts AutoAttack and Square examples on a ResNet101 trained on the
same data and scores them on the defended model. No library packages this
protocol; it is a thin composition of our AutoAttack and Square adapters with
the surrogate the runner trains once and caches in the zoo.

The examples depend on the surrogate, the points, eps and the attack's settings, never on the
target: the runner crafts them for every test point once and caches them
(:mod:`robustbench_med.evaluation.transfer_cache`), so each target of a dataset reuses them.
"""

from __future__ import annotations

from torch import nn

from robustbench_med.attacks.autoattack import AutoAttackFn
from robustbench_med.attacks.spec import AttackContext, AttackFn, AttackSettings
from robustbench_med.attacks.square import DEFAULT_QUERIES, square_attack
from robustbench_med.errors import MedrobustError


def _surrogate(ctx: AttackContext) -> nn.Module:
    if ctx.surrogate is None:
        raise MedrobustError("transfer attacks need a surrogate model, and this run has none")
    return ctx.surrogate()


def build_aa_surrogate(model: nn.Module, settings: AttackSettings, ctx: AttackContext) -> AttackFn:
    surrogate = _surrogate(ctx)
    return AutoAttackFn(surrogate, settings.eps, ctx.n_classes, "standard", ctx.device, ctx.seed,
                        ctx.notes, settings.square_queries or DEFAULT_QUERIES)


def build_square_surrogate(model: nn.Module, settings: AttackSettings,
                           ctx: AttackContext) -> AttackFn:
    surrogate = _surrogate(ctx)
    return square_attack(surrogate, settings.eps, settings.steps or DEFAULT_QUERIES, ctx.device,
                         ctx.seed)
