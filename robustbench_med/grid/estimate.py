"""What a grid will cost, from what similar work cost before.

A cell's estimate is the median time per test point of the stored rows of the same model, defense,
attack, preset, protocol and image size (the same dataset preferred), times the cell's test points:
an attack's cost grows with the points it attacks. A training's estimate is the median time per
image-epoch of the zoo's checkpoints of the same model (and defense) at the same size and kind of
training. Without such history the estimate is ``None`` ("unknown"): nothing is guessed.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from robustbench_med.grid.plan import Cell, Target, Training

MATCH = ("model", "defense", "attack", "preset", "protocol", "image_size")


@dataclass(frozen=True)
class Estimate:
    """Seconds (None: no similar work stored) and where the number comes from."""

    seconds: float | None
    basis: str = ""


def cell_estimate(rows: pd.DataFrame, target: Target, cell: Cell, n_points: int | None) -> Estimate:
    """The expected wall time of ``cell`` of ``target`` over ``n_points`` test points."""
    r = target.request
    wanted = {"model": r.model, "defense": r.defense or "", "attack": cell.attack, "preset": cell.preset,
              "protocol": cell.protocol, "image_size": r.image_size}
    return similar_estimate(rows, wanted, r.dataset, n_points)


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


def training_estimate(zoo: Path, training: Training) -> Estimate:
    """The expected training time of ``training`` from the zoo's sidecars of similar checkpoints."""
    if training.in_zoo:
        return Estimate(0.0, "in the zoo")
    r = training.request
    config = r.config()
    folder = Path(zoo) / config.label
    rates = []
    for sidecar in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            meta = json.loads(sidecar.read_text())
            c, m = meta["config"], meta["metrics"]
            if (c["image_size"] != r.image_size or bool(c["train"].get("adversarial"))
                    != r.train.adversarial):
                continue
            images, epochs = c["data"].get("n_train"), m.get("epochs_run")
            if images and epochs and m.get("train_seconds"):
                rates.append(m["train_seconds"] / (images * epochs))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    if not rates or not r.n_train:
        return Estimate(None)
    return Estimate(statistics.median(rates) * r.n_train * r.train.epochs,
                    f"{len(rates)} checkpoint{'s' if len(rates) > 1 else ''} of {config.label} in the zoo")


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
