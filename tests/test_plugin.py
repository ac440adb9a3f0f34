"""A third-party defense, pip-installed from its own package, is listed and run by the CLI.

``tests/example_plugin`` is a separate distribution that registers the
``gaussian-noise`` defense through the ``medrobust.defenses`` entry point.
It is installed with ``pip --target`` into a temporary folder (the shared
virtual environment is not touched) and found through ``PYTHONPATH`` by a
fresh ``python -m robustbench_med`` process, as a user's install would be.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from robustbench_med.store import STORE_NAME, ResultStore
from tests.conftest import cli_args

PLUGIN = Path(__file__).resolve().parent / "example_plugin"
N_TEST = 24


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin built and installed into an isolated folder."""
    work = tmp_path_factory.mktemp("plugin")
    source = work / "src"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = work / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert list(target.glob("medrobust_gaussian_noise-*.dist-info/entry_points.txt"))
    return target


def medrobust(plugin_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(plugin_path), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "robustbench_med", *args], capture_output=True,
                          text=True, env=env, timeout=900)


def test_the_plugin_is_not_visible_without_its_install():
    done = subprocess.run([sys.executable, "-m", "robustbench_med", "list", "defenses"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert "gaussian-noise" not in done.stdout
    assert "learn2perturb" in done.stdout


def test_installed_plugin_is_listed_with_its_origin(plugin_path):
    done = medrobust(plugin_path, "list", "defenses")
    assert done.returncode == 0, done.stderr
    line = next(row for row in done.stdout.splitlines() if "gaussian-noise" in row)
    assert "yes" in line and "medrobust_gaussian_noise" in line  # randomized, and where it came from
    for builtin in ("pni", "dbn", "learn2perturb", "rpf", "cap", "ctrw"):
        assert builtin in done.stdout


def test_installed_plugin_trains_and_its_rows_reach_the_store(plugin_path, tmp_path):
    results = tmp_path / "results"
    done = medrobust(plugin_path, "run", "--model", "resnet18", "--defense", "gaussian-noise",
                     "--dataset", "d12", "--results-dir", str(results), "--n-test", str(N_TEST),
                     *cli_args("--epochs", "1", "--n-train", "200", "--attacks", "pgd-10",
                               "--preset", "standard", "--draws", "2", "--no-checks",
                               "--defense-option", "sigma=0.05"))
    assert done.returncode == 0, done.stderr
    rows = ResultStore(results / STORE_NAME).frame()
    mine = rows[rows.defense == "gaussian-noise"]
    assert len(mine) == len(rows) > 0
    assert {"clean", "pgd-10"} <= set(mine.attack)
    assert set(mine[mine.attack == "pgd-10"].protocol) == {"single-draw", "eot"}  # run as a randomized model
    assert (mine.n == N_TEST).all()
    assert "randomized" in done.stdout
