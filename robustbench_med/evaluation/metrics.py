"""Accuracy with a bootstrap interval, and AUC, over per-point outcomes."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

BOOTSTRAP_SAMPLES = 2000


def bootstrap_ci(flags: np.ndarray, *, seed: int = 0, level: float = 0.95,
                 samples: int = BOOTSTRAP_SAMPLES) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of 0/1 outcomes (medical test sets are small)."""
    flags = np.asarray(flags, dtype=float)
    if len(flags) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = flags[rng.integers(0, len(flags), size=(samples, len(flags)))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def auc(probabilities: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC (binary: positive class; multi-class: macro one-vs-rest); None if undefined."""
    labels = np.asarray(labels)
    present = np.unique(labels)
    if len(present) < 2:
        return None
    if probabilities.shape[1] == 2:
        return float(roc_auc_score(labels, probabilities[:, 1]))
    if len(present) < probabilities.shape[1]:
        return None
    return float(roc_auc_score(labels, probabilities, multi_class="ovr", average="macro"))
