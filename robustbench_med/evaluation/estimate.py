"""What a cell will cost, before it runs: from what similar cells cost before (the median time per
test point of stored rows of the same model, defense, attack, preset, protocol and image size, the
same dataset preferred), or, with no such history, from a timed forward+backward pass times the
attack's budget of passes per point (:attr:`AttackSpec.passes`). Not a bound either way: a point
broken early takes from it, the attack's own work (a randomized model's re-draws, the scoring over
draws) adds to it. An attack that states no budget and has no history stays "unknown".

It lives in the evaluation layer because ``medrobust run`` prints it before attacking; ``grid plan``
uses the history part (:mod:`robustbench_med.grid.estimate`), as it has no model loaded to time.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from robustbench_med.evaluation.batching import is_oom
from robustbench_med.events import Progress, emit

MATCH = ("model", "defense", "attack", "preset", "protocol", "image_size")


@dataclass(frozen=True)
class Estimate:
    """Seconds (None: no similar work stored) and where the number comes from."""

    seconds: float | None
    basis: str = ""


def similar_estimate(rows: pd.DataFrame, wanted: dict[str, object], dataset: str,
                     n_points: int | None) -> Estimate:
    """The expected wall time over ``n_points`` of a cell whose ``MATCH`` columns are ``wanted``
    (rows of ``dataset`` preferred); shared by ``grid plan`` and ``medrobust run``."""
    if rows.empty or "wall_s" not in rows:
        return Estimate(None)
    similar = rows
    for column in MATCH:
        similar = similar[similar[column] == wanted[column]]
    similar = similar[similar["wall_s"].notna() & (similar["n"] > 0)]
    same_data = similar[similar["dataset"] == dataset]
    pool, where = (same_data, dataset) if len(same_data) else (similar, "other datasets")
    if pool.empty:
        return Estimate(None)
    per_point = statistics.median((pool["wall_s"] / pool["n"]).tolist())
    n = n_points or int(statistics.median(pool["n"].tolist()))
    return Estimate(per_point * n, f"{len(pool)} stored row{'s' if len(pool) > 1 else ''} ({where})")


@dataclass(frozen=True)
class Budget:
    """What the timed estimate of one cell needs: at most ``passes`` forward+backward passes per point
    (None: the attack states none) over ``points`` points, on the surrogate or on the target; nothing
    when a transfer attack's examples are ``cached``."""

    passes: float | None
    points: int
    on_surrogate: bool = False
    cached: bool = False  # a transfer attack whose examples the transfer cache holds


def timed_pass(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device,
               batch_size: int) -> float | None:
    """Seconds per point of one forward+backward (the loss's gradient with respect to the input, as
    an attack takes it) over up to one batch of ``x``, the faster of two passes (the first pays any
    one-off cost: cuDNN's search for this shape, cached matrices). None when there is nothing to
    time or the pass fails (out of memory, or a model with no input gradient, such as one only
    black-box attacks query): an estimate must never end a run. The random state is restored
    afterwards, so a randomized model's later draws are the ones it would have made, and no
    parameter receives a gradient."""
    n = min(len(x), batch_size)
    if n == 0:
        return None
    cuda = device.type == "cuda"
    index = device.index if device.index is not None else (torch.cuda.current_device() if cuda else 0)
    times = []
    with torch.random.fork_rng(devices=[index] if cuda else []):
        for _ in range(2):
            xb = x[:n].to(device).requires_grad_(True)
            if cuda:
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            try:
                torch.autograd.grad(F.cross_entropy(model(xb), y[:n].to(device)), xb)
            except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
                if cuda and is_oom(exc):
                    torch.cuda.empty_cache()
                return None
            if cuda:
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
    return min(times) / n


def budget_estimate(budget: Budget, seconds_per_pass: Callable[[bool], float | None]) -> Estimate:
    """``budget.passes`` x ``budget.points`` timed passes (``seconds_per_pass(on_surrogate)``): what
    the cell costs if no point breaks early, which most attacks let a broken point do."""
    if budget.cached:
        return Estimate(0.0, "the surrogate's examples are in the transfer cache")
    if budget.points == 0:
        return Estimate(0.0, "no point to attack")
    if budget.passes is None:
        return Estimate(None)
    per_pass = seconds_per_pass(budget.on_surrogate)
    if per_pass is None:
        return Estimate(None)
    where = "surrogate" if budget.on_surrogate else "model"
    return Estimate(budget.passes * budget.points * per_pass,
                    f"{budget.passes:.0f} passes x {budget.points} points x {1000 * per_pass:.1f} ms, "
                    f"a forward+backward timed on the {where}; less if points break early")


def announce(progress: Progress | None, rows: pd.DataFrame,
             todo: list[tuple[str, dict[str, object], Budget | None]], dataset: str, n_points: int,
             task: str, seconds_per_pass: Callable[[bool], float | None] | None = None) -> None:
    """Before attacking: each cell still to compute (its label, ``MATCH`` columns and budget) and its
    estimated cost, from ``rows``' timings of similar cells, else from ``seconds_per_pass`` and its
    budget, else "no estimate"; one summary event."""
    if not todo:
        return
    total, unknown, lines = 0.0, 0, []
    for label, wanted, budget in todo:
        estimate = similar_estimate(rows, wanted, dataset, n_points)
        basis = f"from {estimate.basis}"
        if estimate.seconds is None and budget is not None and seconds_per_pass is not None:
            estimate = budget_estimate(budget, seconds_per_pass)
            basis = estimate.basis
        if estimate.seconds is None:
            unknown += 1
            lines.append(f"    {label}: no estimate")
        else:
            total += estimate.seconds
            lines.append(f"    {label}: ~{format_seconds(estimate.seconds)} ({basis})")
    summary = (f"  {len(todo)} cell{'s' if len(todo) > 1 else ''} to compute on {task}: "
               f"~{format_seconds(total)} estimated"
               + (f", {unknown} without an estimate" if unknown else ""))
    emit(progress, "estimate", summary, data={"seconds": total, "unknown": unknown})
    for line in lines:
        emit(progress, "estimate", line, level="detail")


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
