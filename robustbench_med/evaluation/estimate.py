"""What a cell will cost, from what similar cells cost before: the median time per test point of
stored rows of the same model, defense, attack, preset, protocol and image size (the same dataset
preferred). Without such history the estimate is ``None`` ("unknown"): nothing is guessed.

It lives in the evaluation layer because ``medrobust run`` prints it before attacking; ``grid plan``
uses the same function (:mod:`robustbench_med.grid.estimate`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import pandas as pd

from robustbench_med.events import Progress, emit

MATCH = ("model", "defense", "attack", "preset", "protocol", "image_size")


@dataclass(frozen=True)
class Estimate:
    """Seconds (None: no similar work stored) and where the number comes from."""

    seconds: float | None
    basis: str = ""


def similar_estimate(rows: pd.DataFrame, wanted: dict[str, object], dataset: str,
                     n_points: int | None) -> Estimate:
    """The expected wall time over ``n_points`` of a cell whose ``MATCH`` columns are ``wanted``
    (rows of ``dataset`` preferred); shared by ``grid plan`` and ``medrobust run``."""
    if rows.empty or "wall_s" not in rows:
        return Estimate(None)
    similar = rows
    for column in MATCH:
        similar = similar[similar[column] == wanted[column]]
    similar = similar[similar["wall_s"].notna() & (similar["n"] > 0)]
    same_data = similar[similar["dataset"] == dataset]
    pool, where = (same_data, dataset) if len(same_data) else (similar, "other datasets")
    if pool.empty:
        return Estimate(None)
    per_point = statistics.median((pool["wall_s"] / pool["n"]).tolist())
    n = n_points or int(statistics.median(pool["n"].tolist()))
    return Estimate(per_point * n, f"{len(pool)} stored row{'s' if len(pool) > 1 else ''} ({where})")


def announce(progress: Progress | None, rows: pd.DataFrame, todo: list[tuple[str, dict[str, object]]],
             dataset: str, n_points: int, task: str) -> None:
    """Before attacking: each cell still to compute (its label and ``MATCH`` columns) and its
    estimated cost from ``rows``' timings of similar cells, or "no estimate"; one summary event."""
    if not todo:
        return
    total, unknown, lines = 0.0, 0, []
    for label, wanted in todo:
        estimate = similar_estimate(rows, wanted, dataset, n_points)
        if estimate.seconds is None:
            unknown += 1
            lines.append(f"    {label}: no estimate")
        else:
            total += estimate.seconds
            lines.append(f"    {label}: ~{format_seconds(estimate.seconds)} (from {estimate.basis})")
    summary = (f"  {len(todo)} cell{'s' if len(todo) > 1 else ''} to compute on {task}: "
               f"~{format_seconds(total)} estimated"
               + (f", {unknown} without an estimate" if unknown else ""))
    emit(progress, "estimate", summary, data={"seconds": total, "unknown": unknown})
    for line in lines:
        emit(progress, "estimate", line, level="detail")


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
