"""Leaderboard tables from the store: a long CSV (every row) and a wide one (attacks as columns).

The wide table has one line per model x dataset x task x preset x protocol,
the clean accuracy beside every attack at the paper's eps (4/255), each cell
with its n and 95% bootstrap interval; other eps values are in the long CSV
and the sweep plots.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from robustbench_med.attacks.spec import PAPER_EPS
from robustbench_med.report.clean_table import clean_frame
from robustbench_med.store import ResultStore
from robustbench_med.versions import code_version

# Entry files keep eps to 6 significant digits (4/255 -> 0.0156863), so eps values are compared to
# this tolerance, far below any two eps a study would use.
EPS_TOLERANCE = 1e-6

GROUP = ["model", "defense", "dataset", "task", "seed", "subset", "checkpoint_sha", "code_version"]


def code_status(versions: pd.Series, current: str | None = None) -> pd.Series:
    """'current' for rows made by this checkout's result-deciding code, else 'older code'."""
    current = current or code_version()
    return versions.map(lambda v: "current" if v == current else "older code")


def long_frame(store: ResultStore) -> pd.DataFrame:
    df = store.frame()
    if df.empty:
        return df
    df = df.copy()
    df["defense"] = df["defense"].replace("", "none")
    df["code"] = code_status(df["code_version"])
    for col in ("accuracy", "ci_low", "ci_high"):
        df[f"{col}_pct"] = (100 * df[col]).round(2)
    return df


def _cell_text(row: pd.Series) -> str:
    return f"{row['accuracy_pct']:.1f} [{row['ci_low_pct']:.1f}, {row['ci_high_pct']:.1f}]"


def masking_verdicts(checks: pd.DataFrame) -> pd.DataFrame:
    """One line per evaluated model: the failed gradient-masking checks, or 'ok'."""
    if checks.empty:
        return pd.DataFrame(columns=[*GROUP, "masking"])
    checks = checks.assign(defense=checks["defense"].replace("", "none"))

    def verdict(group: pd.DataFrame) -> str:
        failed = group.loc[group["status"] == "fail", "check_name"].tolist()
        unsure = group.loc[group["status"] == "inconclusive", "check_name"].tolist()
        ran = int((group["status"] != "n/a").sum())
        undecided = f"; inconclusive at this n: {', '.join(unsure)}" if unsure else ""
        return f"FAIL: {', '.join(failed)}{undecided}" if failed else f"ok ({ran} checks{undecided})"

    rows = [(*key, verdict(group)) for key, group in checks.groupby(GROUP)]
    return pd.DataFrame(rows, columns=[*GROUP, "masking"])


def wide_frame(df: pd.DataFrame, eps: float = PAPER_EPS, with_ci: bool = False,
               checks: pd.DataFrame | None = None) -> pd.DataFrame:
    """Attacks as columns at one eps; the clean accuracy joined onto every preset/protocol line."""
    if df.empty:
        return df
    value = "cell" if with_ci else "accuracy_pct"
    df = df.assign(cell=df.apply(_cell_text, axis=1))
    clean = df[df["attack"] == "clean"][[*GROUP, "n", value, "auc"]].rename(
        columns={value: "clean", "auc": "clean_auc"})
    attacks = df[(df["attack"] != "clean") & ((df["eps"] - eps).abs() < EPS_TOLERANCE)]
    if attacks.empty:
        return clean.assign(preset="-", protocol="-")
    order = list(dict.fromkeys(attacks["attack"]))
    # Attacks with no step (AutoAttack, Square, transfer) run once, whatever the preset: they are
    # shown on every preset line of their model rather than on the 'standard' line only.
    stepless = attacks["settings"].fillna("{}").map(lambda s: json.loads(s).get("alpha") is None)
    stepped, free = attacks[~stepless], attacks[stepless]
    index = [*GROUP, "protocol"]
    wide = stepped.pivot_table(index=[*index, "preset"], columns="attack", values=value,
                               aggfunc="last").reset_index() if not stepped.empty else None
    if not free.empty:
        free_wide = free.pivot_table(index=index, columns="attack", values=value,
                                     aggfunc="last").reset_index()
        wide = free_wide.assign(preset="standard") if wide is None else wide.merge(
            free_wide, on=index, how="outer")
        wide["preset"] = wide["preset"].fillna("standard")
    wide = wide.reindex(columns=[*index, "preset", *order])
    wide.columns.name = None
    merged = clean.merge(wide, on=GROUP, how="right")
    if checks is not None:
        merged = merged.merge(masking_verdicts(checks), on=GROUP, how="left")
        merged["masking"] = merged["masking"].fillna("not run")
    merged["code"] = code_status(merged["code_version"])
    front = ["model", "defense", "dataset", "task", "preset", "protocol", "n", "clean",
             "clean_auc"] + (["masking"] if checks is not None else []) + ["code", "code_version"]
    rest = [c for c in merged.columns if c not in front]
    return merged[front + rest].sort_values(["dataset", "task", "model", "defense", "preset",
                                            "protocol"])


def write_leaderboard(store: ResultStore, out_dir: str | Path, stem: str = "leaderboard") -> list[Path]:
    """Write ``<stem>.csv`` (long), ``<stem>_wide.csv``, ``<stem>.md``, ``<stem>_checks.csv`` and
    ``<stem>_clean.md`` (clean ACC/AUC with the training budget and the paper's claims)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = long_frame(store)
    checks = store.checks_frame()
    paths = [out / f"{stem}.csv", out / f"{stem}_wide.csv", out / f"{stem}.md",
             out / f"{stem}_checks.csv", out / f"{stem}_clean.md"]
    df.to_csv(paths[0], index=False)
    wide = wide_frame(df, checks=checks)
    wide.to_csv(paths[1], index=False)
    checks.to_csv(paths[3], index=False)
    table = wide_frame(df, with_ci=True, checks=checks)
    if not table.empty:
        table = table.assign(checkpoint_sha=table["checkpoint_sha"].str[:12])
    table = table.fillna("")
    paths[2].write_text(table.to_markdown(index=False) + "\n" if not table.empty else "(no results)\n")
    clean = clean_frame(df)
    paths[4].write_text(clean.to_markdown(index=False) + "\n" if not clean.empty else "(no results)\n")
    return paths
