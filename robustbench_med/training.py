"""Standard and adversarial training, with the paper's and the official code's recipes.

Recipes (``paper-notes.md``):

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

The kept model is the epoch with the best validation AUC (mean over tasks;
ties: lower validation loss), as MedMNIST's benchmark selects. Accuracy was
the criterion before, and on an imbalanced split (BreastMNIST: 73% benign) a
diverged run that answers the majority class for everything won it; a
constant predictor scores AUC 0.5, so it cannot. Before every validation pass
BatchNorm statistics are settled (:mod:`robustbench_med.batchnorm_settle`,
``bn_settle="recalibrate"``, recorded with the checkpoint), and a kept model
that is right on one validation class only is flagged in the result.

How a batch becomes a loss is a :class:`TrainingStrategy`: standard
cross-entropy, PGD adversarial training (paper Alg. 2: craft on one random
draw [A], update on a fresh one [I]), or a defense's own recipe (PNI's mixed
clean/adversarial loss, DBN's two BN branches, ...). The optimiser, schedule
and budget stay the benchmark's, so defenses compare on one shared budget.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from robustbench_med.batchnorm_settle import settle_batchnorm
from robustbench_med.data.spec import LoadedDataset, Split
from robustbench_med.errors import BadInputError
from robustbench_med.evaluation.metrics import auc
from robustbench_med.models.classifier import task_logits
from robustbench_med.randomness import resample


@dataclass(frozen=True)
class Recipe:
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

    def to_dict(self, keep_adversarial: bool = False) -> dict[str, Any]:
        """The settings that determine the weights; the PGD settings only when something uses
        them (``--adversarial``, or a defense whose recipe trains adversarially)."""
        out = asdict(self)
        out["recipe_settings"] = asdict(RECIPES[self.recipe])
        if not (self.adversarial or keep_adversarial):
            for key in ("adv_eps", "adv_step", "adv_steps"):
                out.pop(key)
        return out


@dataclass
class TrainResult:
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


def multitask_loss(output: Any, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over tasks (the TMTL loss with lambda = 1/m)."""
    logits = task_logits(output)
    ys = [y] if y.ndim == 1 else list(y.unbind(1))
    return sum(F.cross_entropy(lg, yt) for lg, yt in zip(logits, ys, strict=True)) / len(logits)


def correct_per_task(output: Any, y: torch.Tensor) -> torch.Tensor:
    """(N, tasks) booleans: is each task's prediction right."""
    logits = task_logits(output)
    ys = [y] if y.ndim == 1 else list(y.unbind(1))
    return torch.stack([lg.argmax(1) == yt for lg, yt in zip(logits, ys, strict=True)], 1)


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


def _scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe, epochs: int) -> Any:
    if recipe.milestones:
        steps = sorted({max(1, round(f * epochs)) for f in recipe.milestones})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=steps, gamma=0.1)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=recipe.plateau_factor, patience=recipe.plateau_patience,
        min_lr=recipe.min_lr)


def _optimizer(groups: list[dict[str, Any]], recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum)
    return torch.optim.Adam(groups, lr=recipe.lr)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Parameter groups; a module may set ``param_group_overrides()`` (e.g. no decay on noise scales)."""
    special: dict[int, dict[str, Any]] = {}
    for module in model.modules():
        hook = getattr(module, "param_group_overrides", None)
        if callable(hook):
            for param, settings in hook():
                special[id(param)] = settings
    plain = [p for p in model.parameters() if p.requires_grad and id(p) not in special]
    groups: list[dict[str, Any]] = [{"params": plain, "weight_decay": weight_decay}]
    by_settings: dict[tuple[tuple[str, Any], ...], list[nn.Parameter]] = {}
    for p in model.parameters():
        if id(p) in special and p.requires_grad:
            by_settings.setdefault(tuple(sorted(special[id(p)].items())), []).append(p)
    groups += [{"params": ps, **dict(k)} for k, ps in by_settings.items()]
    return groups


class TrainingStrategy:
    """How one training batch becomes a loss; defenses subclass it for their recipe."""

    name = "standard"

    def describe(self) -> dict[str, Any]:
        """Settings recorded with the checkpoint."""
        return {"strategy": self.name}

    def param_groups(self, model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
        return param_groups(model, weight_decay)

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        """Called before each epoch (1-based), e.g. to switch noise on after a delay."""

    def batch_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   epoch: int) -> torch.Tensor:
        """The loss to minimise on one batch; ``model`` is in training mode."""
        return multitask_loss(model(x), y)

    def after_step(self, model: nn.Module, epoch: int) -> None:
        """After every optimiser step: runs the modules' ``after_optimizer_step`` hooks."""
        for module in model.modules():
            hook = getattr(module, "after_optimizer_step", None)
            if callable(hook):
                hook()


def pgd_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, step: float,
                 steps: int, loss: Callable[[Any, torch.Tensor], torch.Tensor] | None = None,
                 random_start: bool = True) -> torch.Tensor:
    """L-inf PGD examples for training (random start, sign steps, projection), model in eval mode.

    Hand-written rather than torchattacks so that multi-task models (a loss over
    several heads) and defenses with their own loss (TRADES-style KL) share it.
    """
    loss = loss or multitask_loss
    was_training = model.training
    model.eval()
    adv = x.detach().clone()
    if random_start:
        adv = (adv + torch.empty_like(adv).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        grad = torch.autograd.grad(loss(model(adv), y), adv)[0]
        adv = (x + (adv.detach() + step * grad.sign() - x).clamp(-eps, eps)).clamp(0, 1)
    model.train(was_training)
    return adv.detach()


class AdversarialTraining(TrainingStrategy):
    """Paper Alg. 2 (after Rice et al. 2020): PGD-k with random start, pure adversarial loss.

    A randomized model is re-drawn before crafting ([A]) and again before the
    update ([I]), so the attack and the update see different random networks.
    """

    name = "pgd-at"

    def __init__(self, eps: float, step: float, steps: int, name: str | None = None) -> None:
        self.eps, self.step, self.steps = eps, step, steps
        self.name = name or self.name

    def describe(self) -> dict[str, Any]:
        return {"strategy": self.name, "eps": self.eps, "step": self.step, "steps": self.steps}

    def batch_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   epoch: int) -> torch.Tensor:
        resample(model)
        x_adv = pgd_examples(model, x, y, eps=self.eps, step=self.step, steps=self.steps)
        resample(model)
        return multitask_loss(model(x_adv), y)


def default_strategy(config: TrainConfig) -> TrainingStrategy:
    if config.adversarial:
        return AdversarialTraining(config.adv_eps, config.adv_step, config.adv_steps)
    return TrainingStrategy()


def train_model(model: nn.Module, data: LoadedDataset, config: TrainConfig, device: torch.device,
                *, progress: bool = True, strategy: TrainingStrategy | None = None) -> TrainResult:
    """Train in place and load the best-on-validation weights into ``model``."""
    recipe = RECIPES[config.recipe]
    strategy = strategy or default_strategy(config)
    torch.manual_seed(config.seed)
    model.to(device)
    optimizer = _optimizer(strategy.param_groups(model, recipe.weight_decay), recipe)
    scheduler = _scheduler(optimizer, recipe, config.epochs)
    generator = torch.Generator().manual_seed(config.seed)
    n = len(data.train)
    steps = math.ceil(n / config.batch_size)
    best_key: tuple[float, float] = (-math.inf, -math.inf)
    best_score: SplitScore | None = None
    best_state: dict[str, torch.Tensor] = copy.deepcopy(model.state_dict())
    best_epoch, since_best, history = 0, 0, []
    settle_order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed + 1))
    started = time.perf_counter()
    columns = (TextColumn("[bold]train[/] epoch {task.fields[epoch]}"), BarColumn(),
               MofNCompleteColumn(), TextColumn("{task.fields[status]}"), TimeElapsedColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("train", total=steps * config.epochs, epoch=1, status="")
        for epoch in range(1, config.epochs + 1):
            model.train()
            strategy.on_epoch_start(model, epoch)
            order = torch.randperm(n, generator=generator)
            running = 0.0
            for step in range(steps):
                idx = order[step * config.batch_size:(step + 1) * config.batch_size]
                x, y = data.train.x[idx].to(device), data.train.y[idx].to(device)
                loss = strategy.batch_loss(model, x, y, epoch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                strategy.after_step(model, epoch)
                running += loss.item() * len(idx)
                bar.update(task, advance=1, epoch=epoch)
            if config.bn_settle == "recalibrate":
                settle_batchnorm(model, data.train.x[settle_order], data.train.y[settle_order],
                                 lambda m, xb, yb, e=epoch: strategy.batch_loss(m, xb, yb, e),
                                 device, config.batch_size)
            score = score_split(model, data.val, device)
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(score.loss if math.isfinite(score.loss) else math.inf)
            else:
                scheduler.step()
            record = {"epoch": epoch, "train_loss": running / n, "val_accuracy": score.accuracy,
                      "val_loss": score.loss, "val_auc": score.auc, "lr": optimizer.param_groups[0]["lr"]}
            history.append(record)
            shown_auc = score.auc if score.auc is not None else math.nan
            bar.update(task, status=f"loss {record['train_loss']:.3f}  val acc {score.accuracy:.3f}  "
                                    f"val auc {shown_auc:.3f}")
            if best_score is None or score.selection_key() > best_key:
                best_key, best_score, best_epoch, since_best = score.selection_key(), score, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                since_best += 1
            if recipe.early_stop is not None and since_best >= recipe.early_stop:
                break
    model.load_state_dict(best_state)
    model.eval()
    assert best_score is not None
    return TrainResult(best_epoch=best_epoch, val_accuracy=best_score.accuracy, val_loss=best_score.loss,
                       history=history, seconds=time.perf_counter() - started, val_auc=best_score.auc,
                       val_recall=best_score.recall)
