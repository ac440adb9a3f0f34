"""Obtain a trained model: from a checkpoint file, from the zoo, or by training one now.

This is the only step that trains; evaluation (:mod:`robustbench_med.evaluation.runner`)
takes the models it is given, the transfer attacks' surrogate included.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from robustbench_med.data.spec import LoadedDataset
from robustbench_med.errors import BadInputError, MedrobustError
from robustbench_med.events import Progress, emit
from robustbench_med.models.builder import build_model, check_buildable
from robustbench_med.models.zoo import Checkpoint, ModelConfig, Zoo, load_checkpoint
from robustbench_med.training.config import TrainConfig
from robustbench_med.training.loop import train_model
from robustbench_med.training.scoring import score_split
from robustbench_med.training.strategies import TrainingStrategy, default_strategy


@dataclass(frozen=True)
class ModelRequest:
    """Which model to get, and how it is (or was) trained."""

    model: str
    dataset: str
    image_size: int
    train: TrainConfig = field(default_factory=TrainConfig)
    defense: str | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    defense_options: dict[str, Any] = field(default_factory=dict)
    augment: bool = True
    n_train: int | None = None
    n_val: int | None = None

    def config(self) -> ModelConfig:
        from robustbench_med.registry import DEFENSES, MODELS

        defense = DEFENSES.resolve(self.defense) if self.defense else None
        # A defense's own recipe may train adversarially with the PGD settings: they are then
        # part of the checkpoint's identity even without --adversarial.
        has_recipe = defense is not None and getattr(DEFENSES.get(defense), "strategy", None) is not None
        return ModelConfig(
            model=MODELS.resolve(self.model), dataset=self.dataset, image_size=self.image_size,
            defense=defense,
            model_options=dict(self.model_options), defense_options=dict(self.defense_options),
            train=self.train.to_dict(keep_adversarial=has_recipe),
            data={"augment": self.augment, "n_train": self.n_train, "n_val": self.n_val},
        )


class OneClassWarning(UserWarning):
    """A trained model that is right on one class only: no robustness row of it means anything."""


def strategy_for(request: ModelRequest) -> TrainingStrategy:
    """The defense's own training recipe when it has one, else standard or PGD-AT training."""
    if request.defense:
        from robustbench_med.registry import DEFENSES

        plugin = DEFENSES.get(request.defense)
        make = getattr(plugin, "strategy", None)
        if callable(make):
            return make(request.train, request.defense_options)
    return default_strategy(request.train)


def train_and_save(request: ModelRequest, data: LoadedDataset, zoo: Zoo, device: torch.device,
                   *, progress: Progress | None = None) -> Checkpoint:
    """Train ``request`` on ``data``, store it in the zoo with its sidecar, and load it back;
    ``progress`` hears one event per epoch."""
    config = request.config()
    model = build_model(config.model, data.info, defense=config.defense,
                        model_options=config.model_options, defense_options=config.defense_options,
                        seed=request.train.seed)
    strategy = strategy_for(request)
    result = train_model(model, data, request.train, device, progress=progress, strategy=strategy)
    test = score_split(model, data.test, device)
    metrics = {
        "best_epoch": result.best_epoch, "epochs_run": len(result.history),
        "val_accuracy": result.val_accuracy, "val_loss": result.val_loss, "val_auc": result.val_auc,
        "val_recall": [{str(c): r for c, r in t.items()} for t in result.val_recall],
        "selection": result.selection, "one_class": result.one_class,
        "test_accuracy": test.accuracy, "test_auc": test.auc, "n_test": len(data.test),
        "train_seconds": result.seconds,
        "device": str(device), "history": result.history, "data": data.provenance,
        "strategy": strategy.describe(),
    }
    if result.one_class:
        warnings.warn(f"{config.label} on {config.dataset}: the kept epoch ({result.best_epoch}) is right on "
                      "one validation class only (a constant predictor); its robustness rows will read as "
                      "that class's share", OneClassWarning, stacklevel=2)
    path = zoo.save(model, config, data.info, metrics)
    return load_checkpoint(path, device)


def obtain_model(request: ModelRequest, data: LoadedDataset, zoo: Zoo, device: torch.device,
                 events: Progress | None = None, *, checkpoint: Path | None = None,
                 progress: bool = True) -> Checkpoint:
    """A trained model for ``request``: the given file, the zoo's copy, or a fresh training run.
    ``events`` hears what happens; ``progress`` adds training's per-epoch events to them."""
    if checkpoint is not None:
        loaded = load_checkpoint(checkpoint, device)
        if loaded.config.dataset != request.dataset or loaded.info.image_size != data.info.image_size:
            raise BadInputError(
                f"checkpoint {checkpoint} was trained on {loaded.config.dataset} at "
                f"{loaded.config.image_size}px, not {request.dataset} at {request.image_size}px"
            )
        return loaded
    config = request.config()
    path = zoo.find(config)
    if path is not None:
        emit(events, "model", f"using checkpoint {path}", level="detail")
        return load_checkpoint(path, device)
    check_buildable(config.model, data.info, defense=config.defense, model_options=config.model_options,
                    defense_options=config.defense_options)
    strategy_for(request)  # a defense's recipe reads its options too: refuse them before training
    emit(events, "training", f"no checkpoint for {config.label} on {config.dataset} at {config.image_size}px "
                  f"({request.train.epochs} epochs, recipe {request.train.recipe}"
                  f"{', adversarial' if request.train.adversarial else ''}): training it now")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OneClassWarning)  # said as an event below
        trained = train_and_save(request, data, zoo, device, progress=events if progress else None)
    if trained.metrics.get("one_class"):
        emit(events, "training", "warning: the trained model is right on one validation class only (a "
             "constant predictor); its robustness rows will read as that class's share", level="warning")
    emit(events, "model", f"saved {trained.path} (val acc {trained.metrics['val_accuracy']:.3f}, "
         f"test acc {trained.metrics['test_accuracy']:.3f})")
    return trained


SURROGATE_SEED_OFFSET = 1000  # a surrogate never shares the target's seed (same arch = same weights)


def surrogate_request(request: ModelRequest, surrogate: str) -> ModelRequest:
    """The paper's black-box surrogate for ``request``: ``surrogate`` (a ResNet101 in the paper)
    trained plainly on the same data, with its own seed."""
    plain = dataclasses.replace(request, model=surrogate, defense=None, model_options={},
                                defense_options={})
    return dataclasses.replace(plain, train=dataclasses.replace(
        request.train, adversarial=False, seed=request.train.seed + SURROGATE_SEED_OFFSET))


def obtain_surrogate(request: ModelRequest, data: LoadedDataset, zoo: Zoo, device: torch.device,
                     surrogate: str, events: Progress | None = None, *,
                     progress: bool = True) -> torch.nn.Module:
    """The transfer attacks' surrogate, from the zoo or trained now (before any attack runs)."""
    if data.info.modalities != 1:
        raise MedrobustError("transfer attacks need a single dataset (a surrogate is trained on "
                             f"one dataset), got the pair {data.info.dataset}")
    emit(events, "surrogate", f"surrogate for transfer attacks: {surrogate}", level="detail")
    return obtain_model(surrogate_request(request, surrogate), data, zoo, device, events,
                        progress=progress).model.eval()
