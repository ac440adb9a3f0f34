"""What is evaluated: a model, the names its rows are stored under, and what was recorded with it.

A checkpoint carries all of it (:func:`from_checkpoint`); a model built in a
notebook gets a name and the content hash of its weights (:func:`from_module`),
so two different networks under one name never share a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from robustbench_med.models.zoo import Checkpoint, content_sha256


@dataclass(frozen=True)
class Subject:
    """The model and its identity. ``recorded_accuracy`` is the clean accuracy measured when it was
    made, on ``recorded_n`` points (None: on exactly the points evaluated now); evaluation refuses
    a model that no longer reaches it (a normalisation or data mismatch, RobustBench #105)."""

    model: nn.Module
    name: str
    dataset: str
    checkpoint_sha: str
    defense: str = ""
    seed: int = 0
    recorded_accuracy: float | None = None
    recorded_n: int | None = None
    training: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # where the recorded accuracy comes from, for the error message

    @property
    def label(self) -> str:
        return self.name if not self.defense else f"{self.name}+{self.defense}"


def training_budget(ckpt: Checkpoint) -> dict[str, Any]:
    """How the evaluated model was trained, recorded with its clean row."""
    train, data = ckpt.config.train, ckpt.config.data
    return {"epochs": train.get("epochs"), "recipe": train.get("recipe"),
            "batch_size": train.get("batch_size"), "image_size": ckpt.config.image_size,
            "augment": data.get("augment"), "n_train": data.get("n_train"),
            "adversarial": train.get("adversarial", False),
            "best_epoch": ckpt.metrics.get("best_epoch"), "device": ckpt.metrics.get("device"),
            "selection": ckpt.metrics.get("selection", "val_accuracy"),
            "bn_settle": train.get("bn_settle", "none")}


def from_checkpoint(ckpt: Checkpoint) -> Subject:
    """A zoo checkpoint: its config names the rows, its metrics hold the recorded accuracy (checked
    only for a single dataset, on as many test points as it was recorded on)."""
    c = ckpt.config
    single = ckpt.info.modalities == 1
    return Subject(model=ckpt.model, name=c.model, dataset=c.dataset, checkpoint_sha=ckpt.sha256,
                   defense=c.defense or "", seed=int(c.train.get("seed", 0)),
                   recorded_accuracy=ckpt.metrics.get("test_accuracy") if single else None,
                   recorded_n=ckpt.metrics.get("n_test") or -1, training=training_budget(ckpt),
                   source=f"checkpoint {ckpt.path}")


def state_sha256(model: nn.Module) -> str:
    """The content hash of a model's weights and buffers (as a checkpoint's identity, without config)."""
    return content_sha256(dict(model.state_dict()), "", "")


def from_module(model: nn.Module, *, dataset: str, name: str | None = None, seed: int = 0,
                clean_accuracy: float | None = None) -> Subject:
    """Any ``nn.Module``: named by ``name`` (default: its class name), identified by its weights."""
    return Subject(model=model, name=name or type(model).__name__, dataset=dataset,
                   checkpoint_sha=state_sha256(model), seed=seed, recorded_accuracy=clean_accuracy,
                   recorded_n=None, source="clean_accuracy= (the accuracy you recorded)")
