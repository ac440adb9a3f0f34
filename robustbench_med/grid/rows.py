"""Result rows as plain dicts, carried between a worker's scratch store and the driver's store.

A row travels as the store returns it (``ResultStore.get``: the key columns, the values, the flags
blob and the settings JSON) and is written again through :meth:`ResultStore.put`, so the driver's
store applies its own guarantees (one transaction, INSERT OR IGNORE on the key) to every row.
"""

from __future__ import annotations

import json
import math
from typing import Any

from robustbench_med.store import KEY_COLUMNS, VALUE_COLUMNS, ResultKey, ResultStore, unpack_flags

_CARRIED = ("flags", "settings", "versions", "created")  # re-encoded (or re-stamped) by put()


def key_of(row: dict[str, Any]) -> ResultKey:
    """The key of a stored row (or of a frame row, whatever its number types)."""
    values = {c: row[c] for c in KEY_COLUMNS}
    values["eps"], values["seed"] = float(values["eps"]), int(values["seed"])
    return ResultKey(**{c: v if c in ("eps", "seed") else str(v) for c, v in values.items()})


def put_row(store: ResultStore, row: dict[str, Any]) -> bool:
    """Write a row read from another store; False when ``store`` already held its key."""
    flags = unpack_flags(row["flags"], row["n"]) if row.get("flags") is not None else None
    settings = json.loads(row["settings"]) if row.get("settings") else None
    versions = json.loads(row["versions"]) if row.get("versions") else None
    values = {c: row.get(c) for c in VALUE_COLUMNS if c not in _CARRIED}
    return store.put(key_of(row), flags=flags, settings=settings, versions=versions, **values)


def rows_where(store: ResultStore, **filters: Any) -> list[dict[str, Any]]:
    """Every row matching ``filters`` as stored (flags included), in the store's order."""
    frame = store.frame(**filters)
    rows = []
    for record in frame.to_dict("records"):
        row = store.get(key_of(record))
        if row is not None:
            rows.append(row)
    return rows


def check_rows(store: ResultStore) -> list[dict[str, Any]]:
    """Every check verdict of ``store`` as plain values (no NaN: missing evidence is None)."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}
            for record in store.checks_frame().to_dict("records")]


def put_check_row(store: ResultStore, check: dict[str, Any]) -> None:
    """Write a check verdict read by :func:`check_rows` (from another store)."""
    def number(value: Any) -> float | None:
        return None if value is None else float(value)

    store.put_check({k: (int(v) if k == "seed" else v) for k, v in check.items()}, check["check_name"],
                    check["status"], check["detail"], statistic=number(check.get("statistic")),
                    p_value=number(check.get("p_value")))
