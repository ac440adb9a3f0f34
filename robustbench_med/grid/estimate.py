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
from pathlib import Path

import pandas as pd

from robustbench_med.evaluation.estimate import Estimate, similar_estimate
from robustbench_med.grid.plan import Cell, Target, Training


def cell_estimate(rows: pd.DataFrame, target: Target, cell: Cell, n_points: int | None) -> Estimate:
    """The expected wall time of ``cell`` of ``target`` over ``n_points`` test points."""
    r = target.request
    wanted = {"model": r.model, "defense": r.defense or "", "attack": cell.attack, "preset": cell.preset,
              "protocol": cell.protocol, "image_size": r.image_size}
    return similar_estimate(rows, wanted, r.dataset, n_points)


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
