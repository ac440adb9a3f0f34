"""Run a function over a tensor in batches, halving the batch on CUDA out-of-memory."""

from __future__ import annotations

from collections.abc import Callable

import torch


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def map_batches(fn: Callable[[slice], torch.Tensor], n: int, batch_size: int,
                min_batch: int = 1) -> torch.Tensor:
    """Concatenate ``fn(slice)`` over ``range(n)``; on OOM retry the slice with half the batch."""
    outputs: list[torch.Tensor] = []
    start = 0
    while start < n:
        stop = min(n, start + batch_size)
        try:
            outputs.append(fn(slice(start, stop)).cpu())
        except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
            if not is_oom(exc) or batch_size <= min_batch:
                raise
            batch_size = max(min_batch, batch_size // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            continue
        start = stop
    return torch.cat(outputs) if outputs else torch.empty(0)
