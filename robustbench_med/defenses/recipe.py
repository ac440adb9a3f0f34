"""Pieces of the defenses' training recipes that several of them share.

Two choices made once for all six defenses:

- **One adversarial budget.** Every inner attack uses the benchmark's PGD
  settings from the :class:`~robustbench_med.training.config.TrainConfig` (eps 4/255,
  step 1/255, 10 steps by default) instead of each paper's CIFAR settings
  (8/255 with 7 or 10 steps; DBN 0.005, CAP 0.03), so the defenses differ in
  mechanism and loss, not in how hard their training attack is.
- **Delays scale with the budget.** The originals wait a fixed number of
  epochs out of a long schedule (PNI 5 of 160, Learn2Perturb 10 and 20 of
  350, CAP 20 of 200). We keep the same *fraction* of the benchmark's epoch
  budget, rounded; a defense option sets an explicit number of epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from robustbench_med.models.classifier import task_logits
from robustbench_med.training.strategies import AdversarialTraining


@dataclass(frozen=True)
class PGDSettings:
    """The benchmark's training attack: L-inf PGD with a uniform random start."""

    eps: float
    step: float
    steps: int

    @classmethod
    def of(cls, config: Any) -> PGDSettings:
        return cls(eps=float(config.adv_eps), step=float(config.adv_step), steps=int(config.adv_steps))

    def as_dict(self) -> dict[str, Any]:
        return {"eps": self.eps, "step": self.step, "steps": self.steps}


def scaled_delay(fraction: float, epochs: int, override: int | None) -> int:
    """Epochs to wait: ``override`` when given, else ``round(fraction * epochs)``."""
    return override if override is not None else round(fraction * epochs)


def predicted_labels(output: Any) -> torch.Tensor:
    """The model's own predictions, shaped like the labels ((N,) or (N, tasks)).

    PNI and Learn2Perturb attack these rather than the true labels during
    training, to avoid label leaking (Kurakin et al. 2017).
    """
    preds = [logits.argmax(1) for logits in task_logits(output)]
    return preds[0].detach() if len(preds) == 1 else torch.stack(preds, 1).detach()


def draw_attack_draw_update(name: str, config: Any) -> AdversarialTraining:
    """RPF's and CTRW's official step (identical in both codes): draw, PGD on that draw, draw
    again, cross-entropy on the adversarial batch -- the benchmark's Alg. 2 under the defense's name."""
    pgd = PGDSettings.of(config)
    return AdversarialTraining(pgd.eps, pgd.step, pgd.steps, name=name)
