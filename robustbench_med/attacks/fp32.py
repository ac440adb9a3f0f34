"""Attacks compute in fp32, whatever autocast context they are called from.

Why (see :mod:`robustbench_med.training.precision`): a sign-gradient step flips on every
gradient entry that bf16's 8-bit mantissa moves across zero, which changes the adversarial
examples and hides the robust-accuracy differences the benchmark exists to measure. The
shared L-inf loop (evaluation's PGD/BIM/MIM and every training attack) and the evaluation
runner's attack calls are wrapped in :func:`in_fp32`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

import torch

P = ParamSpec("P")
R = TypeVar("R")


@contextlib.contextmanager
def full_precision() -> Iterator[None]:
    """Autocast off for CUDA and the CPU inside the block (a no-op where it was off)."""
    with torch.autocast("cuda", enabled=False), torch.autocast("cpu", enabled=False):
        yield


def in_fp32(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` run inside :func:`full_precision`."""
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with full_precision():
            return fn(*args, **kwargs)
    return wrapper
