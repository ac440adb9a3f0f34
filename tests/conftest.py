"""Shared fixtures: the real MedMNIST files in ../shared/data, small slices, one tiny trained model.

Tests that need no data run without it. A test that needs the data asks for it through the
``data_root`` fixture (or ``cli_args``), and fails -- never skips -- with a message that names the
missing file and ``MEDROBUST_DATA`` when it is not there.

Isolation: every test module gets its own results folder (``results_dir``, module scope) and
leaves the registries as it found them (``registry_state``, autouse). The small ResNet18 is
trained once per session into a zoo of its own, and copied into each module's folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
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
MAIL_N_TRAIN = 1600
MAIL_EPOCHS = 4


def require_data() -> Path:
    """The data root; fails the calling test (not the session) when a required file is missing."""
    missing = [DATA_ROOT / "medmnist" / name for name in REQUIRED
               if not (DATA_ROOT / "medmnist" / name).is_file()]
    if missing:
        pytest.fail(f"real test data missing: {', '.join(map(str, missing))}; set MEDROBUST_DATA to "
                    f"the folder that holds medmnist/ (now {DATA_ROOT})", pytrace=False)
    return DATA_ROOT


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The folder holding medmnist/*.npz; every fixture that reads data depends on it."""
    return require_data()


@pytest.fixture(scope="session")
def d12_small(data_root: Path):
    from robustbench_med.data import load_dataset

    return load_dataset("d12", data_root=data_root, image_size=IMAGE_SIZE, n_train=N_TRAIN,
                        n_test=N_TEST)


def small_request(model: str = "resnet18", dataset: str = "d12", **train):
    from robustbench_med.training.config import TrainConfig
    from robustbench_med.workflow import ModelRequest

    settings = {"epochs": EPOCHS, "batch_size": 32, "recipe": "paper", **train}
    return ModelRequest(model=model, dataset=dataset, image_size=IMAGE_SIZE,
                        train=TrainConfig(**settings), augment=False, n_train=N_TRAIN)


@pytest.fixture(scope="session")
def resnet_zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's zoo: it holds the small ResNet18 and nothing else."""
    return tmp_path_factory.mktemp("resnet-zoo")


@pytest.fixture(scope="session")
def trained_resnet(resnet_zoo: Path, d12_small):
    """ResNet18 trained on a real PneumoniaMNIST slice, once per session, in the session's zoo."""
    import torch

    from robustbench_med.models.zoo import Zoo
    from robustbench_med.workflow import train_and_save

    return train_and_save(small_request(), d12_small, Zoo(resnet_zoo), torch.device("cpu"))


@pytest.fixture(scope="session")
def d12_mail(data_root: Path):
    """A larger PneumoniaMNIST slice for MAIL (same test points as ``d12_small``)."""
    from robustbench_med.data import load_dataset

    return load_dataset("d12", data_root=data_root, image_size=IMAGE_SIZE, n_train=MAIL_N_TRAIN,
                        n_test=N_TEST)


@pytest.fixture(scope="session")
def trained_mail(tmp_path_factory: pytest.TempPathFactory, d12_mail):
    """MAIL-RN18 trained by the benchmark's own ``train_model`` (through ``train_and_save``, as
    ``medrobust train`` does) on 1,600 real PneumoniaMNIST images, once per session.

    MedMNIST's recipe (Adam 1e-3, x0.1 at 50% and 75% of the epochs) for 4 epochs, with MAIL's own
    (Keras) BatchNorm momentum and dropout. Measured over seeds 0, 1, 2 and one or two threads (four
    runs): test accuracy 0.72-0.77 against a majority share of 0.5625, recall of the minority class
    0.37-0.51, AUC 0.81-0.88, PGD-10 (standard, 4/255) accuracy 0.29-0.38; 100-160 s on two cores.
    (800 images for 6 epochs gave 0.64-0.76 accuracy: too close to the majority share.)"""
    import dataclasses

    import torch

    from robustbench_med.models.zoo import Zoo
    from robustbench_med.workflow import train_and_save

    request = dataclasses.replace(small_request("mail_rn18", recipe="medmnist", epochs=MAIL_EPOCHS),
                                  n_train=MAIL_N_TRAIN)
    return train_and_save(request, d12_mail, Zoo(tmp_path_factory.mktemp("mail-zoo")),
                          torch.device("cpu"))


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory, resnet_zoo: Path, trained_resnet) -> Path:
    """This module's own results folder, whose zoo holds a copy of the session's small ResNet18."""
    folder = tmp_path_factory.mktemp("results")
    shutil.copytree(resnet_zoo, folder / "zoo")
    return folder


@pytest.fixture(scope="module", autouse=True)
def registry_state() -> Iterator[None]:
    """Each test module leaves the registries as it found them: whatever a module registers
    (toy models, fake plugins) is gone when the next module starts."""
    from robustbench_med.registry import ATTACKS, DATASETS, DEFENSES, MODELS

    saved = []
    for registry in (DATASETS, MODELS, DEFENSES, ATTACKS):
        registry.names()  # built-ins and installed plugins load before the snapshot, not after
        saved.append((registry, dict(registry._entries), dict(registry._aliases)))
    yield
    for registry, entries, aliases in saved:
        registry._entries.clear()
        registry._entries.update(entries)
        registry._aliases.clear()
        registry._aliases.update(aliases)


@pytest.fixture(scope="module")
def toys() -> Iterator[list[str]]:
    """The models of ``tests/toy_models.py``, registered for this module and removed afterwards."""
    from tests import toy_models

    with toy_models.registered() as names:
        yield names


def cli_args(*extra: str) -> list[str]:
    """Arguments that make ``medrobust run/train`` use the small real slice of the fixtures."""
    return ["--image-size", str(IMAGE_SIZE), "--epochs", str(EPOCHS), "--n-train", str(N_TRAIN),
            "--no-augment", "--data-root", str(require_data()), "--quiet", *extra]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` are skipped, with the reason, where torch sees no CUDA GPU (and only
    there: on a GPU machine a failure is a failure)."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if torch.cuda.is_available():
        return
    reason = (f"needs a CUDA GPU: torch {torch.__version__} (CUDA build {torch.version.cuda}) sees none; "
              "benchmarks/gpu_check.sh runs these on a GPU machine")
    for item in gpu_tests:
        item.add_marker(pytest.mark.skip(reason=reason))
