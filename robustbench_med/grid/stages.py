"""What both executors do around their tasks: list the trainings to run, read the store's state of
every target, and say it as events."""

from __future__ import annotations

from typing import Any

from robustbench_med.events import Progress, emit
from robustbench_med.grid.plan import Plan, Training, clean_cells, unit_cells
from robustbench_med.grid.status import TargetStatus, store_frames, target_status
from robustbench_med.grid.unit import TrainDone, TrainJob, Where


def trainings_to_run(plan: Plan, where: Where, events: Progress | None) -> list[tuple[Training, TrainJob]]:
    """The trainings whose checkpoint the zoo lacks, as jobs (surrogates first); the others are said."""
    jobs = []
    for training in plan.trainings:
        if training.in_zoo:
            emit(events, "grid", f"{training.id} {training.role} {training.label}: in the zoo",
                 level="detail")
        else:
            jobs.append((training, TrainJob(training.request, training.n_test, where)))
    if jobs:
        emit(events, "grid", f"training {len(jobs)} checkpoint{'s' if len(jobs) != 1 else ''} first: "
             + ", ".join(t.id for t, _ in jobs))
    return jobs


def said_trained(training: Training, done: TrainDone, events: Progress | None) -> None:
    verb = "trained" if done.trained else "found in the zoo"
    emit(events, "grid", f"{training.id} {training.role} {training.label}: {verb} in {done.seconds:.1f} s "
         f"(sha256 {done.sha256[:12]}, pid {done.pid})")


def statuses(plan: Plan, store: Any) -> dict[str, TargetStatus]:
    """Every target's state in ``store`` (after the trainings: checkpoint identities are known)."""
    from robustbench_med.versions import code_version

    rows, checks = store_frames(store)
    version = code_version()
    return {t.id: target_status(plan, t, rows, checks, version) for t in plan.targets}


def stored_count(plan: Plan, state: dict[str, TargetStatus]) -> int:
    """How many of the plan's cells the store already holds."""
    total = 0
    for target in plan.targets:
        status = state[target.id]
        cells = set(clean_cells(target, status.randomized)) | {
            c for u in target.units for c in unit_cells(target, u, status.randomized)}
        total += len(cells & status.stored)
    return total


def row_line(row: dict[str, Any], prefix: str = "") -> str:
    """One stored row as the runner says a cell: attack (preset, eps, protocol): accuracy."""
    from robustbench_med.attacks.eps import format_eps

    what = (f"clean ({row['protocol']})" if row["attack"] == "clean" else
            f"{row['attack']} ({row['preset']}, eps {format_eps(row['eps'])}, {row['protocol']})")
    return (f"  {prefix}{what}: {row['accuracy']:.2%} (95% CI {row['ci_low']:.2%}-{row['ci_high']:.2%}, "
            f"n={row['n']}, {row['wall_s']:.1f} s)")
