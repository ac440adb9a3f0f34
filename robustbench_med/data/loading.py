"""Load a registered dataset as train/val/test tensors for a model.

One entry point, :func:`load_dataset`, for every source: MedMNIST files,
image folders, and paired datasets (``d12+d14``, MAIL's m = 2 modalities).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from robustbench_med.data.folder_source import load_folder
from robustbench_med.data.medmnist_source import SOURCE_SIZE, load_medmnist
from robustbench_med.data.spec import DataInfo, DatasetSpec, LoadedDataset, Split, TaskInfo
from robustbench_med.data.transforms import augment_4x, resize, to_tensor
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


def load_dataset(name: str, *, data_root: str | Path | None = None, image_size: int = 128,
                 augment: bool = False, n_train: int | None = None, n_val: int | None = None,
                 n_test: int | None = None, download: bool = False) -> LoadedDataset:
    """Train/val/test splits of ``name`` (``d12``, ``pneumoniamnist``, or a pair ``d12+d14``)."""
    if not 8 <= image_size <= 1024:
        raise BadInputError(f"--image-size must be between 8 and 1024 pixels, got {image_size}")
    if "+" in name:
        from robustbench_med.data.pairing import load_pair

        return load_pair(name, data_root=data_root, image_size=image_size, augment=augment,
                         n_train=n_train, n_val=n_val, n_test=n_test, download=download)
    spec = dataset_spec(name)
    splits, provenance = load_single(spec, data_root=data_root, image_size=image_size,
                                     download=download)
    train = subset(splits["train"], n_train)
    val = subset(splits["val"], n_val)
    test = subset(splits["test"], n_test)
    mean, std = channel_stats(train.x)
    if augment:
        train = Split(*augment_4x(train.x, train.y))
    info = DataInfo(dataset=spec.id, channels=spec.channels, image_size=image_size,
                    tasks=(TaskInfo(spec.id, spec.n_classes or 0),), mean=(mean,), std=(std,))
    provenance.update(channels=spec.channels, channel_policy="native" if spec.source == "medmnist"
                      else "rgb", augment=augment, n_train=len(train), n_val=len(val),
                      n_test=len(test), image_size=image_size, test_subset=n_test)
    return LoadedDataset(info=info, train=train, val=val, test=test, provenance=provenance)
