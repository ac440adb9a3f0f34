"""AutoAttack through pyautoattack, with the substitutions that few-class tasks need.

AutoAttack's DLR loss needs >= 3 classes and its targeted DLR >= 4 (AutoAttack
#70, ART #2399); medical tasks are often binary. The plan below keeps
AutoAttack's own attacks and only drops or swaps what cannot run, and every
row records what was substituted:

- >= 4 classes: the standard suite (APGD-CE, APGD-T, FAB-T, Square), with at
  most n_classes - 1 target classes;
- 3 classes: APGD-T -> untargeted APGD-DLR; FAB-T with 2 targets;
- 2 classes: APGD-T dropped (no DLR); FAB-T with the 1 other class.

Square's query budget (AutoAttack's 5,000 by default) is ``AttackSettings.square_queries``: on a
CPU it is most of AutoAttack's time, so a user can lower it, and the row records it.

``version="rand"`` is AutoAttack's suite for randomized defenses (APGD-CE and
APGD-DLR with EOT over 20 draws; APGD-CE only for binary tasks). Its model is
re-drawn before every forward pass (:class:`~robustbench_med.randomness.FreshDrawPerPass`),
so a defense that holds its draw between passes (RPF, CTRW) still gives
AutoAttack's EOT twenty different networks.
"""

from __future__ import annotations

import logging

import torch
from pyautoattack import AutoAttack
from torch import nn

from robustbench_med.attacks.spec import AttackContext, AttackFn, AttackSettings
from robustbench_med.attacks.square import DEFAULT_QUERIES
from robustbench_med.randomness import FreshDrawPerPass

STANDARD = ["apgd-ce", "apgd-t", "fab-t", "square"]
RAND_EOT_ITER = 20
logging.getLogger("auto-attack").setLevel(logging.ERROR)


def autoattack_plan(n_classes: int, version: str) -> tuple[list[str], int, list[str]]:
    """(attacks to run, number of target classes, substitution notes) for a task."""
    targets = min(9, n_classes - 1)
    if version == "rand":
        if n_classes >= 3:
            return ["apgd-ce", "apgd-dlr"], targets, []
        return ["apgd-ce"], targets, ["autoattack-rand: apgd-dlr dropped (DLR needs >= 3 classes)"]
    if n_classes >= 4:
        return list(STANDARD), targets, []
    if n_classes == 3:
        return (["apgd-ce", "apgd-dlr", "fab-t", "square"], targets,
                ["autoattack: apgd-t replaced by untargeted apgd-dlr (targeted DLR needs >= 4 classes); "
                 "fab-t with 2 targets"])
    return (["apgd-ce", "fab-t", "square"], targets,
            ["autoattack: apgd-t dropped (DLR needs >= 3 classes, binary task); fab-t with 1 target"])


FORWARD_SHARE = 1 / 3  # a forward pass as a share of a forward+backward one (the backward costs ~2x)
APGD_ITER = 100  # pyautoattack's n_iter for APGD and FAB, kept


def autoattack_passes(n_classes: int, version: str, square_queries: int | None) -> float:
    """At most how many forward+backward passes AutoAttack spends on a point that survives every
    attack of its plan (a broken point leaves the suite early): APGD and FAB 100 iterations per
    target, EOT x 20 under ``rand``, Square's queries as forward passes."""
    attacks, targets, _ = autoattack_plan(n_classes, version)
    eot = RAND_EOT_ITER if version == "rand" else 1
    per_attack = {"apgd-ce": APGD_ITER * eot, "apgd-dlr": APGD_ITER * eot, "apgd-t": APGD_ITER * targets,
                  "fab-t": APGD_ITER * targets * (1 + FORWARD_SHARE),
                  "square": (square_queries or DEFAULT_QUERIES) * FORWARD_SHARE}
    return float(sum(per_attack[a] for a in attacks))


class AutoAttackFn:
    """Callable (x, y) -> x_adv running pyautoattack's suite on one batch."""

    def __init__(self, model: nn.Module, eps: float, n_classes: int, version: str,
                 device: torch.device, seed: int, notes: list[str],
                 square_queries: int = DEFAULT_QUERIES) -> None:
        attacks, targets, plan_notes = autoattack_plan(n_classes, version)
        if version == "rand":
            model = FreshDrawPerPass(model)
        self.model = model
        notes.extend(n for n in plan_notes if n not in notes)
        self.attacks = attacks
        self.adversary = AutoAttack(model, attacks=attacks, device=device, eps=eps, norm="Linf",
                                    seed=seed, version="custom")
        self.adversary.verbose = False
        self.adversary.apgd.n_restarts = 1
        self.adversary.apgd_targeted.n_target_classes = targets
        self.adversary.fab.n_target_classes = targets
        self.adversary.fab.n_restarts = 1
        self.adversary.square.n_queries = square_queries
        if version == "rand":
            self.adversary.apgd.eot_iter = RAND_EOT_ITER

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x_adv, _ = self.adversary.run_standard_evaluation(x, y, batch_size=len(x))
        return x_adv.detach()


def build_autoattack(version: str):
    def build(model: nn.Module, settings: AttackSettings, ctx: AttackContext) -> AttackFn:
        return AutoAttackFn(model, settings.eps, ctx.n_classes, version, ctx.device, ctx.seed,
                            ctx.notes, settings.square_queries or DEFAULT_QUERIES)
    return build
