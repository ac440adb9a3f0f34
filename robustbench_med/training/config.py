"""What a training run is asked to do (part of the checkpoint's identity) and what it returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from robustbench_med.errors import BadInputError
from robustbench_med.training.precision import check_amp
from robustbench_med.training.recipes import RECIPES

BN_SETTLE = ("recalibrate", "none")


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained; part of its checkpoint's identity."""

    recipe: str = "paper"
    epochs: int = 200
    batch_size: int = 32
    seed: int = 0
    adversarial: bool = False
    adv_eps: float = 4 / 255
    adv_step: float = 1 / 255
    adv_steps: int = 10
    bn_settle: str = "recalibrate"
    amp: str = "off"  # "bf16": autocast in training steps (training/precision.py)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise BadInputError(f"unknown training recipe '{self.recipe}' "
                                f"(allowed: {', '.join(RECIPES)})")
        if self.epochs < 1:
            raise BadInputError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise BadInputError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.bn_settle not in BN_SETTLE:
            raise BadInputError(f"unknown BatchNorm settling '{self.bn_settle}' "
                                f"(allowed: {', '.join(BN_SETTLE)})")
        check_amp(self.amp)

    def to_dict(self, keep_adversarial: bool = False) -> dict[str, Any]:
        """The settings that determine the weights; the PGD settings only when something uses
        them (``--adversarial``, or a defense whose recipe trains adversarially)."""
        out = asdict(self)
        out["recipe_settings"] = asdict(RECIPES[self.recipe])
        if self.amp == "off":  # fp32 checkpoints keep the identity they had before amp existed
            out.pop("amp")
        if not (self.adversarial or keep_adversarial):
            for key in ("adv_eps", "adv_step", "adv_steps"):
                out.pop(key)
        return out


@dataclass
class TrainResult:
    """The kept epoch's validation scores and the run's history."""

    best_epoch: int
    val_accuracy: float
    val_loss: float
    history: list[dict[str, float]]
    seconds: float
    val_auc: float | None = None
    val_recall: list[dict[int, float]] = field(default_factory=list)  # per task: class -> recall
    selection: str = "val_auc, then val_loss"

    @property
    def one_class(self) -> bool:
        """True when, on some task, the kept model is right on one validation class only."""
        return any(sum(r > 0 for r in recall.values()) < 2 for recall in self.val_recall if len(recall) > 1)
