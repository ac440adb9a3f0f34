"""Shared fixtures: the real MedMNIST files in ../shared/data, small slices, one tiny trained model.

The data must be there: a missing file fails the session loudly, never skips.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("MEDROBUST_DATA") or REPO.parent / "shared" / "data").resolve()
REQUIRED = ("pneumoniamnist.npz", "breastmnist.npz", "retinamnist.npz")

# Small real slices: enough to learn above the majority baseline, small enough for 2 CPU cores.
IMAGE_SIZE = 28
N_TRAIN = 800
N_TEST = 160
EPOCHS = 3


def pytest_sessionstart(session: pytest.Session) -> None:
    missing = [name for name in REQUIRED if not (DATA_ROOT / "medmnist" / name).is_file()]
    if missing:
        pytest.exit(f"real test data missing in {DATA_ROOT}/medmnist: {', '.join(missing)} "
                    "(set MEDROBUST_DATA to the folder holding medmnist/)", returncode=1)


@pytest.fixture(scope="session")
def data_root() -> Path:
    return DATA_ROOT


@pytest.fixture(scope="session")
def d12_small():
    from robustbench_med.data import load_dataset

    return load_dataset("d12", data_root=DATA_ROOT, image_size=IMAGE_SIZE, n_train=N_TRAIN,
                        n_test=N_TEST)


def small_request(model: str = "resnet18", dataset: str = "d12", **train):
    from robustbench_med.training import TrainConfig
    from robustbench_med.workflow import ModelRequest

    settings = {"epochs": EPOCHS, "batch_size": 32, "recipe": "paper", **train}
    return ModelRequest(model=model, dataset=dataset, image_size=IMAGE_SIZE,
                        train=TrainConfig(**settings), augment=False, n_train=N_TRAIN)


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder whose zoo already holds the small ResNet18 (trained once per session)."""
    return tmp_path_factory.mktemp("results")


@pytest.fixture(scope="session")
def trained_resnet(results_dir: Path, d12_small):
    """ResNet18 trained on a real PneumoniaMNIST slice, stored in the session's zoo."""
    import torch

    from robustbench_med.models.zoo import Zoo
    from robustbench_med.workflow import train_and_save

    return train_and_save(small_request(), d12_small, Zoo(results_dir / "zoo"), torch.device("cpu"),
                          progress=False)


def cli_args(*extra: str) -> list[str]:
    """Arguments that make ``medrobust run/train`` use the small real slice of the fixtures."""
    return ["--image-size", str(IMAGE_SIZE), "--epochs", str(EPOCHS), "--n-train", str(N_TRAIN),
            "--no-augment", "--data-root", str(DATA_ROOT), "--quiet", *extra]
