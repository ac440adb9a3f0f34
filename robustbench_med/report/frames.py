"""Entries back into the store's table shape, so the CSV tables and sweep plots render from entries alone."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from robustbench_med.report.latest import superseded
from robustbench_med.report.leaderboard import code_status

KEY = ("dataset", "task", "model", "defense", "subset", "checkpoint_sha", "code_version")
CELL_VALUES = ("attack", "preset", "eps", "protocol", "n", "n_attacked", "accuracy", "ci_low", "ci_high",
               "auc", "device", "wall_s", "notes")
RESULT_COLUMNS = ("model", "defense", "dataset", "task", "attack", "preset", "eps", "protocol", "seed",
                  "subset", "checkpoint_sha", "code_version", "n", "n_attacked", "accuracy", "ci_low",
                  "ci_high", "auc", "image_size", "device", "wall_s", "settings", "versions", "notes",
                  "source")
CHECK_COLUMNS = ("model", "defense", "dataset", "task", "protocol", "seed", "subset", "checkpoint_sha",
                 "code_version", "check_name", "status", "detail", "statistic", "p_value")


def _entry_key(entry: dict[str, Any]) -> dict[str, Any]:
    return {"model": entry["model"], "defense": entry["defense"], "dataset": entry["dataset"],
            "task": entry["task"], "seed": entry["seed"], "subset": entry["subset"],
            "checkpoint_sha": entry["checkpoint_sha256"], "code_version": entry["code_version"]}


def results_frame(entries: list[dict[str, Any]], old: list[bool] | None = None) -> pd.DataFrame:
    """One line per cell, the store's columns plus ``code``, ``superseded`` (a newer entry of the same
    checkpoint and subset exists; ``old``: :func:`superseded` of ``entries`` when the caller has it)
    and the percentages (the long CSV)."""
    rows = []
    flags = superseded(entries) if old is None else old
    for entry, gone in zip(entries, flags, strict=True):
        for cell in entry["cells"]:
            rows.append({**_entry_key(entry), **{k: cell[k] for k in CELL_VALUES},
                         "image_size": entry["image_size"],
                         "settings": json.dumps(cell["settings"], sort_keys=True),
                         "versions": json.dumps(cell["versions"], sort_keys=True),
                         "source": entry.get("source", ""), "superseded": gone})
    frame = pd.DataFrame(rows, columns=[*RESULT_COLUMNS, "superseded"]).astype({"superseded": bool})
    order = [*KEY, "attack", "preset", "protocol", "eps"]
    frame = frame.sort_values(order, kind="stable").reset_index(drop=True)
    frame["code"] = code_status(frame["code_version"])
    for col in ("accuracy", "ci_low", "ci_high"):
        frame[f"{col}_pct"] = (100 * frame[col].astype(float)).round(2)
    return frame


def checks_frame(entries: list[dict[str, Any]], old: list[bool] | None = None) -> pd.DataFrame:
    """One line per check with its evidence, ``superseded`` as in :func:`results_frame`."""
    flags = superseded(entries) if old is None else old
    rows = [{**_entry_key(entry), "protocol": check["protocol"], "check_name": check["name"],
             **{k: check[k] for k in ("status", "detail", "statistic", "p_value")}, "superseded": gone}
            for entry, gone in zip(entries, flags, strict=True) for check in entry["checks"]]
    frame = pd.DataFrame(rows, columns=[*CHECK_COLUMNS, "superseded"]).astype({"superseded": bool})
    return frame.sort_values([*KEY, "check_name"], kind="stable").reset_index(drop=True)
