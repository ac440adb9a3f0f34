"""Load a registered dataset as train/val/test tensors for a model.

One entry point, :func:`load_dataset`, for every source: MedMNIST files,
image folders, and paired datasets (``d12+d14``, MAIL's m = 2 modalities).
"""

from __future__ import annotations

from pathlib import Path

from robustbench_med.data.pairing import load_pair
from robustbench_med.data.single import (  # noqa: F401  (dataset_spec, subset: imported from here too)
    SUBSET_SEED,
    channel_stats,
    dataset_spec,
    load_single,
    subset,
)
from robustbench_med.data.spec import DataInfo, LoadedDataset, Split, TaskInfo
from robustbench_med.data.transforms import augment_4x
from robustbench_med.errors import BadInputError


def load_dataset(name: str, *, data_root: str | Path | None = None, image_size: int = 128,
                 augment: bool = False, n_train: int | None = None, n_val: int | None = None,
                 n_test: int | None = None, download: bool = False) -> LoadedDataset:
    """Train/val/test splits of ``name`` (``d12``, ``pneumoniamnist``, or a pair ``d12+d14``)."""
    if not 8 <= image_size <= 1024:
        raise BadInputError(f"--image-size must be between 8 and 1024 pixels, got {image_size}")
    if "+" in name:
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
