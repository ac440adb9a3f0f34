"""The local executor: in this process, one thing at a time, exactly as ``medrobust run`` works.

Trainings run first (each with :func:`~robustbench_med.grid.unit.run_training`, the step
``medrobust run`` takes when the zoo lacks a model); then each checkpoint's whole grid runs
through :func:`robustbench_med.pipeline.benchmark` with the run configurations ``medrobust run``
builds from the same settings (one per attack group: a target whose file gives attacks per preset
stands for one ``run`` command per preset), writing straight into the results store.
"""

from __future__ import annotations

from typing import Any

from robustbench_med.events import Progress, emit
from robustbench_med.grid.options import GridOutcome, RunOptions
from robustbench_med.grid.plan import Plan, Target
from robustbench_med.grid.spec import GridSpec
from robustbench_med.grid.stages import said_trained, statuses, stored_count, trainings_to_run
from robustbench_med.grid.unit import run_training


def run_configs(target: Target, options: RunOptions, spec: GridSpec) -> list[Any]:
    """``medrobust run``'s configuration for each attack group of ``target``: the commands the
    grid stands for, in order."""
    from robustbench_med.pipeline import RunConfig

    where, ev, request = options.where(spec), target.evaluation, target.request
    return [RunConfig(request=request, attacks=attacks, presets=presets, eps=ev.eps, n_test=ev.n_test,
                      data_root=where.data_root, download=spec.download, results_dir=options.results_dir,
                      device=spec.device, batch_size=ev.attack_batch_size, draws=ev.draws,
                      seed=request.train.seed, progress=False, surrogate=ev.surrogate, checks=ev.checks,
                      square_queries=ev.square_queries)
            for attacks, presets in ev.groups]


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
        for config in run_configs(target, options, plan.spec):
            report = benchmark(config, events)
            outcome.computed += [cell.key for cell in report.cells if not cell.cached]
            outcome.checks += len(report.checks)
    return outcome
