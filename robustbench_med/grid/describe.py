"""``medrobust grid plan``'s text: the dependency graph with counts, what is stored, and estimates."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from robustbench_med.evaluation.estimate import Estimate, format_seconds
from robustbench_med.grid.estimate import cell_estimate, training_estimate
from robustbench_med.grid.plan import Plan, Target, clean_cells, unit_cells
from robustbench_med.grid.status import TargetStatus, target_status


@dataclass
class Totals:
    trainings: int = 0
    to_train: int = 0
    cells: int = 0
    stored: int = 0
    seconds: float = 0.0
    unknown: int = 0  # cells or trainings still to run with no estimate

    def add(self, estimate: Estimate) -> None:
        if estimate.seconds is None:
            self.unknown += 1
        else:
            self.seconds += estimate.seconds


def describe(plan: Plan, rows: pd.DataFrame, checks: pd.DataFrame, code_version: str) -> list[str]:
    """The plan as lines: trainings first, then each checkpoint's units with their cells' state."""
    spec, totals = plan.spec, Totals()
    lines = [f"grid {spec.name} ({spec.path})" + (f": {spec.description}" if spec.description else "")]
    for block in spec.blocks:
        targets = [t for t in plan.targets if t.block == block]
        if targets:  # (a block whose checkpoints all join an earlier block's has none of its own)
            lines.append(("" if block == "[grid]" else f"{block}: ") + _block_line(targets))
    lines += ["", "trainings (run first; a surrogate before the targets that attack with it):"]
    for training in plan.trainings:
        totals.trainings += 1
        estimate = training_estimate(plan.zoo, training)
        if training.in_zoo:
            state = "in the zoo"
        else:
            totals.to_train += 1
            totals.add(estimate)
            state = f"to train, est. {format_seconds(estimate.seconds)}" + _basis(estimate)
        needed = ", ".join(training.needed_by)
        lines.append(f"  {training.id} {training.role} {training.label} (for {needed}): {state}")
    lines += ["", "evaluation units by checkpoint (each loads its checkpoint; units run in parallel):"]
    for target in plan.targets:
        lines += _target_lines(plan, target, rows, checks, code_version, totals)
    to_compute = totals.cells - totals.stored
    unknown = f"{totals.unknown} item{'s' if totals.unknown != 1 else ''}"
    cost = (format_seconds(totals.seconds) if not totals.unknown
            else f"unknown (no similar stored work for {unknown})" if not totals.seconds
            else f"{format_seconds(totals.seconds)} + unknown for {unknown} with no similar stored work")
    lines += ["", f"total: {totals.trainings} training{'s' if totals.trainings != 1 else ''} "
              f"({totals.to_train} to run), {totals.cells} cells ({totals.stored} stored, {to_compute} to "
              f"compute); estimated cost {cost}"]
    return lines


def _block_line(targets: list[Target]) -> str:
    """What a block evaluates, from its first checkpoint's settings."""
    ev, r0 = targets[0].evaluation, targets[0].request
    attacks = (f"attacks {ev.groups[0][0]}, presets {', '.join(ev.groups[0][1])}" if len(ev.groups) == 1
               else "attacks " + "; ".join(f"{a} ({', '.join(p)})" for a, p in ev.groups))
    n = len(targets)
    return (f"{n} checkpoint{'s' if n != 1 else ''} to evaluate ({_count(targets, 'model')} x "
            f"{_count(targets, 'defense')} x {_count(targets, 'dataset')} x {_count(targets, 'seed')}), "
            f"{attacks}; training {r0.train.recipe}{_precision(r0.train.amp)}, {r0.train.epochs} epochs at "
            f"{r0.image_size}px on {r0.n_train or 'all'} images; {ev.n_test or 'all'} test points")


def _precision(amp: str) -> str:
    return "" if amp == "off" else f" in {amp}"


def _count(targets: list[Target], what: str) -> str:
    requests = [t.request for t in targets]
    values = {"model": {r.model for r in requests}, "defense": {r.defense for r in requests},
              "dataset": {r.dataset for r in requests}, "seed": {r.train.seed for r in requests}}[what]
    return f"{len(values)} {what}{'s' if len(values) != 1 else ''}"


def _basis(estimate: Estimate) -> str:
    return f" (from {estimate.basis})" if estimate.basis and estimate.seconds is not None else ""


def _target_lines(plan: Plan, target: Target, rows: pd.DataFrame, checks: pd.DataFrame,
                  code_version: str, totals: Totals) -> list[str]:
    status: TargetStatus = target_status(plan, target, rows, checks, code_version)
    deps = ", ".join(t for t in (target.training, target.surrogate) if t)
    kind = "randomized" if status.randomized else "deterministic"
    lines = [f"  {target.id} {target.label} <- {deps} ({kind}; {len(target.tasks)} task"
             f"{'s' if len(target.tasks) != 1 else ''}; subset {status.subset})"]
    n = target.n_test
    groups = [("clean rows", clean_cells(target, status.randomized), False)]
    groups += [(f"{u.id} {u.label}", unit_cells(target, u, status.randomized), u.is_checks)
               for u in target.units]
    width = max(34, *(len(label) for label, _cells, _checks in groups))  # stored names may be long
    for label, cells, is_checks in groups:
        stored = [c for c in cells if c in status.stored]
        seconds: float | None = 0.0
        for cell in cells:
            if cell in status.stored:
                continue
            estimate = cell_estimate(rows, target, cell, n)
            totals.add(estimate)
            seconds = None if seconds is None or estimate.seconds is None else seconds + estimate.seconds
        totals.cells += len(cells)
        totals.stored += len(stored)
        state = ("stored" if len(stored) == len(cells)
                 else f"{len(stored)} stored, est. {format_seconds(seconds)}" if stored
                 else f"est. {format_seconds(seconds)}")
        if is_checks:
            state += ("; checks stored" if set(target.tasks) <= status.checked_tasks
                      else "; then the masking checks")
        cells_text = f"{len(cells)} cell{'s' if len(cells) != 1 else ''}"
        lines.append(f"     {label:<{width}} {cells_text:<9} {state}")
    return lines
