"""What a run tells its user, as data: the library prints nothing, the CLI renders events with rich.

A notebook passes ``progress=print`` (an event prints as its message) or its
own function; the CLI colours events by ``level``. ``data`` carries the object
an event reports (a cell's result, a check's verdict) for programs that want
more than the line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    """One thing that happened: ``kind`` says what ("model", "training", "surrogate", "randomized",
    "cell", "check"), ``message`` is one plain line, ``level`` is "info", "detail" or "warning"."""

    kind: str
    message: str
    level: str = "info"
    data: Any = None

    def __str__(self) -> str:
        return self.message


Progress = Callable[[Event], None]


def emit(progress: Progress | None, kind: str, message: str, *, level: str = "info",
         data: Any = None) -> None:
    """Send an event to ``progress`` when there is one (no callback: the run is silent)."""
    if progress is not None:
        progress(Event(kind, message, level, data))
