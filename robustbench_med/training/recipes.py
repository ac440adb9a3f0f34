"""The training recipes a row can name: optimiser, learning rate and schedule.

- ``paper``: SGD, lr 1e-3, ReduceLROnPlateau (factor 0.1) down to 1e-6,
  cross-entropy. The paper does not state momentum; we use 0.9, the
  convention for SGD on ResNets (without it, lr 1e-3 barely moves in a CPU
  budget). Recorded in every checkpoint.
- ``code``: Adam lr 1e-4, ReduceLROnPlateau patience 70 down to 1e-5, early
  stopping after 80 epochs without improvement, as the official notebook.
- ``fast``: SGD lr 1e-2, momentum 0.9, ReduceLROnPlateau patience 5 down to
  1e-6. Ours, for short CPU budgets: measured on 1000 PneumoniaMNIST images
  over 6 epochs, MAIL-RN18 stays at the majority class under ``paper`` (SGD
  1e-3), ``code`` (Adam 1e-4) and Adam 1e-3, and reaches 80% under this one
  (ResNet18 learns under all of them). Every row names its recipe.
- ``medmnist``: MedMNIST v2's own benchmark (Yang et al., Sci. Data 2023):
  Adam lr 1e-3, lr x0.1 at 50% and 75% of the epochs (epochs 50 and 75 of
  100); use it with ``--batch-size 128`` as the benchmark does. The anchor
  that says training works before any robustness row is read.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """Optimiser and schedule; the loss and the batches are the strategy's (:mod:`.strategies`)."""

    optimizer: str
    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    plateau_patience: int = 10
    plateau_factor: float = 0.1
    min_lr: float = 1e-6
    early_stop: int | None = None
    milestones: tuple[float, ...] = ()  # multi-step decay at these fractions of the epochs (else plateau)


RECIPES: dict[str, Recipe] = {
    "paper": Recipe("sgd", lr=1e-3, momentum=0.9, plateau_patience=10, min_lr=1e-6),
    "code": Recipe("adam", lr=1e-4, plateau_patience=70, min_lr=1e-5, early_stop=80),
    "fast": Recipe("sgd", lr=1e-2, momentum=0.9, plateau_patience=5, min_lr=1e-6),
    "medmnist": Recipe("adam", lr=1e-3, milestones=(0.5, 0.75)),
}
