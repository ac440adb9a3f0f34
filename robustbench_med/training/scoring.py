"""Scoring a split in eval mode, and the key that picks the kept epoch.

The kept model is the epoch with the best validation AUC (mean over tasks;
ties: lower validation loss), as MedMNIST's benchmark selects. Accuracy was
the criterion before, and on an imbalanced split (BreastMNIST: 73% benign) a
diverged run that answers the majority class for everything won it; a
constant predictor scores AUC 0.5, so it cannot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from robustbench_med.data.spec import Split
from robustbench_med.evaluation.metrics import auc
from robustbench_med.models.classifier import task_logits
from robustbench_med.models.losses import multitask_loss


@dataclass(frozen=True)
class SplitScore:
    """A split scored in eval mode: accuracy and loss averaged over tasks, AUC, recall per class."""

    accuracy: float
    loss: float
    auc: float | None
    recall: list[dict[int, float]]

    def selection_key(self) -> tuple[float, float]:
        """Higher is better: (AUC, -loss); a diverged pass (NaN) ranks last."""
        auc_value = 0.0 if self.auc is None else self.auc
        loss = self.loss if math.isfinite(self.loss) else math.inf
        return (auc_value if math.isfinite(auc_value) else -math.inf, -loss)


@torch.no_grad()
def score_split(model: nn.Module, split: Split, device: torch.device, batch_size: int = 256) -> SplitScore:
    """Accuracy, loss, AUC and per-class recall of ``model`` on ``split``, in eval mode."""
    was_training = model.training
    model.eval()
    total_loss, n = 0.0, 0
    probs: list[list[torch.Tensor]] = []
    for start in range(0, len(split), batch_size):
        x = split.x[start:start + batch_size].to(device)
        y = split.y[start:start + batch_size].to(device)
        out = model(x)
        total_loss += float(multitask_loss(out, y)) * len(x)
        probs.append([torch.softmax(lg.float(), 1).cpu() for lg in task_logits(out)])
        n += len(x)
    model.train(was_training)
    if n == 0:
        return SplitScore(0.0, math.nan, None, [])
    labels = split.y if split.y.ndim == 2 else split.y[:, None]
    accuracies, aucs, recalls = [], [], []
    for task, parts in enumerate(zip(*probs, strict=True)):
        p_task = torch.cat(parts).numpy()
        y_task = labels[:, task].numpy()
        pred = p_task.argmax(1)
        accuracies.append(float((pred == y_task).mean()))
        recalls.append({int(c): float((pred[y_task == c] == c).mean()) for c in np.unique(y_task)})
        task_auc = auc(p_task, y_task) if np.isfinite(p_task).all() else math.nan
        if task_auc is not None:
            aucs.append(task_auc)
    return SplitScore(float(np.mean(accuracies)), total_loss / n,
                      float(np.mean(aucs)) if aucs else None, recalls)


def evaluate_split(model: nn.Module, split: Split, device: torch.device,
                   batch_size: int = 256) -> tuple[float, float]:
    """(accuracy averaged over tasks, mean loss) of ``model`` on ``split``, in eval mode."""
    score = score_split(model, split, device, batch_size)
    return score.accuracy, score.loss
