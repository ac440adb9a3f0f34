"""The work one executor task does: obtain a checkpoint, or compute one unit of a target's grid.

Both are plain functions of picklable jobs, so the same code runs in-process and as a Ray task.
A unit runs the evaluation runner of ``medrobust run`` (:class:`GridRunner`) unchanged, against a
private *scratch* store that holds the rows the driver shipped with the job: finished cells are
read from it and never recomputed, the masking checks read the rows they would read in the
results store, and whatever the runner stores there is handed back to the driver, which alone
writes the results store. Transfer examples go to the results folder's own transfer cache (shared,
like the zoo), so every unit and worker reuses what another crafted on the same surrogate.

A unit never trains: a checkpoint missing from the zoo is an error that names the zoo, since on a
cluster the zoo must be a folder every worker reads (a shared filesystem).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustbench_med.errors import MedrobustError


@dataclass(frozen=True)
class Where:
    """Where a task finds its inputs: the zoo, the data root, and how it computes."""

    zoo: str
    data_root: str | None = None
    download: bool = False
    device: str | None = None
    threads: int = 0  # torch threads in the task (0: leave torch's default)
    transfer_cache: str | None = None  # the results folder's transfer cache (None: none)


@dataclass(frozen=True)
class TrainJob:
    request: Any  # ModelRequest
    n_test: int | None
    where: Where


@dataclass(frozen=True)
class TrainDone:
    path: str
    sha256: str
    trained: bool  # False: the zoo already held it
    seconds: float
    pid: int


@dataclass(frozen=True)
class UnitJob:
    """One unit: ``settings`` (a GridSettings without its subset, which the data decides) on the
    checkpoint of ``request``; ``surrogate`` names the transfer attacks' surrogate model, if any;
    ``rows`` are the stored rows of this checkpoint."""

    unit_id: str
    request: Any  # ModelRequest
    settings: Any  # GridSettings
    n_test: int | None
    surrogate: str | None
    where: Where
    rows: tuple[dict[str, Any], ...] = ()


@dataclass
class UnitDone:
    unit_id: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # new rows, as the store returns them
    checks: list[dict[str, Any]] = field(default_factory=list)  # check verdicts (checks unit)
    randomized: bool = False
    seconds: float = 0.0
    pid: int = 0


def _setup(where: Where) -> Any:
    import torch

    from robustbench_med.device import resolve_device

    if where.threads:
        torch.set_num_threads(where.threads)
    return resolve_device(where.device)


def _data(request: Any, n_test: int | None, where: Where) -> Any:
    from robustbench_med.data.loading import load_dataset

    return load_dataset(request.dataset, data_root=where.data_root, image_size=request.image_size,
                        augment=request.augment, n_train=request.n_train, n_val=request.n_val,
                        n_test=n_test, download=where.download)


def run_training(job: TrainJob) -> TrainDone:
    """Obtain ``job``'s checkpoint: the zoo's copy, else train it now (as ``medrobust run`` would)."""
    from robustbench_med.models.zoo import Zoo
    from robustbench_med.workflow import obtain_model

    started = time.perf_counter()
    device = _setup(job.where)
    zoo = Zoo(job.where.zoo)
    had = zoo.find(job.request.config()) is not None
    ckpt = obtain_model(job.request, _data(job.request, job.n_test, job.where), zoo, device, progress=False)
    return TrainDone(str(ckpt.path), ckpt.sha256, not had, time.perf_counter() - started, os.getpid())


def _from_zoo(request: Any, zoo: Any, what: str) -> Path:
    path = zoo.find(request.config())
    if path is None:
        raise MedrobustError(
            f"no checkpoint of the {what} {request.config().label} on {request.dataset} in the zoo "
            f"{zoo.root} on this worker (pid {os.getpid()}): trainings run before the units that need "
            "them, so the zoo must be a folder every worker reads (a shared filesystem on a cluster)")
    return path


def run_unit(job: UnitJob) -> UnitDone:
    """Compute ``job`` against a scratch store seeded with ``job.rows``; return the rows and checks
    the runner stored there."""
    from robustbench_med.evaluation.runner import GridRunner, subset_label
    from robustbench_med.evaluation.subject import from_checkpoint
    from robustbench_med.evaluation.transfer_cache import TransferCache
    from robustbench_med.models.zoo import Zoo, load_checkpoint
    from robustbench_med.workflow import obtain_surrogate, surrogate_request

    started = time.perf_counter()
    device = _setup(job.where)
    zoo = Zoo(job.where.zoo)
    data = _data(job.request, job.n_test, job.where)
    ckpt = load_checkpoint(_from_zoo(job.request, zoo, "model"), device)
    surrogate = None
    if job.surrogate:
        _from_zoo(surrogate_request(job.request, job.surrogate), zoo, "surrogate")
        surrogate = obtain_surrogate(job.request, data, zoo, device, job.surrogate, progress=False)
    settings = dataclasses.replace(job.settings, subset=subset_label(job.n_test, len(data.test)))

    with tempfile.TemporaryDirectory(prefix="medrobust-unit-") as folder:
        scratch = _scratch_store(Path(folder), job.rows)
        # the results folder's cache, not the scratch store's (which would always miss)
        cache = TransferCache(Path(job.where.transfer_cache) if job.where.transfer_cache else None)
        report = GridRunner(from_checkpoint(ckpt), data.test, data.info, settings, device=device,
                            store=scratch, surrogate=surrogate, transfer_cache=cache).run()
        done = _new_rows(scratch, job)
    done.randomized = report.randomized
    done.seconds = time.perf_counter() - started
    return done


def _scratch_store(folder: Path, rows: tuple[dict[str, Any], ...]) -> Any:
    from robustbench_med.grid.rows import put_row
    from robustbench_med.store import STORE_NAME, ResultStore

    scratch = ResultStore(folder / STORE_NAME)
    for row in rows:
        put_row(scratch, row)
    return scratch


def _new_rows(scratch: Any, job: UnitJob) -> UnitDone:
    from robustbench_med.grid.rows import check_rows, key_of, rows_where

    shipped = {key_of(row) for row in job.rows}
    rows = [row for row in rows_where(scratch) if key_of(row) not in shipped]
    return UnitDone(job.unit_id, rows=rows, checks=check_rows(scratch), pid=os.getpid())
