"""The local executor: in this process, one thing at a time, exactly as ``medrobust run`` works.

Trainings run first (each with :func:`~robustbench_med.grid.unit.run_training`, the step
``medrobust run`` takes when the zoo lacks a model); then each checkpoint's whole grid runs
through :func:`robustbench_med.pipeline.benchmark` with the run configuration ``medrobust run``
builds from the same settings, writing straight into the results store.
"""

from __future__ import annotations

from typing import Any

from robustbench_med.events import Progress, emit
from robustbench_med.grid.plan import Plan
from robustbench_med.grid.run import GridOutcome, RunOptions
from robustbench_med.grid.stages import said_trained, statuses, stored_count, trainings_to_run
from robustbench_med.grid.unit import run_training


def run_config(plan: Plan, request: Any, options: RunOptions) -> Any:
    """``medrobust run``'s configuration for ``request`` under the grid's settings."""
    from robustbench_med.pipeline import RunConfig

    spec = plan.spec
    where = options.where(spec)
    return RunConfig(request=request, attacks=spec.attacks, presets=spec.presets, eps=spec.eps,
                     n_test=spec.n_test, data_root=where.data_root, download=spec.download,
                     results_dir=options.results_dir, device=spec.device,
                     batch_size=spec.attack_batch_size, draws=spec.draws, seed=request.train.seed,
                     progress=False, surrogate=spec.surrogate, checks=spec.checks)


def run_local(plan: Plan, options: RunOptions, store: Any, events: Progress | None) -> GridOutcome:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(options.cpus_per_task)  # as a Ray task would: one thread trains deterministically
    try:
        return _run(plan, options, store, events)
    finally:
        torch.set_num_threads(threads)


def _run(plan: Plan, options: RunOptions, store: Any, events: Progress | None) -> GridOutcome:
    from robustbench_med.pipeline import benchmark

    outcome = GridOutcome()
    for training, job in trainings_to_run(plan, options.where(plan.spec), events):
        done = run_training(job)
        said_trained(training, done, events)
        if done.trained:
            outcome.trained.append(done.path)
    outcome.already_stored = stored_count(plan, statuses(plan, store))
    for target in plan.targets:
        emit(events, "grid", f"{target.id} {target.label}: {len(target.units)} units")
        report = benchmark(run_config(plan, target.request, options), events)
        outcome.computed += [cell.key for cell in report.cells if not cell.cached]
        outcome.checks += len(report.checks)
    return outcome
