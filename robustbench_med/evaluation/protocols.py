"""Which protocols a cell runs under, and the attack settings each protocol implies.

A deterministic model has one protocol (``deterministic``). A randomized model is attacked under
``single-draw`` (gradients through whatever draw each pass sees, as the paper and the RPF/CTRW code
do) and ``eot`` (each step averages the gradient over ``EOT_ITER`` draws), white-box iterative
attacks under both; an adaptive attack runs EOT only, any other attack one draw.
"""

from __future__ import annotations

import dataclasses

from robustbench_med.attacks.spec import AttackRequest, AttackSettings

EOT_ITER = 20


def protocols_for(request: AttackRequest, randomized: bool) -> list[str]:
    spec = request.spec
    if not randomized:
        return ["deterministic"]
    if spec.adaptive:
        return ["eot"]
    if spec.box == "white-box" and spec.iterative:
        return ["single-draw", "eot"]
    return ["single-draw"]


def cell_settings(request: AttackRequest, preset: str, eps: float | None,
                  protocol: str) -> AttackSettings:
    settings = request.spec.settings(preset, eps, request.steps)
    if protocol == "eot" and settings.eot_iter < 2:
        settings = dataclasses.replace(settings, eot_iter=EOT_ITER)
    if protocol == "single-draw":
        settings = dataclasses.replace(settings, eot_iter=1)
    return settings
