"""Datasets D1..D20: registry cards, loaders, splits and the paper's augmentation."""

from robustbench_med.data.loading import dataset_spec, load_dataset
from robustbench_med.data.spec import DataInfo, DatasetSpec, LoadedDataset, Split, TaskInfo

__all__ = ["DataInfo", "DatasetSpec", "LoadedDataset", "Split", "TaskInfo", "dataset_spec",
           "load_dataset"]
