"""Datasets on the real MedMNIST files: shapes, ranges, labels, splits, layouts and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from robustbench_med.data import load_dataset
from robustbench_med.data.folder_source import stratified_split
from robustbench_med.data.transforms import augment_4x
from robustbench_med.errors import BadInputError, DataMissingError, MedrobustError


def test_pneumoniamnist_full_splits_match_the_official_counts(data_root):
    data = load_dataset("d12", data_root=data_root, image_size=28)
    assert (len(data.train), len(data.val), len(data.test)) == (4708, 524, 624)
    assert data.test.x.shape == (624, 1, 28, 28) and data.test.x.dtype == torch.float32
    assert 0.0 <= float(data.test.x.min()) and float(data.test.x.max()) <= 1.0
    assert torch.bincount(data.test.y).tolist() == [234, 390]
    assert data.info.n_classes == 2 and data.info.channels == 1


def test_breastmnist_and_retinamnist_keep_their_channels_and_labels(data_root):
    breast = load_dataset("breastmnist", data_root=data_root, image_size=32)
    assert breast.test.x.shape == (156, 1, 32, 32)
    assert set(breast.train.y.tolist()) == {0, 1}
    retina = load_dataset("d13", data_root=data_root, image_size=28)
    assert retina.train.x.shape == (1080, 3, 28, 28)
    assert set(retina.train.y.tolist()) == {0, 1, 2, 3, 4}


def test_resize_to_the_paper_size(data_root):
    data = load_dataset("d14", data_root=data_root, image_size=128, n_train=8, n_val=4, n_test=4)
    assert data.train.x.shape == (8, 1, 128, 128)
    assert data.provenance["source_size"] == 28 and data.provenance["channel_policy"] == "native"


def test_normalisation_statistics_come_from_the_training_split(data_root):
    data = load_dataset("d12", data_root=data_root, image_size=28, n_train=500)
    assert data.info.mean[0][0] == pytest.approx(float(data.train.x.mean()), abs=1e-4)
    assert 0.05 < data.info.std[0][0] < 0.5


def test_subsets_are_fixed_whatever_else_changes(data_root):
    a = load_dataset("d12", data_root=data_root, image_size=28, n_test=50)
    b = load_dataset("d12", data_root=data_root, image_size=28, n_test=50, n_train=100)
    assert torch.equal(a.test.x, b.test.x) and len(a.test) == 50


def test_paper_augmentation_makes_four_distinct_copies(data_root):
    data = load_dataset("d14", data_root=data_root, image_size=32, n_train=20, augment=True)
    assert len(data.train) == 80
    plain = load_dataset("d14", data_root=data_root, image_size=32, n_train=20)
    x, y = augment_4x(plain.train.x, plain.train.y)
    assert torch.bincount(y).tolist() == (torch.bincount(plain.train.y) * 4).tolist()
    # every original is there once; the three copies differ from it
    originals = {tuple(img.flatten()[:50].tolist()) for img in plain.train.x}
    copies = [tuple(img.flatten()[:50].tolist()) for img in x]
    assert sum(c in originals for c in copies) == 20
    assert float(x.min()) >= 0 and float(x.max()) <= 1


def test_folder_dataset_in_the_kaggle_tb_layout(tmp_path, data_root):
    """D3's loader on a TB_Chest_Radiography_Database tree made of real chest X-rays."""
    arrays = np.load(data_root / "medmnist" / "pneumoniamnist.npz")
    images, labels = arrays["test_images"][:60], arrays["test_labels"][:60, 0]
    folder = tmp_path / "TB_Chest_Radiography_Database"
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        cls = folder / ("Normal" if label == 0 else "Tuberculosis")
        cls.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(cls / f"{cls.name}-{i}.png")
    (folder / "Normal" / "README.txt").write_text("not an image")
    data = load_dataset("d3", data_root=tmp_path, image_size=32)
    assert len(data.train) + len(data.val) + len(data.test) == 60
    assert data.train.x.shape[1:] == (3, 32, 32)
    assert torch.bincount(torch.cat([data.train.y, data.val.y, data.test.y])).tolist() == [
        int((labels == 0).sum()), int((labels == 1).sum())]
    again = load_dataset("d3", data_root=tmp_path, image_size=32)
    assert torch.equal(data.test.x, again.test.x)


def test_stratified_split_is_80_10_10_per_class():
    labels = np.array([0] * 100 + [1] * 50)
    split = stratified_split(labels)
    assert [len(split[s]) for s in ("train", "val", "test")] == [120, 15, 15]
    assert np.bincount(labels[split["test"]]).tolist() == [10, 5]
    assert not set(split["train"]) & set(split["test"])


def test_missing_folder_dataset_names_source_and_layout(tmp_path):
    with pytest.raises(DataMissingError) as info:
        load_dataset("d3", data_root=tmp_path, image_size=32)
    message = str(info.value)
    assert "TB_Chest_Radiography_Database" in message and "Normal" in message
    assert "kaggle.com" in message and "\n" not in message


def test_missing_medmnist_file_names_the_expected_file(tmp_path, monkeypatch):
    monkeypatch.delenv("MEDROBUST_DATA", raising=False)
    monkeypatch.setattr("robustbench_med.data.roots.DEFAULT_ROOT", tmp_path / "cache")
    with pytest.raises(DataMissingError, match=r"medmnist/pneumoniamnist\.npz.*--download"):
        load_dataset("d12", data_root=tmp_path, image_size=28)


def test_data_root_is_searched_before_the_environment(tmp_path, monkeypatch, data_root):
    monkeypatch.setenv("MEDROBUST_DATA", str(tmp_path))  # empty
    data = load_dataset("d14", data_root=data_root, image_size=28, n_test=5)
    assert data.provenance["path"].startswith(str(data_root))
    monkeypatch.setenv("MEDROBUST_DATA", str(data_root))
    data = load_dataset("d14", data_root=tmp_path, image_size=28, n_test=5)  # falls through to env
    assert data.provenance["path"].startswith(str(data_root))


def test_segmentation_datasets_are_refused_clearly(data_root):
    with pytest.raises(MedrobustError, match="segmentation is not supported yet"):
        load_dataset("d17", data_root=data_root)


def test_bad_sizes_are_refused(data_root):
    with pytest.raises(BadInputError, match="--image-size"):
        load_dataset("d12", data_root=data_root, image_size=2)
    with pytest.raises(BadInputError, match="positive"):
        load_dataset("d12", data_root=data_root, image_size=28, n_test=0)


def test_corrupt_medmnist_file_is_reported(tmp_path):
    (tmp_path / "medmnist").mkdir()
    (tmp_path / "medmnist" / "breastmnist.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataMissingError, match="unreadable or corrupt"):
        load_dataset("d14", data_root=tmp_path, image_size=28)
