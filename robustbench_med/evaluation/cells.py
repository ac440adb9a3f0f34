"""A cell's row: read back from the store when the cell is finished, or recorded (store and event)
when it has just been computed. The runner decides what to compute; this module only keeps the
rows and tells the user about them, so every row a run writes has the same shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from robustbench_med.attacks.eps import format_eps
from robustbench_med.evaluation.estimate import format_seconds
from robustbench_med.evaluation.metrics import bootstrap_ci
from robustbench_med.evaluation.report import CellResult
from robustbench_med.events import Progress, emit
from robustbench_med.store import ResultKey, ResultStore, unpack_flags
from robustbench_med.versions import library_versions


def cell_label(key: ResultKey) -> str:
    return f"{key.attack} ({key.preset}, eps {format_eps(key.eps)}, {key.protocol})"


class CellBook:
    """The rows of one run: ``store`` may be None (nothing is written; rows only reach the report)."""

    def __init__(self, store: ResultStore | None, progress: Progress | None, device: torch.device,
                 image_size: int, elapsed: Callable[[], float]) -> None:
        self.store = store
        self.progress = progress
        self.device = device
        self.image_size = image_size
        self.elapsed = elapsed

    def has(self, key: ResultKey) -> bool:
        return self.store is not None and self.store.has(key)

    def stored(self, key: ResultKey, label: str) -> CellResult | None:
        """The stored result of a finished cell, or None when it still has to run."""
        row = self.store.get(key) if self.store is not None else None
        if row is None:
            return None
        cell = CellResult(key, row["accuracy"], row["ci_low"], row["ci_high"], row["n"],
                          row["n_attacked"], row["wall_s"], True, row["notes"] or "",
                          unpack_flags(row["flags"], row["n"]), settings=_json(row["settings"]),
                          auc=row["auc"], image_size=row["image_size"], device=row["device"] or "")
        emit(self.progress, "cell", f"  {label}: {row['accuracy']:.2%} (stored, not recomputed)", data=cell)
        return cell

    def record(self, key: ResultKey, flags: np.ndarray, *, n_attacked: int, wall_s: float,
               settings: dict, notes: str = "", auc_value: float | None = None,
               label: str | None = None) -> CellResult:
        lo, hi = bootstrap_ci(flags, seed=key.seed)
        accuracy = float(flags.mean()) if len(flags) else float("nan")
        if self.store is not None:
            self.store.put(key, flags=flags, settings=settings, versions=library_versions(),
                           n=len(flags), n_attacked=n_attacked, accuracy=accuracy, ci_low=lo,
                           ci_high=hi, auc=auc_value, image_size=self.image_size,
                           device=str(self.device), wall_s=wall_s, notes=notes)
        cell = CellResult(key, accuracy, lo, hi, len(flags), n_attacked, wall_s, False, notes,
                          flags=flags, settings=settings, auc=auc_value, image_size=self.image_size,
                          device=str(self.device))
        label = label or f"{key.attack} ({key.protocol})"
        emit(self.progress, "cell", f"  {label}: {accuracy:.2%} (95% CI {lo:.2%}-{hi:.2%}, n={len(flags)}"
             f"{f', AUC {auc_value:.3f}' if auc_value is not None else ''}, {wall_s:.1f} s; "
             f"{format_seconds(self.elapsed())} into the run)", data=cell)
        return cell


def _json(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}
