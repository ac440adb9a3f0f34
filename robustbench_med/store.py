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
import re
import sqlite3
import time
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robustbench_med.errors import StoreError

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
SQLITE_MAGIC = b"SQLite format 3\x00"
# What a store must hold to be read and written; extra (newer) columns are fine.
REQUIRED_COLUMNS = {
    "results": ("id", *KEY_COLUMNS, *VALUE_COLUMNS),
    "checks": ("id", *CHECK_KEY, "status", "detail", "created"),
}
# statistic and p_value came later: older stores get them by ALTER TABLE on the next write
CHECK_VALUES = {"status": "TEXT NOT NULL", "detail": "TEXT", "created": "TEXT", "statistic": "REAL",
                "p_value": "REAL"}
CHECK_EVIDENCE = ("statistic", "p_value")
# Renamed protocols, old name -> new: "paper" was also a preset and a recipe, so a row read
# "preset=paper, protocol=paper"; the one-draw protocol is "single-draw" since then.
PROTOCOL_RENAMES = {"paper": "single-draw"}


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


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be (or become) a folder: a file at it or above it; None when it can."""
    for part in (folder, *folder.parents):
        if part.exists():
            return None if part.is_dir() else f"{part} is a file, not a folder"
    return None


def check_store_file(path: Path) -> None:
    """Refuse, reading only, a store path that is not a medrobust store (or cannot become one)."""
    problem = folder_problem(path.parent)
    if problem is None and path.is_dir():
        problem = "it is a folder, not a file"
    elif problem is None and path.is_file():
        problem = _store_file_problem(path)
    if problem is not None:
        raise StoreError(f"cannot use the results store {path}: {problem}; it was left as it is "
                         "(choose another results folder)")


def _store_file_problem(path: Path) -> str | None:
    """What makes an existing file unusable as a store: not SQLite, another program's, other columns."""
    with path.open("rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    if head and head != SQLITE_MAGIC:
        return "it is not a SQLite file"
    try:  # a plain connection that only reads: no journal-mode change, and, unlike mode=ro, it removes
        # the -wal and -shm files of a WAL store again when it closes
        with closing(sqlite3.connect(path, timeout=60)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                      if not row[0].startswith("sqlite_")}
            columns = {t: [row[1] for row in db.execute(f"PRAGMA table_info({t})")]
                       for t in tables & set(REQUIRED_COLUMNS)}
    except sqlite3.DatabaseError as exc:
        return f"SQLite cannot read it ({exc})"
    if tables and "results" not in tables:
        return f"it is another program's SQLite file (tables: {', '.join(sorted(tables))})"
    for table, present in columns.items():
        if any(c not in present for c in REQUIRED_COLUMNS[table]):
            return (f"its {table} table has another schema (columns {_first(present)}; a medrobust "
                    f"store's are {_first(REQUIRED_COLUMNS[table])})")
    return None


def _first(names: list[str] | tuple[str, ...], n: int = 4) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


class ResultStore:
    """The SQLite file holding every result row and every gradient-masking check."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        check_store_file(self.path)  # read-only: a file that is not our store is never written
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the results folder {self.path.parent}: "
                             f"{exc.strerror or exc}") from None
        with closing(self._connect()) as db, db:
            key_sql = ", ".join(f"{c} {'REAL' if c == 'eps' else 'INTEGER' if c == 'seed' else 'TEXT'}"
                                f" NOT NULL" for c in KEY_COLUMNS)
            value_sql = ", ".join(f"{c} {t}" for c, t in VALUE_COLUMNS.items())
            db.execute(f"CREATE TABLE IF NOT EXISTS results (id INTEGER PRIMARY KEY, {key_sql}, "
                       f"{value_sql}, UNIQUE ({', '.join(KEY_COLUMNS)}))")
            check_sql = ", ".join(f"{c} {'INTEGER' if c == 'seed' else 'TEXT'} NOT NULL"
                                  for c in CHECK_KEY)
            check_values = ", ".join(f"{c} {t}" for c, t in CHECK_VALUES.items())
            db.execute(f"CREATE TABLE IF NOT EXISTS checks (id INTEGER PRIMARY KEY, {check_sql}, "
                       f"{check_values}, UNIQUE ({', '.join(CHECK_KEY)}))")
            _rename_protocols(db)

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, timeout=60)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        except sqlite3.DatabaseError as exc:  # unreadable, locked past the timeout, or not SQLite
            raise StoreError(f"cannot open the results store {self.path}: {exc}") from None
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

    def frame(self, *, with_flags: bool = False, **filters: Any) -> pd.DataFrame:
        """All rows as a DataFrame, optionally filtered by column; the bit-packed per-point flag blobs
        only ``with_flags`` (the masking checks' paired tests need them, tables do not)."""
        where = " AND ".join(f"{c} = ?" for c in filters) or "1"
        columns = [c for c in ("id", *KEY_COLUMNS, *VALUE_COLUMNS) if with_flags or c != "flags"]
        with closing(self._connect()) as db:
            return pd.read_sql_query(f"SELECT {', '.join(columns)} FROM results WHERE {where} "
                                     "ORDER BY id", db, params=tuple(filters.values()))

    def count(self) -> int:
        with closing(self._connect()) as db:
            return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    # -- gradient-masking checks -------------------------------------------
    def put_check(self, key: dict[str, Any], name: str, status: str, detail: str, *,
                  statistic: float | None = None, p_value: float | None = None) -> None:
        """Record (or refresh) one check's verdict for one model cell, with its test's evidence."""
        row = {**{c: key[c] for c in CHECK_KEY if c != "check_name"}, "check_name": name,
               "status": status, "detail": detail, "statistic": statistic, "p_value": p_value,
               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with closing(self._connect()) as db, db:
            _add_check_evidence(db)
            db.execute(f"INSERT OR REPLACE INTO checks ({columns}) VALUES ({marks})",
                       tuple(row.values()))

    def checks_frame(self, **filters: Any) -> pd.DataFrame:
        """Every check row; a store written before the evidence columns reads with them empty."""
        where = " AND ".join(f"{c} = ?" for c in filters) or "1"
        with closing(self._connect()) as db:
            frame = pd.read_sql_query(f"SELECT * FROM checks WHERE {where} ORDER BY id", db,
                                      params=tuple(filters.values()))
        for column in CHECK_EVIDENCE:
            if column not in frame:
                frame[column] = np.nan
        return frame


def current_protocol(name: str) -> str:
    """The protocol's name today (an entry file or CSV written before a rename says the old one)."""
    return PROTOCOL_RENAMES.get(name, name)


def current_detail(text: str | None) -> str | None:
    """A masking check's detail with renamed protocols written as today's checks write them."""
    if not isinstance(text, str):
        return text
    for old, new in PROTOCOL_RENAMES.items():
        text = text.replace(f"): {old} protocol ", f"): {new} protocol ")
        text = re.sub(rf"\(([\w-]+), {old}\) ", rf"(\1, {new}) ", text)
        text = text.replace(f"both the {old} and the EOT", f"both the {new} and the EOT")
    return text


def _rename_protocols(db: sqlite3.Connection) -> None:
    """Migrate a store written before a protocol rename, once, when it is opened.

    Migrate on open rather than map on read: the protocol is part of the UNIQUE key and of every
    lookup (``get`` while resuming, ``frame(protocol=...)``, the timing estimates that match on it),
    so a mapping on read would have to be repeated in each query and a file would say two names
    for one protocol. The rename touches only the name -- no number, no code version -- and runs
    in the caller's transaction (results and checks together, or neither); a store that holds no
    old name is only read, so the many workers that open one store write nothing.
    """
    for old, new in PROTOCOL_RENAMES.items():
        rows = [t for t in ("results", "checks")
                if db.execute(f"SELECT 1 FROM {t} WHERE protocol = ? LIMIT 1", (old,)).fetchone()]
        found = db.execute("SELECT id, detail FROM checks WHERE detail LIKE ?", (f"%{old}%",)).fetchall()
        details = [(current_detail(d), i) for i, d in found if current_detail(d) != d]
        if not rows and not details:
            continue
        try:
            for table in rows:
                db.execute(f"UPDATE {table} SET protocol = ? WHERE protocol = ?", (new, old))
            db.executemany("UPDATE checks SET detail = ? WHERE id = ?", details)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"cannot rename protocol {old!r} to {new!r} in the store: it already holds "
                             f"the same cell under both names ({exc})") from None


def _add_check_evidence(db: sqlite3.Connection) -> None:
    """Add the evidence columns to a checks table made before them (old stores stay readable)."""
    present = {row[1] for row in db.execute("PRAGMA table_info(checks)")}
    for column in CHECK_EVIDENCE:
        if column not in present:
            db.execute(f"ALTER TABLE checks ADD COLUMN {column} {CHECK_VALUES[column]}")
