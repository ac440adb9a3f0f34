"""What an evaluation returns: one result per grid cell, the masking checks, and a frame of both.

The frame has the store's columns (``ResultStore.frame``), so the same code reads
a run's rows whether they were stored or not; the masking checks of a run
without a store read this frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robustbench_med.evaluation.masking import CheckResult
from robustbench_med.store import KEY_COLUMNS, ResultKey, pack_flags


@dataclass
class CellResult:
    """One grid cell's outcome: accuracy over all test points with its 95% interval and n, the
    settings it ran with, and the per-point robust flags (True: still classified correctly)."""

    key: ResultKey
    accuracy: float
    ci_low: float
    ci_high: float
    n: int
    n_attacked: int
    wall_s: float
    cached: bool
    notes: str = ""
    flags: np.ndarray | None = field(default=None, repr=False)
    settings: dict[str, Any] = field(default_factory=dict, repr=False)
    auc: float | None = None
    image_size: int | None = None
    device: str = ""

    def row(self, *, with_flags: bool = False) -> dict[str, Any]:
        """This cell as a store row."""
        out = {**self.key.as_dict(), "n": self.n, "n_attacked": self.n_attacked,
               "accuracy": self.accuracy, "ci_low": self.ci_low, "ci_high": self.ci_high,
               "auc": self.auc, "image_size": self.image_size, "device": self.device,
               "wall_s": self.wall_s, "notes": self.notes,
               "settings": json.dumps(self.settings, sort_keys=True, default=str)}
        if with_flags:
            out["flags"] = None if self.flags is None else pack_flags(self.flags)
        return out


@dataclass
class Report:
    """The cells and checks of one evaluated model. ``store_path`` is None when nothing was stored;
    ``checkpoint`` is set when the model came from a checkpoint (the CLI's runs)."""

    model: str = ""
    cells: list[CellResult] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    randomized: bool = False
    store_path: Path | None = None
    checkpoint: Any = None

    def to_frame(self, *, with_flags: bool = False) -> pd.DataFrame:
        """One row per cell with the store's columns (``settings`` as JSON, ``flags`` bit-packed)."""
        rows = [cell.row(with_flags=with_flags) for cell in self.cells]
        columns = [*KEY_COLUMNS, "n", "n_attacked", "accuracy", "ci_low", "ci_high", "auc",
                   "image_size", "device", "wall_s", "notes", "settings"]
        return pd.DataFrame(rows, columns=columns + (["flags"] if with_flags else []))

    def checks_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"check": c.name, "status": c.status, "detail": c.detail,
                              "statistic": c.statistic, "p_value": c.p_value} for c in self.checks],
                            columns=["check", "status", "detail", "statistic", "p_value"])

    def cell(self, attack: str, *, preset: str | None = None, eps: float | None = None,
             protocol: str | None = None, task: str | None = None) -> CellResult:
        """The one cell matching ``attack`` and the given settings; an error names the choices when
        none or several match (e.g. ``report.cell("pgd-10", preset="standard")``)."""
        found = [c for c in self.cells if c.key.attack == attack
                 and (preset is None or c.key.preset == preset)
                 and (eps is None or abs(c.key.eps - eps) < 1e-9)
                 and (protocol is None or c.key.protocol == protocol)
                 and (task is None or c.key.task == task)]
        if len(found) != 1:
            choices = sorted({(c.key.attack, c.key.preset, round(c.key.eps, 6), c.key.protocol, c.key.task)
                              for c in self.cells})
            raise KeyError(f"{len(found)} cells match attack={attack!r} preset={preset!r} eps={eps!r} "
                           f"protocol={protocol!r} task={task!r}; cells (attack, preset, eps, protocol, "
                           f"task): {choices}")
        return found[0]
