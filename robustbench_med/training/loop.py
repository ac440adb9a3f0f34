"""The training loop: epochs of a strategy's batch losses, then the best-on-validation weights.

Before every validation pass BatchNorm statistics are settled
(:mod:`robustbench_med.batchnorm_settle`, ``bn_settle="recalibrate"``,
recorded with the checkpoint); the kept epoch is picked by
:meth:`~robustbench_med.training.scoring.SplitScore.selection_key`, and a kept
model that is right on one validation class only is flagged in the result.
Progress leaves as one :class:`~robustbench_med.events.Event` per epoch.
"""

from __future__ import annotations

import copy
import math
import time

import torch
from torch import nn

from robustbench_med.batchnorm_settle import settle_batchnorm
from robustbench_med.data.spec import LoadedDataset
from robustbench_med.device import place_model
from robustbench_med.events import Progress, emit
from robustbench_med.training.clock import TrainingClock
from robustbench_med.training.config import TrainConfig, TrainResult
from robustbench_med.training.optim import optimizer as make_optimizer
from robustbench_med.training.optim import scheduler as make_scheduler
from robustbench_med.training.recipes import RECIPES
from robustbench_med.training.scoring import SplitScore, score_split
from robustbench_med.training.step import BatchStepper
from robustbench_med.training.strategies import TrainingStrategy, default_strategy


def train_model(model: nn.Module, data: LoadedDataset, config: TrainConfig, device: torch.device,
                *, progress: Progress | None = None,
                strategy: TrainingStrategy | None = None) -> TrainResult:
    """Train in place and load the best-on-validation weights into ``model``; ``progress`` hears
    one "training" event per epoch (its ``data`` is the epoch's history record)."""
    recipe = RECIPES[config.recipe]
    strategy = strategy or default_strategy(config)
    torch.manual_seed(config.seed)
    place_model(model, device)
    optimizer = make_optimizer(strategy.param_groups(model, recipe.weight_decay), recipe)
    stepper = BatchStepper(model, optimizer, device, config.amp)
    scheduler = make_scheduler(optimizer, recipe, config.epochs)
    generator = torch.Generator().manual_seed(config.seed)
    n = len(data.train)
    steps = math.ceil(n / config.batch_size)
    best_key: tuple[float, float] = (-math.inf, -math.inf)
    best_score: SplitScore | None = None
    best_state: dict[str, torch.Tensor] = copy.deepcopy(model.state_dict())
    best_epoch, since_best, history = 0, 0, []
    settle_order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed + 1))
    started = time.perf_counter()
    clock = TrainingClock(progress, epochs=config.epochs, steps_per_epoch=steps)
    for epoch in range(1, config.epochs + 1):
        model.train()
        strategy.on_epoch_start(model, epoch)
        order = torch.randperm(n, generator=generator)
        running = 0.0
        for step in range(steps):
            idx = order[step * config.batch_size:(step + 1) * config.batch_size]
            x, y = data.train.x[idx].to(device), data.train.y[idx].to(device)
            loss = stepper.step(lambda xb, yb, e=epoch: strategy.batch_loss(model, xb, yb, e), x, y)
            strategy.after_step(model, epoch)
            running += loss.item() * len(idx)
            clock.step_done()  # after .item(): the step has finished on any device
        if config.bn_settle == "recalibrate":
            settle_batchnorm(model, data.train.x[settle_order], data.train.y[settle_order],
                             lambda m, xb, yb, e=epoch: strategy.batch_loss(m, xb, yb, e),
                             device, stepper.micro_batch or config.batch_size)
        score = score_split(model, data.val, device)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(score.loss if math.isfinite(score.loss) else math.inf)
        else:
            scheduler.step()
        record = {"epoch": epoch, "train_loss": running / n, "val_accuracy": score.accuracy,
                  "val_loss": score.loss, "val_auc": score.auc, "lr": optimizer.param_groups[0]["lr"]}
        if stepper.micro_batch is not None:  # out-of-memory back-off (training/step.py)
            record["micro_batch"] = stepper.micro_batch
        history.append(record)
        shown_auc = score.auc if score.auc is not None else math.nan
        emit(progress, "training", f"train epoch {epoch}/{config.epochs}: loss {record['train_loss']:.3f}  "
             f"val acc {score.accuracy:.3f}  val auc {shown_auc:.3f}  "
             f"({time.perf_counter() - started:.0f} s)", level="detail", data=record)
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
