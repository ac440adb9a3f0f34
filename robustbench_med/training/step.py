"""One optimiser step per training batch, in bf16 autocast when asked, and in micro-batches once
the device has run out of memory.

Out-of-memory back-off: when a step raises CUDA's out-of-memory error (recognised by
:func:`robustbench_med.evaluation.batching.is_oom`, as for attack batches), the step is undone
(gradients dropped, the model's buffers -- BatchNorm statistics -- put back) and redone with the
batch cut into near-equal micro-batches of about half the size, each loss weighted by its share
of the batch and its gradients accumulated before the one optimiser step. For a loss that is a
mean over the batch the step is then the full batch's in expectation (exactly, up to rounding,
for a model without BatchNorm; with BatchNorm each micro-batch is normalised by its own
statistics). The smaller size stays for the rest of the run, halving again on a further error;
below two images (BatchNorm cannot train on one) the error is raised. The loop records the size
in the epoch's history (``micro_batch``) and settles BatchNorm with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from robustbench_med.evaluation.batching import is_oom
from robustbench_med.training.precision import autocast

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
MIN_MICRO_BATCH = 2  # BatchNorm in training mode needs two images


class BatchStepper:
    """Runs ``loss_fn`` on a batch, back-propagates and steps ``optimizer``; see the module."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device,
                 amp: str = "off", micro_batch: int | None = None) -> None:
        self.model, self.optimizer, self.device, self.amp = model, optimizer, device, amp
        self.micro_batch = micro_batch  # None: every batch in one piece
        self.backoffs: list[int] = []  # the micro-batch sizes adopted after an out-of-memory error

    def step(self, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One optimiser step on (x, y); returns the batch's mean loss, detached."""
        while True:
            saved = [b.detach().clone() for b in self.model.buffers()]
            try:
                return self._step(loss_fn, x, y)
            except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
                size = min(len(x), self.micro_batch or len(x))
                if not is_oom(exc) or size <= MIN_MICRO_BATCH:
                    raise
            # outside the except clause: the error's frames, which hold the attempt's tensors, are gone
            self._undo(saved)
            self.micro_batch = max(MIN_MICRO_BATCH, size // 2)
            self.backoffs.append(self.micro_batch)

    def _step(self, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n, part = len(x), self.micro_batch
        if part is None or part >= n:  # the order of the plain loop: loss, zero, backward, step
            with autocast(self.device, self.amp):
                loss = loss_fn(x, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            return loss.detach()
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=x.device)
        pieces = math.ceil(n / part)
        for xb, yb in zip(x.tensor_split(pieces), y.tensor_split(pieces), strict=True):
            with autocast(self.device, self.amp):
                loss = loss_fn(xb, yb) * (len(xb) / n)
            loss.backward()
            total += loss.detach().float()
        self.optimizer.step()
        return total

    def _undo(self, saved: list[torch.Tensor]) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for buffer, value in zip(self.model.buffers(), saved, strict=True):
                buffer.copy_(value)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
