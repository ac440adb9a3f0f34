"""Turn what a notebook hands :func:`robustbench_med.evaluate` into test points and their facts.

Data may be a dataset name, a loaded dataset, a split, or ``(x, y)`` tensors.
Tensors are checked against the model contract first: images in [0, 1]. A
model that normalises outside itself would be attacked in the wrong space and
its numbers would mean nothing (AutoAttack #13, RobustBench #105).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustbench_med.attacks.eps import parse_eps, parse_eps_list
from robustbench_med.data.loading import load_dataset, subset
from robustbench_med.data.spec import DataInfo, LoadedDataset, Split, TaskInfo
from robustbench_med.errors import BadInputError
from robustbench_med.evaluation.runner import subset_label
from robustbench_med.models.classifier import task_logits
from robustbench_med.store import STORE_NAME, ResultStore


@dataclass(frozen=True)
class EvalPoints:
    """The points to evaluate, what they are, and the names their rows are stored under."""

    test: Split
    info: DataInfo
    dataset: str
    subset: str


def as_names(value: str | Sequence[str], what: str) -> str:
    """``["pgd-10", "bim-10"]`` or ``"pgd-10,bim-10"`` -> the comma string the parsers take."""
    if isinstance(value, str):
        return value
    names = [str(v).strip() for v in value]
    if not names:
        raise BadInputError(f"no {what} given")
    return ",".join(names)


def as_eps(eps: float | str | Sequence[float | str] | None) -> tuple[float, ...]:
    """None (the preset's 4/255), a number, ``"4/255,8/255"``, ``"0.01:0.1:10"`` or a list."""
    if eps is None:
        return ()
    if isinstance(eps, str):
        return tuple(parse_eps_list(eps))
    if isinstance(eps, (int, float)):
        return (parse_eps(float(eps)),)
    return tuple(sorted({parse_eps(e) for e in eps}))


def as_store(store: str | Path | ResultStore | None) -> ResultStore | None:
    """A store, a results folder (its ``results.sqlite``, as ``--results-dir``), or a ``.sqlite`` path."""
    if store is None or isinstance(store, ResultStore):
        return store
    path = Path(store)
    return ResultStore(path if path.suffix in (".sqlite", ".db") else path / STORE_NAME)


def check_pixel_range(x: torch.Tensor) -> None:
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise BadInputError(
            f"images must lie in [0, 1] (these span {lo:.3f}..{hi:.3f}): attacks perturb pixels, so "
            "normalisation belongs inside the model, e.g. nn.Sequential(Normalize(mean, std), net)")


def _digest(x: torch.Tensor, y: torch.Tensor) -> str:
    digest = hashlib.sha256()
    for t in (x, y):
        t = t.detach().cpu().contiguous()
        digest.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:8]


@torch.no_grad()
def _infer_info(model: nn.Module, x: torch.Tensor, y: torch.Tensor, label: str,
                device: torch.device) -> DataInfo:
    """Tasks and classes from one forward pass on two points (the model declares its outputs)."""
    model.to(device).eval()
    try:
        outputs = task_logits(model(x[:2].to(device)))
    except RuntimeError as exc:
        raise BadInputError(f"the model cannot take images of shape {tuple(x.shape[1:])}: "
                            f"{str(exc).splitlines()[0]}") from None
    modalities = x.shape[1] if x.ndim == 5 else 1
    if len(outputs) != modalities or (modalities > 1 and (y.ndim != 2 or y.shape[1] != modalities)):
        raise BadInputError(f"the model returns {len(outputs)} task logits for images of shape "
                            f"{tuple(x.shape[1:])} and labels of shape {tuple(y.shape[1:])}: one task "
                            "takes (N, C, H, W) and (N,); m paired tasks (N, m, C, H, W) and (N, m)")
    labels = y if y.ndim == 2 else y[:, None]
    tasks = []
    for i, logits in enumerate(outputs):
        if logits.ndim != 2:
            raise BadInputError("the model must return logits of shape (N, classes), got "
                                f"{tuple(logits.shape)}")
        if len(labels) and int(labels[:, i].max()) >= logits.shape[1]:
            raise BadInputError(f"the labels reach {int(labels[:, i].max())}, but the model has "
                                f"{logits.shape[1]} classes")
        tasks.append(TaskInfo(label if modalities == 1 else f"task{i + 1}", int(logits.shape[1])))
    channels = int(x.shape[-3])
    return DataInfo(dataset=label, channels=channels, image_size=int(x.shape[-1]), tasks=tuple(tasks),
                    mean=((0.0,) * channels,) * modalities, std=((1.0,) * channels,) * modalities)


def points_of(data: Any, model: nn.Module, *, n_test: int | None, image_size: int,
                data_root: str | Path | None, device: torch.device) -> EvalPoints:
    """The test points of ``data`` (a fixed seeded subset of ``n_test`` when given)."""
    if isinstance(data, str):
        loaded = load_dataset(data, data_root=data_root, image_size=image_size, n_test=n_test)
        return EvalPoints(loaded.test, loaded.info, loaded.info.dataset,
                          subset_label(n_test, len(loaded.test)))
    if isinstance(data, LoadedDataset):
        test = subset(data.test, n_test)
        requested = n_test if n_test is not None else data.provenance.get("test_subset")
        return EvalPoints(test, data.info, data.info.dataset, subset_label(requested, len(test)))
    if isinstance(data, Split):
        x, y = data.x, data.y
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = (torch.as_tensor(t) for t in data)
    else:
        raise BadInputError("data must be a dataset name (d12), a loaded dataset, a Split or (x, y) "
                            f"tensors, got {type(data).__name__}")
    if not x.is_floating_point() or x.ndim not in (4, 5) or len(x) != len(y):
        raise BadInputError(f"x must be float images (N, C, H, W) with one label each; got x "
                            f"{tuple(x.shape)} {x.dtype}, y {tuple(y.shape)}")
    check_pixel_range(x)
    test = subset(Split(x, y.long()), n_test)
    label = f"tensors-{_digest(x, y)}"
    return EvalPoints(test, _infer_info(model, test.x, test.y, label, device), label,
                      f"given[{len(test)}]")
