"""``medrobust leaderboard``: show a store's board; publish, render, import and diff entry files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from typer.exceptions import Exit

from robustbench_med.cli.common import DEFAULT_RESULTS, ResultsDir, check_folder, open_store, out
from robustbench_med.errors import BadInputError, MedrobustError

leaderboard_app = typer.Typer(no_args_is_help=True, help="Show or publish leaderboard tables.")


@leaderboard_app.command("show")
def leaderboard_show(results_dir: ResultsDir = DEFAULT_RESULTS) -> None:
    """Print the leaderboard of a results store."""
    from robustbench_med.report.leaderboard import long_frame, wide_frame

    store = open_store(results_dir)
    frame = wide_frame(long_frame(store), checks=store.checks_frame())
    if frame.empty:
        raise MedrobustError(f"the store in {results_dir} has no results yet (run medrobust run first)")
    table = Table(title=f"leaderboard ({results_dir}), accuracy % at eps 4/255")
    for col in frame.columns:
        table.add_column(str(col))
    for _, row in frame.iterrows():
        table.add_row(*(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row))
    out.print(table)


@leaderboard_app.command("publish")
def leaderboard_publish(results_dir: ResultsDir = DEFAULT_RESULTS,
                        out_dir: Annotated[Path, typer.Option("--out", help="Where the entries and tables go.")] = Path("leaderboards"),
                        stem: Annotated[str, typer.Option(help="File name stem of the tables.")] = "leaderboard",
                        source: Annotated[str | None, typer.Option(help="Where a store from elsewhere came from (another machine, a lab): marked on the board.")] = None) -> None:
    """Write one entry file per evaluated model (<out>/entries/<dataset>/*.json), then render every other file from the entries."""
    from robustbench_med.report.entries import entries_from_store, with_checkpoint_facts, write_entries
    from robustbench_med.report.render import render

    check_folder("--out", out_dir)
    store = open_store(results_dir)
    if store.count() == 0:
        raise MedrobustError(f"the store in {results_dir} has no results yet (run medrobust run first)")
    if source is not None and not source.strip():
        raise BadInputError("--source must name where the results came from (e.g. 'lab X, A100')")
    entries = write_entries(with_checkpoint_facts(entries_from_store(store, source), results_dir / "zoo"),
                            out_dir / "entries")
    out.print(f"wrote {len(entries)} entries under {out_dir / 'entries'}")
    for path in render(out_dir / "entries", out_dir, stem=stem):
        out.print(f"wrote {path}")


EntriesDir = Annotated[Path, typer.Argument(help="Folder of entry files (<folder>/<dataset>/*.json), e.g. leaderboards/entries.")]


@leaderboard_app.command("render")
def leaderboard_render(entries_dir: EntriesDir,
                       out_dir: Annotated[Path, typer.Option("--out", help="Where the rendered files go.")],
                       fmt: Annotated[str, typer.Option("--format", help="site (CSV, Markdown, SVG sweeps, HTML), latex (booktabs tables) or all.")] = "site",
                       stem: Annotated[str, typer.Option(help="File name stem of the tables.")] = "leaderboard",
                       screenshot: Annotated[bool, typer.Option("--screenshot", help="Also save <out>/board.png of index.html (headless Chromium).")] = False) -> None:
    """Rebuild the published files from entry files alone (no store): byte for byte the same for the same entries."""
    from robustbench_med.report.render import FORMATS, render

    if fmt not in FORMATS:
        raise BadInputError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    check_folder("--out", out_dir)
    for path in render(entries_dir, out_dir, fmt=fmt, stem=stem, screenshot=screenshot):
        out.print(f"wrote {path}")


@leaderboard_app.command("import-csv")
def leaderboard_import_csv(csv: Annotated[Path, typer.Argument(help="A published long leaderboard CSV (leaderboard.csv).")],
                           checks: Annotated[Path | None, typer.Option(help="Its checks CSV (default: leaderboard_checks.csv beside it, when there).")] = None,
                           out_dir: Annotated[Path, typer.Option("--out", help="Folder of entry files to write.")] = Path("leaderboards/entries")) -> None:
    """Turn a leaderboard CSV published before entry files existed into entry files (no flags, old check evidence)."""
    from robustbench_med.report.csv_import import entries_from_csv
    from robustbench_med.report.entries import write_entries

    if not csv.is_file():
        raise BadInputError(f"no CSV file at {csv}")
    beside = csv.with_name(csv.stem + "_checks.csv")
    checks = checks if checks is not None else beside if beside.is_file() else None
    if checks is not None and not checks.is_file():
        raise BadInputError(f"--checks {checks}: no such file")
    check_folder("--out", out_dir)
    paths = write_entries(entries_from_csv(csv, checks), out_dir)
    out.print(f"wrote {len(paths)} entries under {out_dir}" + (f" (checks from {checks})" if checks else " (no checks)"))


BoardPath = Annotated[Path, typer.Argument(help="A folder of entry files, a results folder or a results.sqlite.")]


@leaderboard_app.command("diff")
def leaderboard_diff(old: BoardPath, new: BoardPath,
                     as_json: Annotated[bool, typer.Option("--json", help="Print the diff as JSON.")] = False) -> None:
    """Entries added and removed, and cells whose accuracy moved beyond both 95% intervals; exit 1 when a cell moved."""
    from robustbench_med.report.diff import diff_boards, diff_lines, load_board

    result = diff_boards(load_board(old), load_board(new))
    if as_json:
        out.print_json(json.dumps(result.as_json(), sort_keys=True))
    else:
        table = Table(title=f"leaderboard diff {old} -> {new}")
        for col in ("change", "entry", "attack", "preset", "protocol", "eps", "old %", "new %"):
            table.add_column(col)
        for line in diff_lines(result):
            table.add_row(*line)
        if table.rows:
            out.print(table)
        out.print(f"{len(result.moved)} cells moved beyond both intervals ({result.cells_compared} compared); "
                  f"{len(result.added)} entries added, {len(result.removed)} removed, "
                  f"{len(result.remeasured)} re-measured")
    if result.moved:
        raise Exit(code=1)
