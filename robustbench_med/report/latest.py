"""Which entries the board shows: the newest measurement of each checkpoint on each test subset.

A checkpoint re-measured after a change to the result-deciding code gets a second entry (its file
name carries the code version), and both stay in ``entries/`` as the record. A reader of a
leaderboard, like RobustBench's, expects one line per model, not one per re-run, so the tables, the
HTML board, the sweeps and LaTeX show only the newest entry of each checkpoint; the long CSV keeps
every cell and marks the older ones ``superseded``. Newest means: made by this checkout's code first,
then the latest ``measured`` time; an older entry is left out only when the newer one holds all its
cells (attack, preset, protocol, eps). Entries that cannot be ordered (no ``measured``, as in files
imported from a CSV) are all kept, so nothing is hidden on a guess.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from robustbench_med.report.entries import ENTRY_KEY, entry_key
from robustbench_med.report.entry_schema import parse_time
from robustbench_med.versions import code_version


def identity(entry: dict[str, Any]) -> tuple:
    """What makes two entries measurements of the same thing: the entry's key but the code version,
    and where it came from and the options that built it."""
    key = (value for name, value in zip(ENTRY_KEY, entry_key(entry), strict=True) if name != "code_version")
    return (*key, entry.get("source", ""), json.dumps(entry.get("options", {}), sort_keys=True))


def _rank(entry: dict[str, Any], current: str) -> tuple[bool, datetime | None]:
    measured = entry.get("measured")
    return entry["code_version"] == current, parse_time(measured) if measured else None


def _cells(entry: dict[str, Any]) -> set[tuple]:
    return {(c["attack"], c["preset"], c["protocol"], round(c["eps"], 6)) for c in entry["cells"]}


def _newer(a: tuple[bool, datetime | None], b: tuple[bool, datetime | None]) -> bool | None:
    """True if rank ``a`` is newer than ``b``, False if older, None if they cannot be ordered."""
    if a[0] != b[0]:
        return a[0]
    if a[1] is None or b[1] is None or a[1] == b[1]:
        return None
    return a[1] > b[1]


def superseded(entries: list[dict[str, Any]], current: str | None = None) -> list[bool]:
    """For each entry, whether another entry of the same checkpoint and subset is known to be newer
    and holds every cell it holds (a partial re-measurement hides nothing)."""
    current = current or code_version()
    ranks = [_rank(e, current) for e in entries]
    cells = [_cells(e) for e in entries]
    groups: dict[tuple, list[int]] = {}
    for i, entry in enumerate(entries):
        groups.setdefault(identity(entry), []).append(i)
    flags = [False] * len(entries)
    for members in groups.values():
        for i in members:
            flags[i] = any(_newer(ranks[j], ranks[i]) and cells[i] <= cells[j] for j in members if j != i)
    return flags


def latest_entries(entries: list[dict[str, Any]], current: str | None = None,
                   old: list[bool] | None = None) -> list[dict[str, Any]]:
    """The entries the board shows (see the module docstring), in their given order; ``old``:
    :func:`superseded` of ``entries`` when the caller has it already."""
    old = superseded(entries, current) if old is None else old
    return [e for e, gone in zip(entries, old, strict=True) if not gone]
