"""Read a MedMNIST dataset (D11..D16) with the ``medmnist`` package.

The package owns the file format, the split names and the download; we only
choose the root, check that the file is there, and give a clear error if not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robustbench_med.data.roots import candidate_roots, download_root
from robustbench_med.data.spec import DatasetSpec
from robustbench_med.errors import DataMissingError

SOURCE_SIZE = 28  # the file size we read; pinned so results never depend on which files exist


def _file_name(flag: str) -> str:
    return f"{flag}.npz" if SOURCE_SIZE == 28 else f"{flag}_{SOURCE_SIZE}.npz"


def locate(spec: DatasetSpec, data_root: str | Path | None) -> Path | None:
    """The ``medmnist/`` folder of the first data root that holds this dataset's file."""
    for root in candidate_roots(data_root):
        folder = root / "medmnist"
        if (folder / _file_name(spec.medmnist_flag or "")).is_file():
            return folder
    return None


def _data_class(flag: str) -> type:
    import medmnist

    return getattr(medmnist, medmnist.INFO[flag]["python_class"])


def load_medmnist(spec: DatasetSpec, data_root: str | Path | None,
                  download: bool = False) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], Path]:
    """Arrays ``{split: (uint8 images, int64 labels)}`` for train/val/test, and the folder read."""
    flag = spec.medmnist_flag or ""
    folder = locate(spec, data_root)
    if folder is None and download:
        folder = download_root(data_root) / "medmnist"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            _data_class(flag)(split="train", root=str(folder), download=True, size=SOURCE_SIZE)
        except Exception as exc:
            raise DataMissingError(
                f"could not download dataset {spec.id} ({spec.name}) from {spec.source_url} "
                f"into {folder}: {type(exc).__name__}: {exc}"
            ) from exc
    if folder is None:
        searched = ", ".join(str(r) for r in candidate_roots(data_root))
        raise DataMissingError(
            f"dataset {spec.id} ({spec.name}) not found in the data roots [{searched}]: expected "
            f"{spec.layout}; get it from {spec.source_url} (licence {spec.licence}) or pass --download"
        )
    arrays = {}
    for split in ("train", "val", "test"):
        try:
            ds = _data_class(flag)(split=split, root=str(folder), download=False, size=SOURCE_SIZE)
            arrays[split] = (np.asarray(ds.imgs), np.asarray(ds.labels).reshape(len(ds.imgs), -1)[:, 0])
        except Exception as exc:
            raise DataMissingError(
                f"dataset {spec.id} file {folder / _file_name(flag)} is unreadable or corrupt "
                f"({type(exc).__name__}: {exc}); replace it with the official file from {spec.source_url}"
            ) from exc
    return arrays, folder / _file_name(flag)
