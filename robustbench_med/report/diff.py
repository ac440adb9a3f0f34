"""What changed between two boards: entries added and removed, cells that moved beyond both intervals.

The check a maintainer runs before merging new results. A board is a folder of entry files or a
results store (a results folder or its ``results.sqlite``). Entries are matched by their full key
(model, defense, dataset, task, seed, subset, checkpoint, code version); what is left unmatched is
paired as a re-measurement when one entry on each side has the same model, defense, task, seed,
subset and training budget (a retrained checkpoint, newer code). A cell moved when each side's
accuracy lies outside the other's 95% interval: noise inside the intervals is not a change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustbench_med.report.entries import entries_from_store, entry_key, read_entries
from robustbench_med.report.entry_schema import EntryError

CELL = ("accuracy", "ci_low", "ci_high")


@dataclass
class Moved:
    entry: str
    attack: str
    preset: str
    protocol: str
    eps: float
    old: tuple[float, float | None, float | None]
    new: tuple[float, float | None, float | None]


@dataclass
class BoardDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    remeasured: list[tuple[str, str]] = field(default_factory=list)
    moved: list[Moved] = field(default_factory=list)
    cells_compared: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"added": self.added, "removed": self.removed, "cells_compared": self.cells_compared,
                "remeasured": [{"old": o, "new": n} for o, n in self.remeasured],
                "moved": [{"entry": m.entry, "attack": m.attack, "preset": m.preset, "protocol": m.protocol,
                           "eps": m.eps, "old": dict(zip(CELL, m.old, strict=True)),
                           "new": dict(zip(CELL, m.new, strict=True))} for m in self.moved]}


def load_board(path: str | Path) -> list[dict[str, Any]]:
    """Entries of a folder of entry files, a results folder or a ``results.sqlite`` file."""
    from robustbench_med.store import STORE_NAME, ResultStore

    path = Path(path)
    store = path if path.is_file() and path.suffix == ".sqlite" else path / STORE_NAME
    if store.is_file():
        entries = entries_from_store(ResultStore(store))
        return [{**e, "_file": _label(e)} for e in entries]
    if path.is_file():
        raise EntryError(f"{path}: neither a folder of entries nor a results store (.sqlite)")
    return read_entries(path)


def _label(entry: dict[str, Any]) -> str:
    name = entry["model"] + ("" if entry["defense"] == "none" else f"+{entry['defense']}")
    sha = entry["checkpoint_sha256"][:12]
    return f"{name} {entry['task']} {entry['subset']} {sha} {entry['code_version']}"


def _loose_key(entry: dict[str, Any]) -> tuple:
    return (entry["model"], entry["defense"], entry["dataset"], entry["task"], entry["seed"], entry["subset"],
            json.dumps(entry["training_budget"], sort_keys=True))


def _cells(entry: dict[str, Any]) -> dict[tuple, dict[str, Any]]:
    return {(c["attack"], c["preset"], c["protocol"], round(c["eps"], 6)): c for c in entry["cells"]}


def _outside(value: float, low: float | None, high: float | None) -> bool:
    if low is None or high is None:
        return False
    return value < low - 1e-9 or value > high + 1e-9


def moved_beyond_both(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Each accuracy lies outside the other's interval (a cell without intervals never 'moves')."""
    return (_outside(new["accuracy"], old["ci_low"], old["ci_high"])
            and _outside(old["accuracy"], new["ci_low"], new["ci_high"]))


def diff_boards(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> BoardDiff:
    result = BoardDiff()
    old_by, new_by = {entry_key(e): e for e in old}, {entry_key(e): e for e in new}
    pairs = [(old_by[k], new_by[k]) for k in sorted(old_by.keys() & new_by.keys())]
    left = [old_by[k] for k in sorted(old_by.keys() - new_by.keys())]
    right = [new_by[k] for k in sorted(new_by.keys() - old_by.keys())]
    for a in list(left):
        same = [b for b in right if _loose_key(b) == _loose_key(a)]
        if len(same) == 1 and sum(_loose_key(x) == _loose_key(a) for x in left) == 1:
            pairs.append((a, same[0]))
            result.remeasured.append((a["_file"], same[0]["_file"]))
            left.remove(a)
            right.remove(same[0])
    result.removed = sorted(e["_file"] for e in left)
    result.added = sorted(e["_file"] for e in right)
    for a, b in pairs:
        cells_a, cells_b = _cells(a), _cells(b)
        for key in sorted(cells_a.keys() & cells_b.keys()):
            result.cells_compared += 1
            x, y = cells_a[key], cells_b[key]
            if moved_beyond_both(x, y):
                result.moved.append(Moved(b["_file"], *key, (x["accuracy"], x["ci_low"], x["ci_high"]),
                                          (y["accuracy"], y["ci_low"], y["ci_high"])))
    result.remeasured.sort()
    return result


def _pct(cell: tuple[float, float | None, float | None]) -> str:
    accuracy, low, high = cell
    interval = f" [{100 * low:.1f}, {100 * high:.1f}]" if low is not None and high is not None else ""
    return f"{100 * accuracy:.1f}{interval}"


def diff_lines(result: BoardDiff) -> list[list[str]]:
    """The table rows of a diff: change, entry, attack, preset, protocol, eps, old, new."""
    rows = [["added", name, "", "", "", "", "", ""] for name in result.added]
    rows += [["removed", name, "", "", "", "", "", ""] for name in result.removed]
    rows += [["re-measured", f"{o} -> {n}", "", "", "", "", "", ""] for o, n in result.remeasured]
    rows += [["moved", m.entry, m.attack, m.preset, m.protocol, f"{m.eps:.4g}", _pct(m.old), _pct(m.new)]
             for m in result.moved]
    return rows
