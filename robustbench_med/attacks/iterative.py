"""PGD, BIM and MIM as one L-inf sign-gradient loop, as a torchattacks ``Attack``.

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

from robustbench_med.randomness import resample


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

    def _gradient(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(gradient summed over EOT draws, logits of the last draw)."""
        grad = torch.zeros_like(x)
        logits = torch.empty(0)
        for _ in range(self.eot_iter):
            if self.eot_iter > 1:
                resample(self.model)
            x_req = x.detach().requires_grad_(True)
            logits = self.get_logits(x_req)
            loss = self.loss_fn(logits, y)
            grad += torch.autograd.grad(loss, x_req)[0]
            self.forward_backward_passes += len(x)
        return grad, logits if isinstance(logits, torch.Tensor) else torch.empty(0)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x0 = images.clone().detach().to(self.device)
        y = labels.clone().detach().to(self.device)
        adv = x0.clone()
        if self.random_start:
            adv = (adv + torch.empty_like(adv).uniform_(-self.eps, self.eps)).clamp(0, 1)
        result = adv.clone()
        momentum = torch.zeros_like(adv)
        active = torch.arange(len(adv), device=adv.device)
        dims = tuple(range(1, adv.ndim))
        for _ in range(self.steps):
            if len(active) == 0:
                break
            grad, logits = self._gradient(adv[active], y[active])
            logits = logits.detach()
            if self.early_stop:
                fooled = logits.argmax(1) != y[active]
                if fooled.any():
                    result[active[fooled]] = adv[active[fooled]]
                    keep = ~fooled
                    active, grad = active[keep], grad[keep]
                    if len(active) == 0:
                        break
            if self.decay > 0:
                grad = grad / grad.abs().mean(dim=dims, keepdim=True).clamp_min(1e-12)
                grad = grad + self.decay * momentum[active]
                momentum[active] = grad
            stepped = adv[active] + self.alpha * grad.sign()
            delta = (stepped - x0[active]).clamp(-self.eps, self.eps)
            adv[active] = (x0[active] + delta).clamp(0, 1).detach()
        result[active] = adv[active]
        return result.detach()
