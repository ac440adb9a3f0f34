"""Run a grid file: plan it, then hand the plan to an executor (``local`` or ``ray``).

Both executors run the trainings first (surrogates included), then the evaluation, and write every
row to the one results store through the driver; a rerun of the same grid file resumes from the
store and recomputes no finished cell. What they do is reported as events and as a
:class:`GridOutcome`.
"""

from __future__ import annotations

import time
from pathlib import Path

from robustbench_med.events import Progress, emit
from robustbench_med.grid.options import (  # noqa: F401  (imported from here by callers)
    EXECUTORS,
    ExecutorError,
    GridOutcome,
    RunOptions,
)
from robustbench_med.grid.spec import GridSpec


def run_grid(spec: GridSpec, options: RunOptions, events: Progress | None = None) -> GridOutcome:
    """Plan ``spec`` against the store and the zoo of ``options.results_dir``, then execute it."""
    from robustbench_med.grid.plan import build_plan
    from robustbench_med.store import STORE_NAME, ResultStore

    started = time.perf_counter()
    store = ResultStore(Path(options.results_dir) / STORE_NAME)  # a bad store is refused before work
    plan = build_plan(spec, options.zoo)
    if options.executor == "ray":
        from robustbench_med.grid.ray_executor import run_ray

        outcome = run_ray(plan, options, store, events)
    else:
        from robustbench_med.grid.local import run_local

        outcome = run_local(plan, options, store, events)
    outcome.seconds = time.perf_counter() - started
    emit(events, "grid", outcome.summary())
    return outcome
