"""How to run a grid and what a run did: shared by :mod:`~robustbench_med.grid.run`, which picks an
executor, and the executors (:mod:`~robustbench_med.grid.local`, :mod:`~robustbench_med.grid.ray_executor`),
so that no executor imports the module that imports it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustbench_med.errors import BadInputError, MedrobustError
from robustbench_med.grid.spec import GridSpec

EXECUTORS = ("local", "ray")


class ExecutorError(MedrobustError):
    """The executor could not finish the grid (a task failed past its retries); rows already
    written stay in the store, and rerunning the grid file resumes from them."""

    exit_code = 1


@dataclass(frozen=True)
class RunOptions:
    """How to run a grid: ``workers`` tasks at once with ``cpus_per_task`` threads each (the local
    executor runs one at a time with that many threads); Ray's ``address`` (None: start a local
    cluster), ``gpus_per_task`` and ``max_retries`` (per task, when its worker dies)."""

    results_dir: Path
    executor: str = "local"
    data_root: Path | None = None
    address: str | None = None
    workers: int = 1
    cpus_per_task: int = 1
    gpus_per_task: float = 0.0
    max_retries: int = 3

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            from robustbench_med.registry import nearest

            near = nearest(self.executor, list(EXECUTORS))
            raise BadInputError(f"unknown executor '{self.executor}'"
                                + (f"; did you mean '{near}'?" if near else "")
                                + f" (allowed: {', '.join(EXECUTORS)})")
        for name, value, least in (("--workers", self.workers, 1), ("--cpus-per-task", self.cpus_per_task, 1),
                                   ("--gpus-per-task", self.gpus_per_task, 0),
                                   ("--max-retries", self.max_retries, 0)):
            if value < least:
                raise BadInputError(f"{name} must be at least {least}, got {value}")
        if self.address is not None and self.executor != "ray":
            raise BadInputError("--address needs --executor ray")
        if self.address is not None and not (self.address == "auto" or self.address.startswith("ray://")
                                             or ":" in self.address):
            raise BadInputError(f"--address '{self.address}' is not a Ray address (allowed: auto, "
                                "ray://host:port, or host:port of a running cluster's head)")

    @property
    def zoo(self) -> Path:
        return (Path(self.results_dir) / "zoo").resolve()

    def where(self, spec: GridSpec) -> Any:
        """Where every task finds the zoo, the data and the transfer cache (absolute paths: workers
        run elsewhere)."""
        from robustbench_med.evaluation.transfer_cache import FOLDER
        from robustbench_med.grid.unit import Where

        root = self.data_root if self.data_root is not None else os.environ.get("MEDROBUST_DATA")
        return Where(zoo=str(self.zoo), data_root=str(Path(root).resolve()) if root else None,
                     download=spec.download, device=spec.device, threads=self.cpus_per_task,
                     transfer_cache=str((Path(self.results_dir) / FOLDER).resolve()))


@dataclass
class GridOutcome:
    """What a run did: checkpoints trained, rows written (their keys), cells found already stored,
    and cells that two concurrent units both computed (written once)."""

    trained: list[str] = field(default_factory=list)
    computed: list[Any] = field(default_factory=list)  # ResultKey of every row this run wrote
    already_stored: int = 0
    duplicates: int = 0
    checks: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"grid done in {self.seconds:.1f} s: {len(self.trained)} checkpoint"
                f"{'s' if len(self.trained) != 1 else ''} trained, {len(self.computed)} cells computed and "
                f"stored, {self.already_stored} found stored (not recomputed)"
                + (f", {self.duplicates} computed twice by concurrent units (stored once)"
                   if self.duplicates else ""))
