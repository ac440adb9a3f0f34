"""Predictions for scoring: one pass for a deterministic model, several fresh draws otherwise.

A randomized model is scored by its expected prediction: softmax averaged over
``draws`` fresh draws (every held draw anywhere in the model re-drawn by
:func:`robustbench_med.randomness.resample` before each), so
no result rests on one lucky noisy pass (AutoAttack PRs #104/#105).
"""

from __future__ import annotations

import torch
from torch import nn

from robustbench_med.errors import MedrobustError
from robustbench_med.evaluation.batching import map_batches
from robustbench_med.models.classifier import task_logits
from robustbench_med.randomness import resample

TRAINING_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.Dropout, nn.Dropout2d, nn.Dropout3d)


def refuse_training_mode(model: nn.Module) -> None:
    """Attacking a model with BatchNorm or dropout in training mode gives meaningless numbers."""
    live = [name for name, m in model.named_modules() if isinstance(m, TRAINING_LAYERS) and m.training]
    if live:
        raise MedrobustError(
            f"model has {len(live)} BatchNorm/dropout layers in training mode (e.g. {live[0]}); "
            "call model.eval() before evaluating it"
        )


@torch.no_grad()
def probabilities(model: nn.Module, x: torch.Tensor, device: torch.device, *, draws: int = 1,
                  batch_size: int = 256) -> torch.Tensor:
    """(N, classes) softmax, averaged over ``draws`` fresh draws of a randomized model."""
    def one_batch(part: slice) -> torch.Tensor:
        xb = x[part].to(device)
        total = torch.zeros(0)
        for _ in range(draws):
            if draws > 1:
                resample(model)
            p = torch.softmax(model(xb).float(), dim=1)
            total = p if total.numel() == 0 else total + p
        return total / draws

    return map_batches(one_batch, len(x), batch_size)


@torch.no_grad()
def detect_randomness(model: nn.Module, x: torch.Tensor, device: torch.device,
                      repeats: int = 3, tol: float = 1e-5) -> bool:
    """True when repeated forward passes in eval mode disagree (as AutoAttack's check does)."""
    xb = x[: min(len(x), 16)].to(device)

    def logits() -> torch.Tensor:
        return torch.cat([t.float().flatten(1) for t in task_logits(model(xb))], 1)

    first = logits()
    return any((logits() - first).abs().max().item() > tol for _ in range(repeats - 1))
