"""``medrobust grid``: plan and run a grid file (see :mod:`robustbench_med.grid`).

Registered on the main app by ``cli/app.py``; thin like it: parse, call the library, print. Every
user error ends as one line on stderr and exit code 2 (``cli.app.main``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from robustbench_med.cli.common import check_folder, out, render_event

grid_app = typer.Typer(no_args_is_help=True, help="Plan and run a grid file (TOML): trainings, then every "
                       "cell, locally or on Ray.")

GridFile = Annotated[Path, typer.Argument(help="The grid file (TOML), e.g. leaderboards/grids/small.toml.")]
ResultsDir = Annotated[Path, typer.Option(help="Folder of the results store and the zoo (on a cluster: a "
                                          "shared filesystem for the zoo; only the driver opens the store).")]
DataRoot = Annotated[Path | None, typer.Option(help="Data root (then $MEDROBUST_DATA, then ~/.cache/medrobust/data).")]


@grid_app.command("plan")
def plan(grid_file: GridFile, results_dir: ResultsDir = Path("medrobust-results")) -> None:
    """Print the grid's dependency graph: trainings, then units by checkpoint, with what the store
    holds and the estimated cost (from stored timings of similar cells; else 'unknown')."""
    from robustbench_med.grid.describe import describe
    from robustbench_med.grid.plan import build_plan
    from robustbench_med.grid.spec import load_spec
    from robustbench_med.grid.status import store_frames
    from robustbench_med.store import STORE_NAME, ResultStore
    from robustbench_med.versions import code_version

    spec = load_spec(grid_file)
    check_folder("--results-dir", results_dir)
    path = results_dir / STORE_NAME
    store = ResultStore(path) if path.exists() else None  # planning never creates a store
    rows, checks = store_frames(store)
    for line in describe(build_plan(spec, results_dir / "zoo"), rows, checks, code_version()):
        out.print(line, markup=False, highlight=False, soft_wrap=True)


@grid_app.command("run")
def run(grid_file: GridFile,
        executor: Annotated[str, typer.Option(help="local (in this process, as medrobust run) or ray.")] = "local",
        address: Annotated[str | None, typer.Option(help="Ray cluster to join: auto, host:port or ray://host:port (default: start a local one).")] = None,
        workers: Annotated[int, typer.Option(help="Tasks at once (ray); the local executor runs one.")] = 1,
        cpus_per_task: Annotated[int, typer.Option(help="CPUs (torch threads) per task.")] = 1,
        gpus_per_task: Annotated[float, typer.Option(help="GPUs per task (ray).")] = 0.0,
        max_retries: Annotated[int, typer.Option(help="Retries of a task whose worker dies (ray).")] = 3,
        results_dir: ResultsDir = Path("medrobust-results"), data_root: DataRoot = None) -> None:
    """Run the grid: trainings first, then every cell; finished cells are never recomputed, so a
    rerun resumes. Prints the plan first, then each cell as it is stored."""
    from robustbench_med.grid.options import RunOptions
    from robustbench_med.grid.run import run_grid
    from robustbench_med.grid.spec import load_spec
    from robustbench_med.report.leaderboard import write_leaderboard
    from robustbench_med.store import STORE_NAME, ResultStore

    spec = load_spec(grid_file)
    options = RunOptions(results_dir=results_dir, executor=executor, data_root=data_root, address=address,
                         workers=workers, cpus_per_task=cpus_per_task, gpus_per_task=gpus_per_task,
                         max_retries=max_retries)
    check_folder("--results-dir", results_dir, inner="zoo")
    plan(grid_file, results_dir)
    run_grid(spec, options, render_event)
    paths = write_leaderboard(ResultStore(results_dir / STORE_NAME), results_dir)
    out.print(f"store {results_dir / STORE_NAME}\nleaderboard {paths[1]}")
