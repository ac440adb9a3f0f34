"""The Ray executor: trainings and evaluation units as Ray tasks; the driver alone writes the store.

Without ``--address`` a local Ray cluster starts with ``workers x cpus-per-task`` CPUs (and
``workers x gpus-per-task`` GPUs), so at most ``workers`` tasks run at once; with one (``auto``,
``host:port`` or ``ray://host:port``) the driver joins it and keeps at most ``workers`` tasks in
flight. Every task reserves ``cpus-per-task`` CPUs (its torch threads) and ``gpus-per-task`` GPUs.

Trainings run first, as tasks, writing their checkpoints into the zoo (a folder every worker must
read: a shared filesystem on a cluster). Then each target's units are tasks: a unit gets the
rows of its checkpoint that the store holds when it is submitted, computes what is missing
against a scratch store of its own (:mod:`robustbench_med.grid.unit`) and returns the new rows;
the driver writes them through :meth:`ResultStore.put` as they arrive. A target's ``checks``
unit is submitted once its other units are stored. Transfer units that would craft the same
surrogate examples (same attack, preset, dataset and surrogate) wait for the first of them in
plan order, as the local executor runs them: it crafts and caches the examples, the others
reuse them, and every row says so (``transfer_cache: miss``/``hit``) exactly as a local run's rows
do; run at once, each would craft its own and store a miss. A worker that dies is retried by Ray
(``max_retries``); its unit starts again from the rows shipped with it, so nothing is stored
twice, and a driver that dies leaves every returned row in the store for the rerun.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from robustbench_med.errors import BadInputError, MedrobustError
from robustbench_med.events import Progress, emit
from robustbench_med.grid.options import ExecutorError, GridOutcome, RunOptions
from robustbench_med.grid.plan import Plan, Target, Unit, cell_of, runner_order
from robustbench_med.grid.stages import row_line, said_trained, statuses, stored_count, trainings_to_run
from robustbench_med.grid.status import TargetStatus, identity_filters
from robustbench_med.grid.unit import UnitDone, UnitJob, run_training, run_unit


def _ray() -> Any:
    try:
        with warnings.catch_warnings():  # ray imports requests, which warns about its own pins
            warnings.simplefilter("ignore")
            import ray
    except ImportError:
        raise BadInputError('--executor ray needs Ray: pip install "medrobust[ray]"') from None
    return ray


def connect(options: RunOptions) -> bool:
    """Join the cluster at ``options.address`` or start a local one; True when this call started or
    joined it (and the run should shut it down), False when Ray was already initialised."""
    ray = _ray()
    if ray.is_initialized():
        return False
    quiet = {"log_to_driver": False, "logging_level": "ERROR"}
    if options.address is None:  # CPUs bound the tasks in flight; GPUs are detected, never invented
        ray.init(num_cpus=options.workers * options.cpus_per_task, include_dashboard=False, **quiet)
    elif options.address.startswith("ray://"):
        ray.init(address=options.address)
    else:
        ray.init(address=options.address, **quiet)
    try:
        check_feasible(ray.cluster_resources(), options)
    except BadInputError:
        ray.shutdown()
        raise
    return True


def check_feasible(resources: dict[str, float], options: RunOptions) -> None:
    """A task that asks for more than the cluster has would wait forever: refuse it now."""
    for name, asked, flag in (("CPU", options.cpus_per_task, "--cpus-per-task"),
                              ("GPU", options.gpus_per_task, "--gpus-per-task")):
        have = resources.get(name, 0.0)
        if asked > have:
            raise BadInputError(f"{flag} {asked:g} asks for more than the Ray cluster's {have:g} {name}s "
                                f"(lower {flag}{', or run where there is a GPU' if name == 'GPU' else ''})")


def run_ray(plan: Plan, options: RunOptions, store: Any, events: Progress | None) -> GridOutcome:
    ray = _ray()
    started_here = connect(options)
    try:
        return _Driver(ray, plan, options, store, events).run()
    finally:
        if started_here:
            ray.shutdown()


class _Driver:
    def __init__(self, ray: Any, plan: Plan, options: RunOptions, store: Any,
                 events: Progress | None) -> None:
        self.ray, self.plan, self.options, self.store, self.events = ray, plan, options, store, events
        self.outcome = GridOutcome()
        task = {"num_cpus": options.cpus_per_task, "num_gpus": options.gpus_per_task,
                "max_retries": options.max_retries}
        self.train_task = ray.remote(run_training).options(name="medrobust-train", **task)
        self.unit_task = ray.remote(run_unit).options(name="medrobust-unit", **task)
        self.where = options.where(plan.spec)

    def run(self) -> GridOutcome:
        trainings = trainings_to_run(self.plan, self.where, self.events)
        by_job = {id(job): training for training, job in trainings}

        def trained(job: Any, done: Any) -> list[Any]:
            said_trained(by_job[id(job)], done, self.events)
            if done.trained:
                self.outcome.trained.append(done.path)
            return []

        self._pool(self.train_task, [job for _, job in trainings], trained, lambda job: "training")
        self.state = statuses(self.plan, self.store)
        self.outcome.already_stored = stored_count(self.plan, self.state)
        self.pending: dict[str, set[str]] = {}  # target id -> ids of its attack units not yet stored
        self.crafting: dict[tuple, deque[UnitJob]] = {}  # transfer key -> units waiting for its examples
        self.computed: set[str] = set()  # targets that got new rows in this run
        jobs = []
        for target in self.plan.targets:
            status = self.state[target.id]
            missing = status.missing(self.plan, target)
            attack_units = [u for u in missing if not u.is_checks]
            self.pending[target.id] = {u.id for u in attack_units}
            stored = len(target.units) - len(missing)
            emit(self.events, "grid", f"{target.id} {target.label}: {len(missing)} of {len(target.units)} "
                 f"units to run" + (f" ({stored} stored)" if stored else ""))
            jobs += [self._job(target, u) for u in attack_units]
            if not attack_units:
                jobs += self._checks_if_needed(target, missing)
        self._pool(self.unit_task, self._one_crafting_each(jobs), self._unit_done, lambda job: job.unit_id)
        return self.outcome

    # -- transfer units: one per surrogate example set at a time ---------------------------------
    def _transfer_key(self, job: UnitJob) -> tuple | None:
        """What the surrogate's examples depend on, for a transfer attack unit (else None)."""
        from robustbench_med.attacks.spec import parse_attack

        unit = self.plan.unit(job.unit_id)
        if unit.is_checks or parse_attack(unit.attack).spec.box != "transfer":
            return None
        target = self.plan.target(unit.target)
        r, ev = target.request, target.evaluation
        return (unit.attack, unit.preset, r.dataset, r.image_size, ev.n_test, ev.surrogate, ev.eps,
                ev.square_queries, r.train.seed)

    def _one_crafting_each(self, jobs: list[UnitJob]) -> list[UnitJob]:
        """``jobs`` less the transfer units whose examples another one listed earlier crafts; those
        wait (in order) until it is stored (:meth:`_next_crafting`)."""
        now = []
        for job in jobs:
            key = self._transfer_key(job)
            if key is None:
                now.append(job)
            elif key in self.crafting:
                self.crafting[key].append(job)
            else:
                self.crafting[key] = deque()
                now.append(job)
        return now

    def _next_crafting(self, job: UnitJob) -> list[UnitJob]:
        """The units that waited for ``job``'s examples (they now find them cached, and may run at
        once)."""
        key = self._transfer_key(job)
        return list(self.crafting.pop(key, ())) if key is not None else []

    # -- units ---------------------------------------------------------------------------------
    def _job(self, target: Target, unit: Unit) -> UnitJob:
        from robustbench_med.attacks.spec import parse_attack
        from robustbench_med.evaluation.runner import GridSettings
        from robustbench_med.grid.rows import rows_where
        from robustbench_med.versions import code_version

        r, ev = target.request, target.evaluation
        # the checks unit reruns the last attack group, whose cells are all stored by then, as the
        # last ``medrobust run`` on this checkpoint would: it adds the probe and the checks
        attacks, presets = ev.groups[-1] if unit.is_checks else (unit.attack, (unit.preset,))
        settings = GridSettings(attacks=attacks, presets=presets, eps=ev.eps, draws=ev.draws,
                                batch_size=ev.attack_batch_size, seed=r.train.seed, checks=unit.is_checks,
                                surrogate_name=ev.surrogate, square_queries=ev.square_queries)
        transfer = unit.is_checks or parse_attack(unit.attack).spec.box == "transfer"
        status: TargetStatus = self.state[target.id]
        sha = status.sha or self._identity(target)
        rows = rows_where(self.store, **identity_filters(target, sha, code_version()))
        if unit.is_checks:  # the checks see the rows in the order a local run stores them
            order = runner_order(target, status.randomized)
            rows.sort(key=lambda row: (1, order[cell_of(row)]) if cell_of(row) in order else (0, 0))
        return UnitJob(unit.id, r, settings, ev.n_test, ev.surrogate if transfer and target.surrogate
                       else None, self.where, tuple(rows))

    def _identity(self, target: Target) -> str:
        from robustbench_med.grid.plan import checkpoint_identity

        identity = checkpoint_identity(self.plan.training(target.training))
        if identity is None:
            raise ExecutorError(f"the checkpoint of {target.label} is not in the zoo {self.plan.zoo} after "
                                "its training ran: is the zoo on a filesystem the driver reads?")
        self.state[target.id].sha = identity[0]
        return identity[0]

    def _checks_if_needed(self, target: Target, missing: list[Unit]) -> list[UnitJob]:
        checks = [u for u in target.units if u.is_checks]
        if checks and (target.id in self.computed or any(u.is_checks for u in missing)):
            return [self._job(target, checks[0])]
        return []

    def _unit_done(self, job: UnitJob, done: UnitDone) -> list[UnitJob]:
        from robustbench_med.grid.rows import key_of, put_check_row, put_row
        from robustbench_med.versions import code_version

        unit = self.plan.unit(job.unit_id)
        target = self.plan.target(unit.target)
        foreign = {row["code_version"] for row in done.rows} - {code_version()}
        if foreign:  # its rows would never count as this grid's: a node with another checkout
            raise ExecutorError(f"{unit.id} ran on a worker (pid {done.pid}) with medrobust code version "
                                f"{', '.join(sorted(foreign))}, the driver has {code_version()}: install the "
                                "same checkout on every node; its rows were not stored")
        for row in done.rows:
            if put_row(self.store, row):
                self.outcome.computed.append(key_of(row))
                emit(self.events, "cell", row_line(row, f"{unit.id} "))
            else:
                self.outcome.duplicates += 1
        for check in done.checks:
            put_check_row(self.store, check)
            emit(self.events, "check", f"  {unit.id} check {check['check_name']}: {check['status']} "
                 f"({check['detail']})")
        self.outcome.checks += len(done.checks)
        if done.rows:
            self.computed.add(target.id)
        emit(self.events, "grid", f"{unit.id} {unit.label} of {target.id}: {len(done.rows)} new rows in "
             f"{done.seconds:.1f} s (pid {done.pid})", level="detail")
        if unit.is_checks:
            return []
        follow = self._next_crafting(job)
        self.pending[target.id].discard(unit.id)
        if self.pending[target.id]:
            return follow
        return follow + self._checks_if_needed(target, [u for u in target.units if u.is_checks])

    # -- scheduling ----------------------------------------------------------------------------
    def _pool(self, task: Any, jobs: Iterable[Any], on_done: Callable[[Any, Any], list[Any]],
              name: Callable[[Any], str]) -> None:
        """Run ``jobs`` with at most ``workers`` in flight; ``on_done`` may queue more. After a
        failure nothing new starts, the tasks in flight finish (their rows are stored), then the
        first failure is raised."""
        queue, inflight, failure = deque(jobs), {}, None
        while inflight or (queue and failure is None):
            while queue and failure is None and len(inflight) < self.options.workers:
                job = queue.popleft()
                inflight[task.remote(job)] = job
            ready, _ = self.ray.wait(list(inflight), num_returns=1)
            for ref in ready:
                job = inflight.pop(ref)
                try:
                    result = self.ray.get(ref)
                except Exception as exc:  # a task's error, or its worker dead past max_retries
                    failure = failure or _failure(exc, name(job), self.options.max_retries)
                    continue
                queue.extend(on_done(job, result))
        if failure is not None:
            raise failure


def _failure(exc: Exception, what: str, retries: int) -> Exception:
    """A task's failure as the driver raises it: a user error stays one line (naming the task); a
    worker that died past its retries is an :class:`ExecutorError`; a bug keeps its traceback."""
    ray = _ray()
    cause = getattr(exc, "cause", None)
    if isinstance(cause, MedrobustError):
        return MedrobustError(f"{what}: {cause}")
    if isinstance(exc, ray.exceptions.RayTaskError):
        return exc
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return ExecutorError(f"{what}: {type(exc).__name__} (after {retries} retries): {first}")
