"""The library's front door: evaluate any ``nn.Module``, and build, load, train and list.

``evaluate`` runs the protocol of ``medrobust run`` (clean-correct points only,
early stop, EOT for randomized models, threat-model and masking checks) on a
model you hand it; it trains nothing. ``medrobust run`` is this plus obtaining
the model (:mod:`robustbench_med.pipeline`). Everything here is re-exported
lazily by ``robustbench_med``, so ``import robustbench_med`` stays cheap.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustbench_med import catalog
from robustbench_med.attacks.spec import check_preset, parse_attacks
from robustbench_med.attacks.square import DEFAULT_QUERIES
from robustbench_med.data.loading import load_dataset as _load_dataset
from robustbench_med.data.spec import DataInfo, LoadedDataset
from robustbench_med.device import resolve_device
from robustbench_med.evaluation.inputs import as_eps, as_names, as_store, points_of
from robustbench_med.evaluation.report import CellResult, Report
from robustbench_med.evaluation.runner import GridRunner, GridSettings
from robustbench_med.evaluation.stored_names import SURROGATE, check_square_queries
from robustbench_med.evaluation.subject import from_checkpoint, from_module
from robustbench_med.events import Event, Progress
from robustbench_med.models.builder import build_model
from robustbench_med.models.zoo import Checkpoint
from robustbench_med.models.zoo import load_checkpoint as _load_checkpoint
from robustbench_med.store import ResultStore
from robustbench_med.training.config import TrainConfig, TrainResult
from robustbench_med.training.loop import train_model

__all__ = ["CellResult", "Checkpoint", "Event", "Report", "ResultStore", "create_model", "evaluate",
           "list_attacks", "list_datasets", "list_defenses", "list_models", "load_checkpoint",
           "load_dataset", "train"]


def evaluate(model: nn.Module | Checkpoint, data: Any, attacks: str | Sequence[str], *,
             eps: float | str | Sequence[float | str] | None = None,
             presets: str | Sequence[str] = ("paper", "standard"), draws: int = 10,
             store: str | Path | ResultStore | None = None, progress: Progress | None = None,
             n_test: int | None = None, device: str | None = None, seed: int = 0, checks: bool = True,
             name: str | None = None, clean_accuracy: float | None = None, image_size: int | None = None,
             data_root: str | Path | None = None, surrogate: nn.Module | Checkpoint | None = None,
             batch_size: int = 128, square_queries: int = DEFAULT_QUERIES) -> Report:
    """Attack ``model`` (images in [0, 1] -> logits, or a tuple of task logits) on ``data`` (a dataset
    name such as ``"d12"``, a loaded dataset, or ``(x, y)`` tensors) with ``attacks`` (names, as a
    list or a comma string) under ``presets`` at ``eps`` (default: the preset's 4/255).

    ``clean_accuracy`` is the accuracy you recorded for the model on the same points: a gap above
    2 points is an error (a model that normalises outside itself fails here); a checkpoint brings its
    own. ``store`` (a folder, a ``.sqlite`` path or a ResultStore) receives the rows ``medrobust run``
    writes, keyed by ``name`` (default: the class name) and the content hash of the weights;
    without it nothing is written. ``progress`` receives :class:`Event` s (``progress=print`` shows
    them). The model is put in eval mode and moved to ``device``. Transfer attacks need ``surrogate``.
    ``square_queries`` is Square's query budget (``square``, ``square-surrogate``, and Square inside
    ``autoattack`` and ``aa-surrogate``); another than AutoAttack's 5000 is part of the stored name
    (``square-500``, ``autoattack[square-500]``).
    """
    attack_names = as_names(attacks, "attack")
    parse_attacks(attack_names)  # a bad name fails before any data is read
    preset_names = tuple(p.strip() for p in as_names(presets, "preset").split(",") if p.strip())
    for preset in preset_names:
        check_preset(preset)
    check_square_queries(square_queries)
    eps_values = as_eps(eps)
    dev = resolve_device(device)
    net = model.model if isinstance(model, Checkpoint) else model
    if image_size is None:
        image_size = model.info.image_size if isinstance(model, Checkpoint) else 128
    points = points_of(data, net, n_test=n_test, image_size=image_size, data_root=data_root, device=dev)
    if isinstance(model, Checkpoint):
        subject = from_checkpoint(model)
        if clean_accuracy is not None:
            subject = dataclasses.replace(subject, recorded_accuracy=clean_accuracy, recorded_n=None,
                                          source="clean_accuracy= (the accuracy you recorded)")
    else:
        subject = from_module(model, dataset=points.dataset, name=name, seed=seed,
                              clean_accuracy=clean_accuracy)
    surrogate_net, surrogate_name = None, SURROGATE
    if surrogate is not None:
        surrogate_net = (surrogate.model if isinstance(surrogate, Checkpoint) else surrogate).to(dev).eval()
        surrogate_name = (surrogate.config.model if isinstance(surrogate, Checkpoint)
                          else type(surrogate).__name__.lower())
    settings = GridSettings(attacks=attack_names, presets=preset_names, eps=eps_values, draws=draws,
                            batch_size=batch_size, seed=seed, checks=checks, subset=points.subset,
                            surrogate_name=surrogate_name, square_queries=square_queries)
    report = GridRunner(subject, points.test, points.info, settings, device=dev, store=as_store(store),
                        surrogate=surrogate_net, progress=progress).run()
    if isinstance(model, Checkpoint):
        report.checkpoint = model
    return report


def _info(dataset: str | LoadedDataset | DataInfo, image_size: int,
          data_root: str | Path | None) -> DataInfo:
    if isinstance(dataset, DataInfo):
        return dataset
    if isinstance(dataset, LoadedDataset):
        return dataset.info
    return _load_dataset(dataset, data_root=data_root, image_size=image_size).info


def create_model(name: str, dataset: str | LoadedDataset | DataInfo = "d12", defense: str | None = None,
                 image_size: int = 128, *, defense_options: dict[str, Any] | None = None,
                 seed: int | None = 0, data_root: str | Path | None = None, **options: Any) -> nn.Module:
    """A registered model, untrained, for ``dataset``'s channels and classes, normalising inside with
    the training split's statistics (read from the data when given by name); ``options`` are the
    model's (``medrobust list models``), ``defense_options`` the defense's."""
    info = _info(dataset, image_size, data_root)
    return build_model(name, info, defense=defense, model_options=options,
                       defense_options=defense_options, seed=seed)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """A zoo checkpoint: ``.model`` (in eval mode), ``.config``, ``.metrics`` (its recorded test
    accuracy, which ``evaluate`` checks), ``.sha256`` (its identity in the store)."""
    return _load_checkpoint(path, device)


def load_dataset(name: str, split: str | None = None, *, image_size: int = 128,
                 data_root: str | Path | None = None, n_train: int | None = None, n_val: int | None = None,
                 n_test: int | None = None, augment: bool = False,
                 download: bool = False) -> LoadedDataset | tuple[torch.Tensor, torch.Tensor]:
    """A registered dataset at ``image_size``: all splits (a LoadedDataset), or one split's
    ``(x, y)`` with x in [0, 1]. Subsets of ``n_*`` points are fixed, whatever the seed."""
    data = _load_dataset(name, data_root=data_root, image_size=image_size, augment=augment,
                         n_train=n_train, n_val=n_val, n_test=n_test, download=download)
    if split is None:
        return data
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, got {split!r}")
    part = getattr(data, split)
    return part.x, part.y


def train(model: nn.Module, data: str | LoadedDataset, *, recipe: str = "paper", epochs: int = 200,
          batch_size: int = 32, seed: int = 0, adversarial: bool = False, device: str | None = None,
          image_size: int = 128, data_root: str | Path | None = None, n_train: int | None = None,
          n_val: int | None = None, progress: Progress | None = None) -> TrainResult:
    """Train ``model`` in place with a benchmark recipe (``paper``, ``code``, ``fast``, ``medmnist``)
    and keep the epoch with the best validation AUC; ``adversarial`` is PGD training (paper Alg. 2)."""
    if isinstance(data, str):
        data = _load_dataset(data, data_root=data_root, image_size=image_size, n_train=n_train,
                             n_val=n_val)
    config = TrainConfig(recipe=recipe, epochs=epochs, batch_size=batch_size, seed=seed,
                         adversarial=adversarial)
    return train_model(model, data, config, resolve_device(device), progress=progress)


def _names(listing: catalog.Listing) -> list[str]:
    return [row["name"] for row in listing.rows]


def list_models(pattern: str | None = None, *, family: str | None = None, randomized: bool | None = None,
                grep: str | None = None) -> list[str]:
    """Model names, as ``medrobust list models`` filters them: a shell pattern on names and aliases
    as timm's (``"mail*"``), a family, randomized or not, text in any field. One model's options,
    types and defaults: ``robustbench_med.catalog.detail("models", name)``."""
    return _names(catalog.select("models", pattern, family=family, randomized=randomized, grep=grep))


def list_attacks(pattern: str | None = None, *, grep: str | None = None) -> list[str]:
    """Listed attack names (any ``<family>-K`` also works, e.g. ``pgd-37``)."""
    names = [name for row in catalog.select("attacks", grep=grep).rows for name in row["names"]]
    return names if pattern is None else [n for n in names if fnmatch.fnmatchcase(n, pattern.lower())]


def list_defenses(pattern: str | None = None, *, randomized: bool | None = None,
                  grep: str | None = None) -> list[str]:
    return _names(catalog.select("defenses", pattern, randomized=randomized, grep=grep))


def list_datasets(pattern: str | None = None, *, grep: str | None = None) -> list[str]:
    return _names(catalog.select("datasets", pattern, grep=grep))
