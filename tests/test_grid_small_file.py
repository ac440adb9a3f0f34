"""The published ``leaderboards/grids/small.toml``, run as the README tells a user to: through the CLI,
once with ``--executor ray --workers 2`` and once with ``--executor local``, each from an empty
results folder (a fresh clone: the checkpoint is trained by each run). The two stores must hold
the same rows -- the same cells with the same accuracies, intervals, per-point flags, n and
n_attacked, settings and checkpoint, each once -- and the same masking checks, and what they hold
must be a real evaluation: a model that learned, attacks that work.

``medrobust leaderboard diff`` only flags a cell whose accuracy moved beyond both 95% intervals;
this test is the exact comparison (``tests/test_grid_ray.py`` does the same on inline grids).
Measured on 2 shared CPU cores: ~60 s for the Ray run, ~17 s for the local one.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_grid_ray import KEY, assert_same_rows, checks, descendants, rows, title

SMALL = REPO / "leaderboards" / "grids" / "small.toml"
N_TEST = 40  # small.toml's [evaluation] n_test
EPS = 4 / 255  # both presets' budget on D12
CELLS = {("clean", "-"), ("pgd-10", "paper"), ("pgd-10", "standard"), ("bim-10", "paper"),
         ("bim-10", "standard")}  # 1 model x 2 attacks x 2 presets, plus clean; the probe is one more row
ATTACK_DROP = 0.30  # measured: clean 77.5%, every attack 7.5-12.5%; an attack that does nothing drops ~0


def ray_processes() -> list[int]:
    """Processes of a Ray cluster this test process started (raylet, GCS, workers), by pid."""
    names = ("raylet", "gcs_server", "ray::", "default_worker", "dashboard", "log_monitor")
    return [pid for pid in descendants(os.getpid()) if any(name in title(pid) for name in names)]


@pytest.fixture
def ray_module() -> Iterator[object]:
    """Ray as a user's fresh process has it (not initialised), shut down after the test whatever happens."""
    import warnings

    with warnings.catch_warnings():  # ray imports requests, which warns about its own pins
        warnings.simplefilter("ignore")
        import ray
    if ray.is_initialized():  # left by another test: the CLI would join it instead of starting its own
        ray.shutdown()
    try:
        yield ray
    finally:
        if ray.is_initialized():
            ray.shutdown()


def grid_run(results: Path, data_root: Path, *executor: str) -> None:
    from robustbench_med.cli import main

    code = main(["grid", "run", str(SMALL), *executor, "--results-dir", str(results),
                 "--data-root", str(data_root)])
    assert code == 0, f"medrobust grid run {SMALL.name} {' '.join(executor)} exited {code}"


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): the exact one-sided test of 'better than p'."""
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


def majority_share(data_root: Path) -> float:
    """The share of the most frequent class among the grid's test points (what always guessing it scores)."""
    import numpy as np

    from robustbench_med.data import load_dataset

    test = load_dataset("d12", data_root=data_root, image_size=28, n_test=N_TEST).test
    counts = np.bincount(np.asarray(test.y).ravel())
    assert counts.sum() == N_TEST
    return counts.max() / N_TEST


def test_small_grid_file_ray_and_local_store_the_same_rows(tmp_path: Path, data_root: Path,
                                                           ray_module) -> None:
    assert SMALL.is_file(), f"the published grid file is missing: {SMALL}"
    ray_results, local_results = tmp_path / "results-ray", tmp_path / "results-local"

    grid_run(ray_results, data_root, "--executor", "ray", "--workers", "2")
    assert not ray_module.is_initialized(), "grid run left its Ray cluster initialised"
    deadline = time.monotonic() + 60  # ray.shutdown() signals its processes; they exit within seconds
    while ray_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not ray_processes(), f"Ray processes outlived the run: {[title(p) for p in ray_processes()]}"

    grid_run(local_results, data_root, "--executor", "local")

    # The same rows and checks, each cell once (in either store).
    for results in (ray_results, local_results):
        assert not rows(results).duplicated(list(KEY)).any(), f"{results.name}: a cell was stored twice"
        assert not checks(results).duplicated(["task", "check_name"]).any(), f"{results.name}: a check twice"
    assert_same_rows(ray_results, local_results)

    # ... and they are a real evaluation of small.toml.
    stored = rows(local_results)
    assert len(stored) == len(CELLS) + 1, stored[["attack", "preset", "eps"]]
    assert CELLS <= set(zip(stored["attack"], stored["preset"], strict=True))
    assert stored["model"].eq("resnet18").all() and stored["dataset"].eq("d12").all()
    assert stored["n"].eq(N_TEST).all()
    assert stored["flags"].notna().all(), "every row carries its per-point flags"
    probe = [r for r in stored.itertuples() if (r.attack, r.preset) not in CELLS]
    assert len(probe) == 1 and probe[0].eps > EPS, "the extra row is the large-eps probe"

    accuracy = {(r.attack, r.preset): r.accuracy for r in stored.itertuples()}
    clean = accuracy[("clean", "-")]
    correct = round(clean * N_TEST)
    share = majority_share(data_root)
    p_value = binomial_tail(correct, N_TEST, share)
    assert p_value < 0.01, (f"the model did not learn: clean {clean:.1%} against a majority share of "
                            f"{share:.1%} (exact one-sided binomial p = {p_value:.3g})")
    attacked = stored[stored["attack"] != "clean"]
    assert attacked["n_attacked"].eq(correct).all(), "only the clean-correct points are attacked"
    for attack in ("pgd-10", "bim-10"):
        for preset in ("paper", "standard"):
            drop = clean - accuracy[(attack, preset)]
            assert drop >= ATTACK_DROP, f"{attack} ({preset}) lowered accuracy by {drop:.1%} only"

    verdicts = checks(local_results).set_index("check_name")["status"]
    assert verdicts.get("clean-right-on-several-classes") == "pass", verdicts
    assert verdicts.get("large-eps-above-chance") == "pass", verdicts
    assert not verdicts.eq("fail").any(), verdicts
