"""How long a training run will take, said once its first steps are timed.

A run at the paper's budget (200 epochs) can take hours on a CPU; the user
should learn that within seconds, not at the end. The estimate counts the
optimisation steps only (validation and BatchNorm settling add to it), so it is
a lower bound; it is sent as an event whose ``data`` is a :class:`TrainingEstimate`,
and the CLI adds how to shorten the run in its own flags.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from robustbench_med.events import Progress, emit

TIMED_STEPS = 10  # steps timed before the estimate (fewer when an epoch has fewer)


@dataclass(frozen=True)
class TrainingEstimate:
    """The whole run's optimisation time, extrapolated from its first ``timed_steps`` steps."""

    epochs: int
    steps_per_epoch: int
    timed_steps: int
    seconds_per_step: float

    @property
    def seconds(self) -> float:
        return self.seconds_per_step * self.steps_per_epoch * self.epochs


def format_duration(seconds: float) -> str:
    """``42 s``, ``7 min``, ``3.2 h``: the precision an estimate deserves."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class TrainingClock:
    """Call :meth:`step_done` after each optimisation step; the estimate is sent once, after the
    first ``min(TIMED_STEPS, steps_per_epoch)`` steps."""

    def __init__(self, progress: Progress | None, *, epochs: int, steps_per_epoch: int,
                 now: Callable[[], float] = time.perf_counter) -> None:
        self.progress = progress
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.timed = max(1, min(TIMED_STEPS, steps_per_epoch))
        self._now = now
        self._started = now()
        self._steps = 0

    def step_done(self) -> None:
        self._steps += 1
        if self._steps != self.timed or self.progress is None:
            return
        estimate = TrainingEstimate(self.epochs, self.steps_per_epoch, self.timed,
                                    (self._now() - self._started) / self.timed)
        emit(self.progress, "training-estimate",
             f"training will take about {format_duration(estimate.seconds)} ({self.epochs} epochs of "
             f"{self.steps_per_epoch} steps at {estimate.seconds_per_step:.3g} s a step, timed on the "
             f"first {self.timed}; validation adds to it)", data=estimate)
