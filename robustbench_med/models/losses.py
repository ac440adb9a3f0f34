"""The losses and hit tests that score a model's output, one task or several.

They live next to the models because the output's shape is the model's
contract (:func:`~robustbench_med.models.classifier.task_logits`): training,
the attacks and the defenses' recipes all score outputs through these.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from robustbench_med.models.classifier import task_logits


def labels_per_task(y: torch.Tensor) -> list[torch.Tensor]:
    """One label vector per task: ``y`` is (N,) for one task, (N, tasks) for several."""
    return [y] if y.ndim == 1 else list(y.unbind(1))


def multitask_loss(output: Any, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over tasks (the TMTL loss with lambda = 1/m)."""
    logits = task_logits(output)
    ys = labels_per_task(y)
    return sum(F.cross_entropy(lg, yt) for lg, yt in zip(logits, ys, strict=True)) / len(logits)


def correct_per_task(output: Any, y: torch.Tensor) -> torch.Tensor:
    """(N, tasks) booleans: is each task's prediction right."""
    logits = task_logits(output)
    ys = labels_per_task(y)
    return torch.stack([lg.argmax(1) == yt for lg, yt in zip(logits, ys, strict=True)], 1)
