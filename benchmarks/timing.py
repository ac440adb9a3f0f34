"""Timing helpers shared by the benchmark scripts (imported as ``timing``: a script run as
``python benchmarks/<name>.py`` has this folder first on its path).

CUDA runs asynchronously, so a clock read without synchronising measures the launch, not the work.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def sync(device: torch.device) -> None:
    """Wait for the device's queued kernels (nothing to wait for on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs, after one warm-up run (allocator, cuDNN
    autotuning, first-call overheads), each run synchronised."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
