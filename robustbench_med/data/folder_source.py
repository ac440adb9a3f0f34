"""Read an image-folder dataset (D1..D10) in the layout of its public release.

torchvision's ``ImageFolder`` wants the class folders directly under one root;
the public releases nest them (``Training/glioma``, ``im_Parabasal/CROPPED``)
or label images through a CSV (HAM10000), so we walk the tree ourselves and
decode with Pillow, resizing once at load time to keep memory small.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from robustbench_med.data.roots import candidate_roots
from robustbench_med.data.spec import DatasetSpec
from robustbench_med.errors import DataCorruptError, DataMissingError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
SPLIT_DIRS = ("train", "val", "test")


def locate(spec: DatasetSpec, data_root: str | Path | None) -> Path | None:
    for root in candidate_roots(data_root):
        folder = root / (spec.folder or spec.id)
        if folder.is_dir():
            return folder
    return None


def _missing(spec: DatasetSpec, data_root: str | Path | None, why: str) -> DataMissingError:
    searched = ", ".join(str(r) for r in candidate_roots(data_root))
    return DataMissingError(
        f"dataset {spec.id} ({spec.name}) {why} in the data roots [{searched}]: expected "
        f"{spec.layout}; get it from {spec.source_url} (licence {spec.licence})"
    )


def _class_folder_images(spec: DatasetSpec, folder: Path) -> list[tuple[Path, int]]:
    wanted = {name: i for i, name in enumerate(spec.class_names)}
    found: list[tuple[Path, int]] = []
    for dirpath, dirnames, _ in os.walk(folder):
        dirnames.sort()
        name = Path(dirpath).name
        if name in wanted:
            files = sorted(p for p in Path(dirpath).glob(spec.pattern)
                           if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            found.extend((p, wanted[name]) for p in files)
            dirnames.clear()  # a class folder's own subfolders are matched by the pattern only
    return found


def _csv_images(spec: DatasetSpec, folder: Path) -> list[tuple[Path, int]]:
    import pandas as pd

    assert spec.csv is not None
    table_name, id_column, label_column = spec.csv
    table_path = folder / table_name
    if not table_path.is_file():
        return []
    table = pd.read_csv(table_path)
    by_stem = {p.stem: p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES}
    wanted = {name: i for i, name in enumerate(spec.class_names)}
    return [(by_stem[str(row[id_column])], wanted[str(row[label_column])])
            for _, row in table.iterrows()
            if str(row[id_column]) in by_stem and str(row[label_column]) in wanted]


def _split_of(path: Path, folder: Path) -> str | None:
    first = path.relative_to(folder).parts[0].lower()
    return first if first in SPLIT_DIRS else None


def stratified_split(labels: np.ndarray, seed: int = 0,
                     fractions: tuple[float, float] = (0.8, 0.1)) -> dict[str, np.ndarray]:
    """Indices of an 80/10/10 split, stratified by class, reproducible for a seed."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLIT_DIRS}
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_train = round(fractions[0] * len(idx))
        n_val = round(fractions[1] * len(idx))
        parts["train"].append(idx[:n_train])
        parts["val"].append(idx[n_train:n_train + n_val])
        parts["test"].append(idx[n_train + n_val:])
    return {s: np.sort(np.concatenate(p)) for s, p in parts.items()}


def _decode(spec: DatasetSpec, path: Path, size: int) -> np.ndarray:
    """One image at ``size``; a file Pillow cannot decode is named, not left to a traceback."""
    try:
        with Image.open(path) as img:
            img = img.convert("L" if spec.channels == 1 else "RGB")
            img = img.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataCorruptError(f"dataset {spec.id} ({spec.name}): cannot read image {path} ({reason}); "
                               f"replace it from {spec.source_url} or delete it") from None


def load_folder(spec: DatasetSpec, data_root: str | Path | None,
                image_size: int) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], Path]:
    """Arrays ``{split: (uint8 images at image_size, int64 labels)}`` and the folder read."""
    folder = locate(spec, data_root)
    if folder is None:
        raise _missing(spec, data_root, "not found")
    items = _csv_images(spec, folder) if spec.source == "csv" else _class_folder_images(spec, folder)
    if not items:
        raise _missing(spec, data_root, f"has no images in {folder}")
    paths = [p for p, _ in items]
    labels = np.array([y for _, y in items], dtype=np.int64)
    images = np.stack([_decode(spec, p, image_size) for p in paths])
    given = [_split_of(p, folder) for p in paths]
    if all(s is not None for s in given) and set(given) == set(SPLIT_DIRS):
        index = {s: np.array([i for i, g in enumerate(given) if g == s]) for s in SPLIT_DIRS}
    else:
        index = stratified_split(labels)
    return {s: (images[i], labels[i]) for s, i in index.items()}, folder
