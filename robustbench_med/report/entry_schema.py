"""The schema of a leaderboard entry file, checked on every read.

An entry file can come from anywhere (``publish``, a researcher's own ``evaluate(...)``, another
machine), so nothing is rendered from one that does not match: the first mismatch is refused as
``<file>: <field>: <reason>``. Written by hand to avoid a schema dependency; kept small on purpose.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from robustbench_med.errors import MedrobustError

ENTRY_SCHEMA = "medrobust-entry/1"
CHECK_STATUSES = ("pass", "fail", "inconclusive", "n/a")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class EntryError(MedrobustError):
    """An entry file (or a folder of them) that cannot be read as a leaderboard entry."""


class _Problem(Exception):
    """One field that breaks the schema: its path in the file and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field, self.reason = field, reason


# field -> (kind, required); kinds: str, int, number, bool, dict, list, fraction, sha, time, and "?"-prefixed
# kinds accept null.
TOP_FIELDS: dict[str, tuple[str, bool]] = {
    "schema": ("str", True), "model": ("str", True), "defense": ("str", True), "dataset": ("str", True),
    "task": ("str", True), "seed": ("int", True), "subset": ("str", True),
    "checkpoint_sha256": ("sha", True), "code_version": ("str", True), "image_size": ("?int", True),
    "training_budget": ("?dict", True), "randomized": ("bool", True), "cells": ("list", True),
    "checks": ("list", True), "claims": ("list", True), "source": ("str", False),
    "options": ("dict", False), "training_attack": ("str", False), "measured": ("time", False),
}
CELL_FIELDS: dict[str, tuple[str, bool]] = {
    "attack": ("str", True), "preset": ("str", True), "protocol": ("str", True), "eps": ("number", True),
    "n": ("int", True), "n_attacked": ("?int", True), "accuracy": ("fraction", True),
    "ci_low": ("?fraction", True), "ci_high": ("?fraction", True), "auc": ("?fraction", True),
    "settings": ("dict", True), "versions": ("dict", True), "device": ("?str", True),
    "wall_s": ("?number", True), "notes": ("?str", True), "flags_hex": ("?str", False),
}
CHECK_FIELDS: dict[str, tuple[str, bool]] = {
    "name": ("str", True), "protocol": ("str", True), "status": ("str", True), "detail": ("?str", True),
    "statistic": ("?number", True), "p_value": ("?fraction", True),
}
CLAIM_FIELDS: dict[str, tuple[str, bool]] = {
    "table": ("str", True), "metric": ("str", True), "value": ("number", True),
}


TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"  # what the store writes (time.strftime), offset +0000 or +00:00


def parse_time(text: str) -> datetime:
    """An entry's ``measured`` time; ``strptime`` rather than ``fromisoformat``, which reads an
    offset without a colon only from Python 3.11."""
    return datetime.strptime(text, TIME_FORMAT)


def _is_time(value: Any) -> bool:
    """An ISO 8601 time with an offset: entries from different machines are ordered by it."""
    try:
        return isinstance(value, str) and parse_time(value).tzinfo is not None
    except ValueError:
        return False


def _kind_problem(value: Any, kind: str) -> str | None:
    """Why ``value`` is not of ``kind``; None when it is."""
    if kind.startswith("?"):
        if value is None:
            return None
        kind = kind[1:]
    number = isinstance(value, int | float) and not isinstance(value, bool)
    ok = {"str": isinstance(value, str) and value != "",
          "int": isinstance(value, int) and not isinstance(value, bool),
          "number": number, "bool": isinstance(value, bool), "dict": isinstance(value, dict),
          "list": isinstance(value, list), "fraction": number and 0 <= value <= 1,
          "sha": isinstance(value, str) and bool(SHA256.match(value)), "time": _is_time(value)}[kind]
    if ok:
        return None
    wanted = {"str": "a non-empty string", "int": "an integer", "number": "a number", "bool": "true or false",
              "dict": "an object", "list": "a list", "fraction": "a number in [0, 1]",
              "sha": "64 lower-case hex digits (sha256)",
              "time": "an ISO 8601 time with its UTC offset (2026-12-02T07:30:00+0000)"}[kind]
    return f"must be {wanted}, got {value!r:.60}"


def _check_fields(doc: Any, fields: dict[str, tuple[str, bool]], where: str, *, strict: bool) -> None:
    if not isinstance(doc, dict):
        raise _Problem(where or "(top level)", f"must be an object, got {type(doc).__name__}")
    for name, (kind, required) in fields.items():
        if name not in doc:
            if required:
                raise _Problem(_join(where, name), "missing (required)")
            continue
        problem = _kind_problem(doc[name], kind)
        if problem:
            raise _Problem(_join(where, name), problem)
    extra = sorted(set(doc) - set(fields))
    if strict and extra:
        raise _Problem(_join(where, extra[0]), f"unknown field (allowed: {', '.join(fields)})")


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def validate_entry(doc: Any, where: str) -> None:
    """Raise :class:`EntryError` as ``<where>: <field>: <reason>`` for the first field of ``doc`` that
    breaks the schema."""
    try:
        _validate(doc)
    except _Problem as problem:
        raise EntryError(f"{where}: {problem.field}: {problem.reason}") from None


def _validate(doc: Any) -> None:
    _check_fields(doc, TOP_FIELDS, "", strict=True)
    if doc["schema"] != ENTRY_SCHEMA:
        raise _Problem("schema", f"must be {ENTRY_SCHEMA!r}, got {doc['schema']!r}")
    if doc["seed"] < 0:
        raise _Problem("seed", f"must be 0 or more, got {doc['seed']}")
    if not doc["cells"]:
        raise _Problem("cells", "must hold at least one cell")
    seen: set[tuple] = set()
    for i, cell in enumerate(doc["cells"]):
        at = f"cells[{i}]"
        _check_fields(cell, CELL_FIELDS, at, strict=True)
        _check_cell(cell, at)
        key = (cell["attack"], cell["preset"], cell["protocol"], round(cell["eps"], 6))
        if key in seen:
            raise _Problem(at, f"a second cell for attack {key[0]}, preset {key[1]}, protocol {key[2]}, "
                               f"eps {key[3]:g}")
        seen.add(key)
    if not any(cell["attack"] == "clean" for cell in doc["cells"]):
        raise _Problem("cells", "no clean cell (attack 'clean'): robust accuracy needs its clean base")
    for i, check in enumerate(doc["checks"]):
        at = f"checks[{i}]"
        _check_fields(check, CHECK_FIELDS, at, strict=True)
        if check["status"] not in CHECK_STATUSES:
            raise _Problem(f"{at}.status",
                           f"must be one of {', '.join(CHECK_STATUSES)}, got {check['status']!r}")
    for i, claim in enumerate(doc["claims"]):
        _check_fields(claim, CLAIM_FIELDS, f"claims[{i}]", strict=False)


def _check_cell(cell: dict[str, Any], at: str) -> None:
    if cell["n"] < 1:
        raise _Problem(f"{at}.n", f"must be at least 1, got {cell['n']}")
    if cell["eps"] < 0:
        raise _Problem(f"{at}.eps", f"must be 0 or more, got {cell['eps']}")
    if cell["n_attacked"] is not None and not 0 <= cell["n_attacked"] <= cell["n"]:
        raise _Problem(f"{at}.n_attacked", f"must be between 0 and n ({cell['n']}), got {cell['n_attacked']}")
    low, high, acc = cell["ci_low"], cell["ci_high"], cell["accuracy"]
    if low is not None and high is not None and not low - 1e-9 <= acc <= high + 1e-9:
        raise _Problem(f"{at}.accuracy", f"{acc} lies outside its interval [{low}, {high}]")
