"""One registered dataset read from its source: its card, its splits as tensors, fixed subsets.

:mod:`robustbench_med.data.loading` (one dataset or a pair) and
:mod:`robustbench_med.data.pairing` (MAIL's two modalities) both build on it, so
neither imports the other back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from robustbench_med.data.folder_source import load_folder
from robustbench_med.data.medmnist_source import SOURCE_SIZE, load_medmnist
from robustbench_med.data.spec import DatasetSpec, Split
from robustbench_med.data.transforms import resize, to_tensor
from robustbench_med.errors import BadInputError, MedrobustError
from robustbench_med.registry import DATASETS

SUBSET_SEED = 0  # subsets are the same whatever the run's seed, so seeds compare on equal points


def dataset_spec(name: str) -> DatasetSpec:
    """The registry card for ``name``; refuses datasets that cannot be loaded yet."""
    spec: DatasetSpec = DATASETS.get(name)
    if not spec.supported:
        raise MedrobustError(
            f"dataset {spec.id} ({spec.name}) is a {spec.task} dataset; segmentation is not "
            f"supported yet (supported: the classification datasets d1..d16)"
        )
    return spec


def subset(split: Split, n: int | None, seed: int = SUBSET_SEED) -> Split:
    """The first ``n`` points of a fixed seeded shuffle (all points when n is None)."""
    if n is None or n >= len(split):
        return split
    if n <= 0:
        raise BadInputError(f"a subset size must be positive, got {n}")
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:n]
    return split.take(order.sort().values)


def _read_arrays(spec: DatasetSpec, data_root: str | Path | None, image_size: int,
                 download: bool) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, object]]:
    if spec.source == "medmnist":
        arrays, path = load_medmnist(spec, data_root, download)
        return arrays, {"path": str(path), "source_size": SOURCE_SIZE}
    arrays, path = load_folder(spec, data_root, image_size)
    return arrays, {"path": str(path), "source_size": image_size}


def _check_labels(spec: DatasetSpec, y: torch.Tensor) -> None:
    assert spec.n_classes is not None
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= spec.n_classes):
        raise MedrobustError(
            f"dataset {spec.id} has labels outside 0..{spec.n_classes - 1}; the files do not "
            f"match the card (expected {spec.layout})"
        )


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std over (N, C, H, W), for normalisation inside the model."""
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)


def load_single(spec: DatasetSpec, *, data_root: str | Path | None, image_size: int,
                channels: int | None = None,
                download: bool = False) -> tuple[dict[str, Split], dict[str, object]]:
    """All three splits of one dataset as float tensors at ``image_size``, and where they came from."""
    arrays, provenance = _read_arrays(spec, data_root, image_size, download)
    channels = channels or spec.channels
    splits = {}
    for name, (images, labels) in arrays.items():
        x = resize(to_tensor(images, channels), image_size)
        y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        _check_labels(spec, y)
        splits[name] = Split(x, y)
    return splits, provenance
