"""What a dataset is (its registry card) and what a loaded dataset hands a model."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class DatasetSpec:
    """The registry card of one paper dataset (Table 7 of the paper).

    ``channels`` pins the channel policy (MedMNIST #60: it changes results):
    images are loaded with this many channels, and it is recorded with results.
    """

    id: str
    name: str
    modality: str
    task: str  # "binary", "multiclass", "ordinal" (scored as multiclass) or "segmentation"
    n_classes: int | None
    n_samples: int | None
    split: str
    source_url: str
    licence: str
    layout: str
    channels: int = 3
    class_names: tuple[str, ...] = ()
    source: str = "folder"  # "medmnist", "folder", "csv" or "unsupported"
    medmnist_flag: str | None = None
    folder: str | None = None
    pattern: str = "*"  # glob of a class folder's images, relative to that folder
    csv: tuple[str, str, str] | None = None  # (metadata file, image-id column, label column)

    @property
    def supported(self) -> bool:
        return self.source != "unsupported"


@dataclass(frozen=True)
class TaskInfo:
    """One classification task: a dataset's labels, scored by its own head."""

    name: str
    n_classes: int


@dataclass(frozen=True)
class DataInfo:
    """Everything a model factory needs to know about its input and output.

    ``mean``/``std`` are per modality and per channel, measured on the training
    split; models normalise inside themselves with them (inputs stay in [0, 1]).
    """

    dataset: str
    channels: int
    image_size: int
    tasks: tuple[TaskInfo, ...]
    mean: tuple[tuple[float, ...], ...]
    std: tuple[tuple[float, ...], ...]

    @property
    def modalities(self) -> int:
        return len(self.tasks)

    @property
    def n_classes(self) -> int:
        """Classes of the first task (the only one for a single dataset)."""
        return self.tasks[0].n_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input: (C, H, W), or (m, C, H, W) for a paired run."""
        chw = (self.channels, self.image_size, self.image_size)
        return chw if self.modalities == 1 else (self.modalities, *chw)


@dataclass
class Split:
    """Images in [0, 1] (N, C, H, W) or (N, m, C, H, W) and labels (N,) or (N, m)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def take(self, index: torch.Tensor) -> Split:
        return Split(self.x[index], self.y[index])


@dataclass
class LoadedDataset:
    """Train/val/test splits ready for a model, with the facts that produced them."""

    info: DataInfo
    train: Split
    val: Split
    test: Split
    provenance: dict[str, object] = field(default_factory=dict)
