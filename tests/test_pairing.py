"""Paired datasets (d12+d14, d12+d13+d14) formed from the real MedMNIST files as the official code pairs."""

from __future__ import annotations

import pytest
import torch

from robustbench_med.data import load_dataset
from robustbench_med.data.loading import channel_stats
from robustbench_med.data.pairing import augmented_padding
from robustbench_med.data.spec import Split
from robustbench_med.errors import BadInputError

SIZE = 28


@pytest.fixture(scope="module")
def d12_d14(data_root):
    return load_dataset("d12+d14", data_root=data_root, image_size=SIZE)


def test_shapes_and_lengths(d12_d14, data_root):
    data = d12_d14
    d12 = load_dataset("d12", data_root=data_root, image_size=SIZE)
    d14 = load_dataset("d14", data_root=data_root, image_size=SIZE)
    assert data.info.dataset == "d12+d14" and [t.name for t in data.info.tasks] == ["d12", "d14"]
    assert data.info.input_shape == (2, 1, SIZE, SIZE)
    assert len(data.train) == max(len(d12.train), len(d14.train)) == 4708
    assert len(data.val) == min(len(d12.val), len(d14.val)) == 78
    assert len(data.test) == min(len(d12.test), len(d14.test)) == 156
    for split in (data.train, data.val, data.test):
        assert split.x.shape[1:] == (2, 1, SIZE, SIZE) and split.y.shape == (len(split), 2)
    padding = data.provenance["train_padding"]
    assert padding["d14"] == {"original": 546, "augmented_copies_added": 4708 - 546}
    assert padding["d12"]["augmented_copies_added"] == 0
    assert data.provenance["val_cut"]["d12"] == {"original": 524, "kept": 78}


def test_pairing_is_by_index(d12_d14, data_root):
    data = d12_d14
    d12 = load_dataset("d12", data_root=data_root, image_size=SIZE)
    d14 = load_dataset("d14", data_root=data_root, image_size=SIZE)
    assert torch.equal(data.train.x[:, 0], d12.train.x) and torch.equal(data.train.y[:, 0], d12.train.y)
    assert torch.equal(data.train.x[:546, 1], d14.train.x) and torch.equal(data.train.y[:546, 1], d14.train.y)
    assert torch.equal(data.test.y[:, 0], d12.test.y[:156]) and torch.equal(data.test.y[:, 1], d14.test.y)
    assert data.info.mean[1] == channel_stats(d14.train.x)[0]  # statistics of the real images only


def test_padding_uses_augmented_copies():
    torch.manual_seed(0)
    split = Split(torch.rand(5, 1, 16, 16), torch.arange(5))
    padded, added = augmented_padding(split, 25)
    assert added == 20 and len(padded) == 25
    assert torch.equal(padded.x[:5], split.x) and torch.equal(padded.y[:5], split.y)
    for image, label in zip(padded.x[5:], padded.y[5:], strict=True):
        assert not torch.equal(image, split.x[label])  # a transformed copy of its source
        assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    assert augmented_padding(split, 3) == (split, 0)


def test_three_datasets_promote_channels(data_root):
    data = load_dataset("pneumoniamnist+retinamnist+d14", data_root=data_root, image_size=SIZE,
                        n_train=100, n_val=20, n_test=30, augment=True)
    assert data.info.dataset == "d12+d13+d14" and data.info.channels == 3
    assert [t.n_classes for t in data.info.tasks] == [2, 5, 2]
    assert data.train.x.shape == (400, 3, 3, SIZE, SIZE) and data.train.y.shape == (400, 3)
    assert len(data.val) == 20 and len(data.test) == 30
    grey = data.test.x[:, 0]
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 0], grey[:, 2])
    assert data.provenance["channel_promotion"] == {"d12": "1->3", "d14": "1->3"}
    assert len(data.info.mean) == 3 and all(len(m) == 3 for m in data.info.mean)


@pytest.mark.parametrize("name", ["d12+", "d12+d12", "+d14"])
def test_malformed_pairs_are_refused(data_root, name):
    with pytest.raises(BadInputError):
        load_dataset(name, data_root=data_root, image_size=SIZE)
