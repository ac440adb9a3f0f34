"""Render every published file from ``entries/`` alone: the CSVs, the Markdown, the sweep plots, the
HTML board and (on request) LaTeX tables. No store is read, nothing depends on the clock, so the
same entries give the same bytes on any machine with the same library versions.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from robustbench_med.report.board import board_rows
from robustbench_med.report.clean_table import clean_frame
from robustbench_med.report.entries import read_entries
from robustbench_med.report.frames import checks_frame, results_frame
from robustbench_med.report.html import write_site
from robustbench_med.report.latest import latest_entries, superseded
from robustbench_med.report.leaderboard import wide_frame
from robustbench_med.report.markdown import render_markdown
from robustbench_med.report.plots import plot_all_sweeps, sweep_groups, sweep_stem

FORMATS = ("site", "latex", "all")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def render_site(entries: list[dict[str, Any]], out: Path, stem: str = "leaderboard") -> list[Path]:
    """The CSV tables, the Markdown board, the SVG sweeps and the HTML pages. The long CSV and the checks
    CSV keep every cell and check (older measurements of a checkpoint marked ``superseded``); the rest
    shows the newest."""
    out.mkdir(parents=True, exist_ok=True)
    old = superseded(entries)
    everything, all_checks = results_frame(entries, old), checks_frame(entries, old)
    shown = latest_entries(entries, old=old)
    df, checks = everything[~everything["superseded"]], all_checks[~all_checks["superseded"]]
    paths = []
    paths.append(out / f"{stem}.csv")
    everything.to_csv(paths[-1], index=False)
    paths.append(out / f"{stem}_wide.csv")
    wide_frame(df, checks=checks).to_csv(paths[-1], index=False)
    paths.append(out / f"{stem}_checks.csv")
    all_checks.to_csv(paths[-1], index=False)
    clean = clean_frame(df)
    paths.append(_write(out / f"{stem}_clean.md",
                        clean.to_markdown(index=False) + "\n" if not clean.empty else "(no results)\n"))
    rows = board_rows(shown)
    hidden = Counter(e["dataset"] for e in entries) - Counter(e["dataset"] for e in shown)
    paths.append(_write(out / f"{stem}.md", render_markdown(rows, hidden.total())))
    plots = plot_all_sweeps(df, out / "plots", formats=("svg",))
    by_dataset: dict[str, list[str]] = {}
    for task, attack, preset in sweep_groups(df):
        dataset = df.loc[df["task"] == task, "dataset"].iloc[0]
        by_dataset.setdefault(dataset, []).append(f"plots/{sweep_stem(task, attack, preset)}.svg")
    paths += plots
    paths += write_site(rows, out, by_dataset, dict(hidden))
    return paths


def render(entries_dir: str | Path, out_dir: str | Path, fmt: str = "site", stem: str = "leaderboard",
           screenshot: bool = False) -> list[Path]:
    """Read and validate every entry under ``entries_dir``, write the chosen formats under ``out_dir``."""
    entries = read_entries(entries_dir)
    out = Path(out_dir)
    paths: list[Path] = []
    if fmt in ("site", "all"):
        paths += render_site(entries, out, stem)
    if fmt in ("latex", "all"):
        from robustbench_med.report.latex import write_latex

        paths += write_latex(board_rows(latest_entries(entries)), out / "latex")
    if screenshot:
        from robustbench_med.report.screenshot import take_screenshot

        index = out / "index.html"
        if not index.is_file():
            paths += render_site(entries, out, stem)
        paths.append(take_screenshot(index, out / "board.png"))
    return paths
