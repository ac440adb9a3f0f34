"""PGD, BIM and MIM as a torchattacks ``Attack`` over the one L-inf loop (:mod:`.engine`).

Written here because torchattacks' PGD, BIM and MIFGSM run every step on
every point and average nothing; the benchmark needs two things they lack:

- per-point early stop with the first successful iterate kept (AutoAttack's
  rule) for deterministic models: a broken point leaves the batch, so an
  undefended model costs a fraction of K forward+backward passes;
- EOT: the gradient averaged over ``eot_iter`` fresh draws of a randomized
  model (every held draw in the model re-drawn before each sample, through
  any wrapper: :func:`robustbench_med.randomness.resample`).

With early stop off and ``eot_iter=1`` the update rule is exactly
torchattacks' (the tests compare the two, and against ART's PGD).

``loss_fn`` replaces the cross-entropy, e.g. the sum of the task losses of a
multi-task model whose packed inputs are all perturbed jointly (the official
MAIL code's attack); early stop is then off, as no single label decides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchattacks.attack import Attack

from robustbench_med.attacks.engine import linf_attack


class IterativeLinf(Attack):
    """x <- clip_{x0, eps}(x + alpha * sign(g)), g the CE gradient (MIM: with momentum)."""

    def __init__(self, model: nn.Module, eps: float, alpha: float, steps: int,
                 random_start: bool = False, decay: float = 0.0, eot_iter: int = 1,
                 early_stop: bool = True,
                 loss_fn: Callable[[Any, torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__("IterativeLinf", model)
        self.eps, self.alpha, self.steps = eps, alpha, steps
        self.random_start, self.decay = random_start, decay
        self.loss_fn = loss_fn or F.cross_entropy
        self.eot_iter, self.early_stop = max(1, eot_iter), early_stop and loss_fn is None
        self.forward_backward_passes = 0  # counted for the cost benchmark

    def _count(self, n: int) -> None:
        self.forward_backward_passes += n

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x0 = images.clone().detach().to(self.device)
        y = labels.clone().detach().to(self.device)
        return linf_attack(self.get_logits, x0, y, eps=self.eps, step=self.alpha, steps=self.steps,
                           start="uniform" if self.random_start else "clean", decay=self.decay,
                           eot=self.eot_iter, early_stop=self.early_stop, loss=self.loss_fn,
                           redraw=self.model, on_pass=self._count)
