"""The training clock: one estimate, extrapolated from the first steps, sent as an event."""

from __future__ import annotations

import pytest

from robustbench_med.events import Event
from robustbench_med.training.clock import TIMED_STEPS, TrainingClock, TrainingEstimate, format_duration


class FakeTime:
    """A clock that moves only when told: the test needs no real timing."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize("steps_per_epoch", [3, 50])
def test_one_estimate_after_the_first_steps(steps_per_epoch):
    events: list[Event] = []
    now = FakeTime()
    clock = TrainingClock(events.append, epochs=200, steps_per_epoch=steps_per_epoch, now=now)
    timed = min(TIMED_STEPS, steps_per_epoch)
    for _ in range(timed - 1):
        now.t += 0.5
        clock.step_done()
    assert events == []  # not before the timed steps are done
    now.t += 0.5
    clock.step_done()
    for _ in range(25):
        now.t += 10.0  # later steps never send a second estimate
        clock.step_done()
    assert len(events) == 1 and events[0].kind == "training-estimate"
    estimate = events[0].data
    assert estimate == TrainingEstimate(epochs=200, steps_per_epoch=steps_per_epoch, timed_steps=timed,
                                        seconds_per_step=0.5)
    assert estimate.seconds == 0.5 * steps_per_epoch * 200
    said = f"about {format_duration(estimate.seconds)} (200 epochs of {steps_per_epoch} steps"
    assert said in events[0].message


def test_no_listener_means_no_event_and_no_error():
    clock = TrainingClock(None, epochs=1, steps_per_epoch=1, now=FakeTime())
    clock.step_done()


@pytest.mark.parametrize("seconds, text", [(42.4, "42 s"), (600, "10 min"), (3 * 3600, "3.0 h")])
def test_durations_read_at_the_precision_an_estimate_deserves(seconds, text):
    assert format_duration(seconds) == text
