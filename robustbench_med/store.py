"""The results store: one SQLite row per finished grid cell.

A row is written in one transaction only once its cell is complete, under a
UNIQUE key (model, defense, dataset, task, attack, preset, eps, protocol, seed,
subset, checkpoint hash, code version). So a finished cell is never computed
twice, a killed run loses at most the cell it was computing, and a restarted
run can never duplicate a row. Per-point robust flags are kept (bit-packed)
so that any number can be recomputed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_RESULTS_DIR = Path("medrobust-results")
STORE_NAME = "results.sqlite"

KEY_COLUMNS = ("model", "defense", "dataset", "task", "attack", "preset", "eps", "protocol",
               "seed", "subset", "checkpoint_sha", "code_version")
VALUE_COLUMNS = {
    "n": "INTEGER NOT NULL", "n_attacked": "INTEGER", "accuracy": "REAL NOT NULL",
    "ci_low": "REAL", "ci_high": "REAL", "auc": "REAL", "image_size": "INTEGER",
    "device": "TEXT", "wall_s": "REAL", "settings": "TEXT", "versions": "TEXT", "notes": "TEXT",
    "flags": "BLOB", "created": "TEXT",
}
CHECK_KEY = ("model", "defense", "dataset", "task", "protocol", "seed", "subset", "checkpoint_sha",
             "code_version", "check_name")


@dataclass(frozen=True)
class ResultKey:
    """Identifies one grid cell. ``defense`` is '' for none; eps is rounded to 1e-10."""

    model: str
    defense: str
    dataset: str
    task: str
    attack: str
    preset: str
    eps: float
    protocol: str
    seed: int
    subset: str
    checkpoint_sha: str
    code_version: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps", round(float(self.eps), 10))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def pack_flags(flags: np.ndarray) -> bytes:
    return np.packbits(np.asarray(flags, dtype=bool)).tobytes()


def unpack_flags(blob: bytes, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(blob, dtype=np.uint8))[:n].astype(bool)


class ResultStore:
    """The SQLite file holding every result row and every gradient-masking check."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            key_sql = ", ".join(f"{c} {'REAL' if c == 'eps' else 'INTEGER' if c == 'seed' else 'TEXT'}"
                                f" NOT NULL" for c in KEY_COLUMNS)
            value_sql = ", ".join(f"{c} {t}" for c, t in VALUE_COLUMNS.items())
            db.execute(f"CREATE TABLE IF NOT EXISTS results (id INTEGER PRIMARY KEY, {key_sql}, "
                       f"{value_sql}, UNIQUE ({', '.join(KEY_COLUMNS)}))")
            check_sql = ", ".join(f"{c} {'INTEGER' if c == 'seed' else 'TEXT'} NOT NULL"
                                  for c in CHECK_KEY)
            db.execute(f"CREATE TABLE IF NOT EXISTS checks (id INTEGER PRIMARY KEY, {check_sql}, "
                       f"status TEXT NOT NULL, detail TEXT, created TEXT, "
                       f"UNIQUE ({', '.join(CHECK_KEY)}))")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    # -- results ------------------------------------------------------------
    def get(self, key: ResultKey) -> dict[str, Any] | None:
        where = " AND ".join(f"{c} = ?" for c in KEY_COLUMNS)
        with closing(self._connect()) as db:
            db.row_factory = sqlite3.Row
            row = db.execute(f"SELECT * FROM results WHERE {where}",
                             tuple(key.as_dict().values())).fetchone()
        return dict(row) if row else None

    def has(self, key: ResultKey) -> bool:
        return self.get(key) is not None

    def put(self, key: ResultKey, *, flags: np.ndarray | None = None, settings: dict | None = None,
            versions: dict | None = None, **values: Any) -> bool:
        """Insert a finished cell; False when the key was already there (nothing changes)."""
        unknown = set(values) - set(VALUE_COLUMNS)
        if unknown:
            raise ValueError(f"unknown result columns: {sorted(unknown)}")
        row = {**key.as_dict(), **values, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        if flags is not None:
            row["flags"] = pack_flags(flags)
        if settings is not None:
            row["settings"] = json.dumps(settings, sort_keys=True, default=str)
        if versions is not None:
            row["versions"] = json.dumps(versions, sort_keys=True)
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with closing(self._connect()) as db, db:
            cursor = db.execute(f"INSERT OR IGNORE INTO results ({columns}) VALUES ({marks})",
                                tuple(row.values()))
            return cursor.rowcount == 1

    def frame(self, **filters: Any) -> pd.DataFrame:
        """All rows (without the flag blobs) as a DataFrame, optionally filtered by column."""
        where = " AND ".join(f"{c} = ?" for c in filters) or "1"
        columns = [c for c in ("id", *KEY_COLUMNS, *VALUE_COLUMNS) if c != "flags"]
        with closing(self._connect()) as db:
            return pd.read_sql_query(f"SELECT {', '.join(columns)} FROM results WHERE {where} "
                                     "ORDER BY id", db, params=tuple(filters.values()))

    def count(self) -> int:
        with closing(self._connect()) as db:
            return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    # -- gradient-masking checks -------------------------------------------
    def put_check(self, key: dict[str, Any], name: str, status: str, detail: str) -> None:
        """Record (or refresh) one check's verdict for one model cell."""
        row = {**{c: key[c] for c in CHECK_KEY if c != "check_name"}, "check_name": name,
               "status": status, "detail": detail, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with closing(self._connect()) as db, db:
            db.execute(f"INSERT OR REPLACE INTO checks ({columns}) VALUES ({marks})",
                       tuple(row.values()))

    def checks_frame(self, **filters: Any) -> pd.DataFrame:
        where = " AND ".join(f"{c} = ?" for c in filters) or "1"
        with closing(self._connect()) as db:
            return pd.read_sql_query(f"SELECT * FROM checks WHERE {where} ORDER BY id", db,
                                     params=tuple(filters.values()))
