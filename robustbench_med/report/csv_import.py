"""Entries from a published long CSV (``leaderboard.csv`` and ``leaderboard_checks.csv``).

The boards published before entries existed are CSV exports of a store that is gone; this turns
them into entry files so they render, diff and validate like any other. The CSV has no per-point
flags and, from older stores, no check evidence (statistic, p-value): those fields stay empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from robustbench_med.report.entries import entries_from_frames
from robustbench_med.report.entry_schema import EntryError

RESULT_COLUMNS = ("model", "defense", "dataset", "task", "attack", "preset", "eps", "protocol", "seed",
                  "subset", "checkpoint_sha", "code_version", "n", "accuracy")
NUMERIC = ("ci_low", "ci_high", "auc", "wall_s", "n_attacked", "image_size", "statistic", "p_value")
CHECK_COLUMNS = ("model", "defense", "dataset", "task", "protocol", "seed", "subset", "checkpoint_sha",
                 "code_version", "check_name", "status")


def _read(path: Path, required: tuple[str, ...], text: tuple[str, ...]) -> pd.DataFrame:
    try:  # 'n/a' is a check status and '' a missing defense, not NaN
        frame = pd.read_csv(path, keep_default_na=False, na_values={c: [""] for c in NUMERIC},
                            dtype={c: str for c in text})
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise EntryError(f"{path}: cannot read it as CSV ({exc})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise EntryError(f"{path}: not a medrobust leaderboard CSV (missing columns: {', '.join(missing)})")
    return frame


def entries_from_csv(results_csv: str | Path, checks_csv: str | Path | None = None) -> list[dict[str, Any]]:
    """Entries from the long CSV and, when given, the checks CSV beside it."""
    text = ("model", "defense", "dataset", "task", "attack", "preset", "protocol", "subset", "checkpoint_sha",
            "code_version", "settings", "versions", "notes", "device", "check_name", "status", "detail")
    results = _read(Path(results_csv), RESULT_COLUMNS, text)
    checks = _read(Path(checks_csv), CHECK_COLUMNS, text) if checks_csv else pd.DataFrame()
    for frame in (results, checks):
        for column in ("notes", "detail", "device", "settings", "versions"):
            if column in frame:
                frame[column] = frame[column].replace("", None)
    return entries_from_frames(results, checks)
