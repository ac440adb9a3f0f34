"""What the results store already holds of a plan: per target, its stored cells and finished units.

A unit is finished when its target's clean rows and every cell it would store are in the store
(keyed, as every row, by the checkpoint's identity and the code version); the ``checks`` unit when
its probe rows and the target's check verdicts are. Whether the model is randomized (which decides
the protocols, hence the cells) is read from the stored clean row once there is one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from robustbench_med.grid.plan import (
    Cell,
    Plan,
    Target,
    Unit,
    cell_of,
    checkpoint_identity,
    clean_cells,
    subset_for,
    unit_cells,
)


@dataclass
class TargetStatus:
    """A target against the store: its checkpoint identity (None: not trained yet), subset name,
    randomness (stored, else declared), stored cells and whether its checks are stored."""

    sha: str | None
    subset: str
    randomized: bool
    stored: set[Cell] = field(default_factory=set)
    checked_tasks: set[str] = field(default_factory=set)

    def unit_done(self, plan: Plan, target: Target, unit: Unit) -> bool:
        if self.sha is None:
            return False
        needed = set(clean_cells(target, self.randomized)) | set(
            unit_cells(target, unit, self.randomized))
        if unit.is_checks and not set(target.tasks) <= self.checked_tasks:
            return False
        return needed <= self.stored

    def missing(self, plan: Plan, target: Target) -> list[Unit]:
        return [u for u in target.units if not self.unit_done(plan, target, u)]


def identity_filters(target: Target, sha: str, code_version: str) -> dict[str, object]:
    """The store columns every row of ``target``'s checkpoint shares (any test subset)."""
    r = target.request
    return {"model": r.model, "defense": r.defense or "", "dataset": r.dataset, "seed": r.train.seed,
            "checkpoint_sha": sha, "code_version": code_version}


def target_status(plan: Plan, target: Target, rows: pd.DataFrame, checks: pd.DataFrame,
                  code_version: str, *, n_test_seen: int | None = None) -> TargetStatus:
    """``rows``/``checks``: the store's frames (every row; filtered here). ``n_test_seen``: the number
    of test points when known (the data is loaded), else taken from the checkpoint's sidecar."""
    identity = checkpoint_identity(plan.training(target.training))
    if identity is None:
        return TargetStatus(None, subset_for(target.n_test, None), target.randomized)
    sha, recorded_n = identity
    subset = subset_for(target.n_test, n_test_seen or recorded_n)
    filters = {**identity_filters(target, sha, code_version), "subset": subset}
    mine = _filter(rows, filters)
    clean = mine[mine["attack"] == "clean"]
    randomized = bool((clean["protocol"] == "randomized").any()) if len(clean) else target.randomized
    stored = {cell_of(row) for row in mine.to_dict("records")}
    checked = set(_filter(checks, filters)["task"]) if len(checks) else set()
    return TargetStatus(sha, subset, randomized, stored, checked)


def _filter(frame: pd.DataFrame, filters: dict[str, object]) -> pd.DataFrame:
    if frame.empty:
        return frame
    mask = pd.Series(True, index=frame.index)
    for column, value in filters.items():
        mask &= frame[column] == value
    return frame[mask]


def store_frames(store: object | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The store's rows (no flags) and checks; empty frames without a store."""
    if store is None:
        from robustbench_med.store import CHECK_KEY, CHECK_VALUES, KEY_COLUMNS, VALUE_COLUMNS

        return (pd.DataFrame(columns=["id", *KEY_COLUMNS, *VALUE_COLUMNS]),
                pd.DataFrame(columns=["id", *CHECK_KEY, *CHECK_VALUES]))
    return store.frame(), store.checks_frame()  # type: ignore[attr-defined]
