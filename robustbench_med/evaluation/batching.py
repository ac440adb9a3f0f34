"""Run a function over a tensor in batches, halving the batch on CUDA out-of-memory."""

from __future__ import annotations

from collections.abc import Callable

import torch


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def map_batches(fn: Callable[[slice], torch.Tensor], n: int, batch_size: int, min_batch: int = 1,
                on_backoff: Callable[[int], None] | None = None) -> torch.Tensor:
    """Concatenate ``fn(slice)`` over ``range(n)``; on out-of-memory, retry the slice with half of it
    (``on_backoff(new_size)`` says so) from the random state the failed try started from, so a try
    that fails consumes no draws: when the first batch fails, the result is the one a run at the
    smaller batch gives (a later failure follows batches already drawn at the larger size)."""
    outputs: list[torch.Tensor] = []
    start = 0
    while start < n:
        stop = min(n, start + batch_size)
        state = _random_state()
        try:
            outputs.append(fn(slice(start, stop)).cpu())
        except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
            if not is_oom(exc) or stop - start <= min_batch:
                raise
            batch_size = max(min_batch, min(batch_size, stop - start) // 2)
            _restore(state)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if on_backoff is not None:
                on_backoff(batch_size)
            continue
        start = stop
    return torch.cat(outputs) if outputs else torch.empty(0)


def _random_state() -> tuple[torch.Tensor, list[torch.Tensor]]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return torch.get_rng_state(), cuda


def _restore(state: tuple[torch.Tensor, list[torch.Tensor]]) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda:
        torch.cuda.set_rng_state_all(cuda)
