"""Attacks: a registry of families (pgd-K, bim-K, mim-K, square, autoattack, ...) and presets."""

from robustbench_med.attacks.eps import parse_eps, parse_eps_list
from robustbench_med.attacks.spec import (
    PRESETS,
    AttackContext,
    AttackRequest,
    AttackSettings,
    AttackSpec,
    parse_attack,
    parse_attacks,
)

__all__ = ["PRESETS", "AttackContext", "AttackRequest", "AttackSettings", "AttackSpec",
           "parse_attack", "parse_attacks", "parse_eps", "parse_eps_list"]
