"""The one L-inf sign-gradient loop: evaluation's PGD/BIM/MIM and every training attack run it.

x <- clip_{x0, eps}(x + step * sign(g)), g the gradient of a pluggable loss
(cross-entropy by default; MIM: L1-normalised and accumulated with momentum
``decay``). What differs between its callers is a setting, not a loop:

- the start: ``"uniform"`` (PGD: uniform in the eps-ball), ``"clean"`` (BIM,
  MIM) or a tensor the caller drew (CAP's TRADES start ``x + 0.001 N(0, 1)``,
  :func:`gaussian_start`);
- per-point early stop (AutoAttack's rule: a point that is misclassified
  leaves the batch with that first successful iterate), for evaluation of
  deterministic models;
- EOT: the gradient summed over ``eot`` fresh draws of a randomized model
  (every held draw re-drawn before each, :func:`robustbench_med.randomness.resample`).
  When every random module of the model draws afresh per sample on every pass
  (:func:`robustbench_med.randomness.draws_per_sample`: Robust-MAIL's
  modulated noise and dropout), the ``eot`` draws are one forward/backward of
  the batch repeated ``eot`` times; a draw shared by the batch (PNI's weight
  noise, Learn2Perturb's maps) or held between passes (RPF, CTRW) keeps the loop.

Random numbers are drawn in one fixed order (the start, then per step the EOT
re-draws and the forward passes), so a seeded run gives the same examples
whichever caller asks for them. The caller sets the model's mode; training's
attacks run in eval mode (:func:`eval_mode`, :func:`pgd_examples`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from robustbench_med.attacks.fp32 import in_fp32
from robustbench_med.models.losses import multitask_loss
from robustbench_med.randomness import draws_per_sample, resample

Loss = Callable[[Any, torch.Tensor], torch.Tensor]
Start = Literal["uniform", "clean"] | torch.Tensor


def uniform_start(x: torch.Tensor, eps: float) -> torch.Tensor:
    """PGD's start (Madry et al. 2018): uniform noise in the eps-ball, clipped to [0, 1]."""
    return (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)


def gaussian_start(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """TRADES' start: ``x + sigma * N(0, 1)`` clipped to [0, 1] (a KL loss has no gradient at x)."""
    return (x + sigma * torch.randn_like(x)).clamp(0, 1)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode inside the block, its former mode restored after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _batched_gradient(forward: Callable[[torch.Tensor], Any], x: torch.Tensor, y: torch.Tensor,
                      loss: Loss, eot: int,
                      on_pass: Callable[[int], None] | None) -> tuple[torch.Tensor, Any]:
    """(gradient summed over ``eot`` draws, output of the last copy): one pass over ``eot``
    stacked copies of ``x``.

    The loss is averaged over all copies, so it is scaled by ``eot`` to give the sum over draws
    of per-draw batch means, as the loop computes."""
    x_req = x.detach().repeat(eot, *[1] * (x.ndim - 1)).requires_grad_(True)
    y_rep = y.repeat(eot, *[1] * (y.ndim - 1))
    output = forward(x_req)
    grad = torch.autograd.grad(loss(output, y_rep) * eot, x_req)[0]
    if on_pass is not None:
        on_pass(len(x_req))
    last = output[-len(x):] if isinstance(output, torch.Tensor) else None
    return grad.view(eot, *x.shape).sum(0), last


def eot_gradient(forward: Callable[[torch.Tensor], Any], x: torch.Tensor, y: torch.Tensor, loss: Loss,
                 eot: int, redraw: nn.Module | None, on_pass: Callable[[int], None] | None = None,
                 batched: bool | None = None) -> tuple[torch.Tensor, Any]:
    """(gradient of ``loss`` at ``x`` summed over ``eot`` draws, output of the last draw).

    ``batched`` None: one pass over stacked copies when ``redraw`` draws per sample, else a
    loop that re-draws ``redraw`` before each draw; the loss must average over the batch."""
    if batched is None:
        batched = eot > 1 and redraw is not None and draws_per_sample(redraw)
    if batched:
        return _batched_gradient(forward, x, y, loss, eot, on_pass)
    grad = torch.zeros_like(x)
    output: Any = None
    for _ in range(eot):
        if eot > 1 and redraw is not None:
            resample(redraw)
        x_req = x.detach().requires_grad_(True)
        output = forward(x_req)
        grad += torch.autograd.grad(loss(output, y), x_req)[0]
        if on_pass is not None:
            on_pass(len(x))
    return grad, output


@in_fp32
def linf_attack(forward: Callable[[torch.Tensor], Any], x0: torch.Tensor, y: torch.Tensor, *,
                eps: float, step: float, steps: int, start: Start = "clean", decay: float = 0.0,
                eot: int = 1, early_stop: bool = False, loss: Loss = F.cross_entropy,
                redraw: nn.Module | None = None,
                on_pass: Callable[[int], None] | None = None) -> torch.Tensor:
    """L-inf sign-gradient examples for ``x0`` (detached), in ``forward``'s current mode.

    ``redraw`` is the model re-drawn before each EOT draw (``eot > 1``);
    ``on_pass`` hears the batch size of every forward+backward pass (the cost
    benchmark counts them). Early stop needs ``forward`` to return one logits
    tensor whose argmax (of the last draw) is compared with ``y``.
    """
    x0 = x0.detach()
    if isinstance(start, torch.Tensor):
        adv = start.detach().clone()
    elif start == "uniform":
        adv = uniform_start(x0.clone(), eps)
    elif start == "clean":
        adv = x0.clone()
    else:
        raise ValueError(f"start must be 'uniform', 'clean' or a tensor, got {start!r}")
    eot = max(1, eot)
    result = adv.clone()
    momentum = torch.zeros_like(adv)
    active = torch.arange(len(adv), device=adv.device)
    dims = tuple(range(1, adv.ndim))
    for _ in range(steps):
        if len(active) == 0:
            break
        grad, output = eot_gradient(forward, adv[active], y[active], loss, eot, redraw, on_pass)
        if early_stop:
            fooled = output.detach().argmax(1) != y[active]
            if fooled.any():
                result[active[fooled]] = adv[active[fooled]]
                keep = ~fooled
                active, grad = active[keep], grad[keep]
                if len(active) == 0:
                    break
        if decay > 0:
            grad = grad / grad.abs().mean(dim=dims, keepdim=True).clamp_min(1e-12)
            grad = grad + decay * momentum[active]
            momentum[active] = grad
        stepped = adv[active] + step * grad.sign()
        delta = (stepped - x0[active]).clamp(-eps, eps)
        adv[active] = (x0[active] + delta).clamp(0, 1).detach()
    result[active] = adv[active]
    return result.detach()


def pgd_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, step: float,
                 steps: int, loss: Loss = multitask_loss) -> torch.Tensor:
    """Training's attack (paper Alg. 2): PGD from a uniform start on the model's current draw,
    every step on every point, model in eval mode; the multi-task loss scores any output."""
    with eval_mode(model):
        return linf_attack(model, x, y, eps=eps, step=step, steps=steps, start="uniform", loss=loss)
