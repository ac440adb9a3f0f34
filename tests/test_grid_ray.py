"""The Ray executor against the local one, and its faults: a worker killed by its pid mid-grid, a
driver killed and restarted on the same grid file.

One small grid on a real PneumoniaMNIST slice (ResNet18, 200 images, 1 epoch, 28 px; PGD-20 and
BIM-20 under two presets on 40 test points: five units of a few seconds). The local executor's
rows (``reference``, its own results folder) are what every Ray run must store: the same cells
with the same accuracies, intervals, per-point flags and settings, no duplicate and nothing
missing, and the same masking verdicts. Ray runs use 2 workers of one CPU each.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, require_data

try:  # CI installs the extra (README's test command): a missing Ray fails these tests, never skips them
    with warnings.catch_warnings():  # ray imports requests, which warns about its own pins
        warnings.simplefilter("ignore")
        import ray  # noqa: F401
except ImportError:
    pytest.fail("the Ray executor's tests need the ray extra: pip install -e '.[test,ray]'", pytrace=False)

GRID = """
[grid]
models = ["resnet18"]
datasets = ["d12"]
attacks = ["pgd-20", "bim-20"]
presets = ["paper", "standard"]

[training]
recipe = "fast"
epochs = 1
image_size = 28
augment = false
n_train = 200

[evaluation]
n_test = 40
"""
# What two runs of one grid must agree on (not: row ids, creation times, wall times)
SAME = ("n", "n_attacked", "accuracy", "ci_low", "ci_high", "auc", "image_size", "device", "settings",
        "notes", "flags")
KEY = ("model", "defense", "dataset", "task", "attack", "preset", "eps", "protocol", "seed", "subset",
       "checkpoint_sha", "code_version")
CHECK_SAME = ("check_name", "task", "checkpoint_sha", "status", "detail", "statistic", "p_value")


def grid_file(folder: Path) -> Path:
    path = folder / "grid.toml"
    path.write_text(GRID)
    return path


def rows(results: Path) -> pd.DataFrame:
    with sqlite3.connect(results / "results.sqlite") as db:
        frame = pd.read_sql_query("SELECT * FROM results", db)
    return frame.sort_values(list(KEY)).reset_index(drop=True)


def checks(results: Path) -> pd.DataFrame:
    with sqlite3.connect(results / "results.sqlite") as db:
        frame = pd.read_sql_query("SELECT * FROM checks", db)
    return frame[list(CHECK_SAME)].sort_values(["task", "check_name"]).reset_index(drop=True)


def assert_same_rows(results: Path, reference: Path) -> None:
    got, want = rows(results), rows(reference)
    assert not got.duplicated(list(KEY)).any(), "a cell was stored twice"
    assert len(got) == len(want), f"{len(got)} rows, the local run stored {len(want)}"
    pd.testing.assert_frame_equal(got[list(KEY + SAME)], want[list(KEY + SAME)])
    pd.testing.assert_frame_equal(checks(results), checks(reference))


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "MEDROBUST_DATA": str(require_data())}


def start_driver(grid: Path, results: Path) -> subprocess.Popen:
    """``medrobust grid run GRID --executor ray --workers 2`` as a process of its own."""
    command = [sys.executable, "-m", "robustbench_med", "grid", "run", str(grid), "--results-dir",
               str(results), "--data-root", str(require_data()), "--executor", "ray", "--workers", "2"]
    return subprocess.Popen(command, cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def run_ray_in_process(grid: Path, results: Path):
    from robustbench_med.grid.run import RunOptions, run_grid
    from robustbench_med.grid.spec import load_spec

    return run_grid(load_spec(grid), RunOptions(results_dir=results, executor="ray", workers=2,
                                                data_root=require_data()))


# -- processes (only those this test started: descendants of its driver) ------------------------------
def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def busy_worker(driver: subprocess.Popen) -> int | None:
    """A Ray worker of ``driver``'s cluster while it computes a unit (Ray titles it by its task)."""
    return next((p for p in descendants(driver.pid) if title(p).startswith("ray::medrobust-unit")), None)


def stored_attack_rows(results: Path) -> int:
    """Attack rows in the store (0 while it does not exist or is being created)."""
    try:
        with sqlite3.connect(f"file:{results / 'results.sqlite'}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM results WHERE attack != 'clean'").fetchone()[0])
    except sqlite3.Error:
        return 0


def wait_for(condition, what: str, driver: subprocess.Popen, timeout: float = 900.0):
    """Poll for an event (never a measured time): the limit only ends a hung run; a loaded machine
    can take minutes to start Ray and store a first row, an idle one takes seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if driver.poll() is not None:
            pytest.fail(f"the driver exited ({driver.returncode}) before {what}:\n{driver.stdout.read()}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def stop(driver: subprocess.Popen) -> None:
    """End a driver this test started and whatever of its cluster outlives it, by pid."""
    leftovers = descendants(driver.pid)
    if driver.poll() is None:
        driver.kill()
        driver.wait()
    for pid in leftovers:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


# -- the tests -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The grid run by the local executor (training included) in a results folder of its own."""
    from robustbench_med.grid.run import RunOptions, run_grid
    from robustbench_med.grid.spec import load_spec

    folder = tmp_path_factory.mktemp("grid-local")
    outcome = run_grid(load_spec(grid_file(folder)), RunOptions(results_dir=folder, data_root=require_data()))
    assert len(outcome.trained) == 1 and len(outcome.computed) == 6  # clean, 4 cells, the probe
    return folder


def with_zoo(tmp_path: Path, reference: Path) -> Path:
    """A fresh results folder whose zoo holds the reference's checkpoint."""
    results = tmp_path / "results"
    shutil.copytree(reference / "zoo", results / "zoo")
    return results


def test_ray_run_trains_and_stores_the_local_rows(tmp_path: Path, reference: Path) -> None:
    """Two workers from an empty folder: the training is a Ray task, then five units; the rows (and
    the checkpoint: one thread trains deterministically) are the local run's."""
    results = tmp_path / "results"
    outcome = run_ray_in_process(grid_file(tmp_path), results)
    assert len(outcome.trained) == 1
    assert sidecar_sha(results) == sidecar_sha(reference), "training on one thread was not deterministic"
    assert_same_rows(results, reference)


def sidecar_sha(results: Path) -> str:
    import json

    (sidecar,) = (results / "zoo" / "resnet18").glob("*.json")
    return json.loads(sidecar.read_text())["sha256"]


def test_cli_local_grid_equals_medrobust_run(tmp_path: Path, reference: Path) -> None:
    """The local executor stores what medrobust run stores for the same settings."""
    from robustbench_med.cli import main

    results = with_zoo(tmp_path, reference)
    code = main(["run", "--model", "resnet18", "--dataset", "d12", "--attacks", "pgd-20,bim-20",
                 "--preset", "paper,standard", "--recipe", "fast", "--epochs", "1", "--image-size", "28",
                 "--no-augment", "--n-train", "200", "--n-test", "40", "--data-root", str(require_data()),
                 "--results-dir", str(results), "--quiet"])
    assert code == 0
    assert_same_rows(results, reference)


def test_worker_killed_mid_grid_is_retried(tmp_path: Path, reference: Path) -> None:
    """Kill, by its pid, a Ray worker computing a unit once a first row is stored: Ray retries the
    unit, the driver finishes, and the store holds the local run's rows, once each."""
    results = with_zoo(tmp_path, reference)
    driver = start_driver(grid_file(tmp_path), results)
    try:
        wait_for(lambda: stored_attack_rows(results) >= 1, "a first stored row", driver)
        victim = wait_for(lambda: busy_worker(driver), "a worker computing a unit", driver)
        rows_before = stored_attack_rows(results)
        os.kill(victim, signal.SIGKILL)
        output, _ = driver.communicate(timeout=900)
    finally:
        stop(driver)
    assert driver.returncode == 0, output
    assert not alive(victim)
    assert rows_before < 5, "the kill came after the last unit: it proved nothing"
    assert_same_rows(results, reference)


def test_driver_killed_then_rerun_resumes_without_recomputing(tmp_path: Path, reference: Path) -> None:
    """Kill the driver once a row is stored; the same grid file run again stores the rest and
    computes none of the cells that were stored."""
    from robustbench_med.grid.rows import key_of

    grid = grid_file(tmp_path)
    results = with_zoo(tmp_path, reference)
    driver = start_driver(grid, results)
    try:
        wait_for(lambda: stored_attack_rows(results) >= 1, "a first stored row", driver)
    finally:
        stop(driver)
    before = rows(results)
    assert 1 <= len(before) < 6, "the driver was killed after the grid was finished"
    stored = {key_of(r) for r in before.to_dict("records")}

    outcome = run_ray_in_process(grid, results)
    assert not stored & set(outcome.computed), "a stored cell was computed again"
    assert outcome.already_stored == len(before)
    assert len(outcome.computed) == 6 - len(before)
    after = rows(results)
    kept = after.merge(before[["id", "created", *KEY]], on=list(KEY), suffixes=("", "_before"))
    assert (kept["id"] == kept["id_before"]).all() and (kept["created"] == kept["created_before"]).all()
    assert_same_rows(results, reference)


TRANSFER_GRID = """
[grid]
models = ["resnet18", "mobilenetv2"]
datasets = ["d12"]
attacks = ["square-surrogate"]
presets = ["standard"]

[training]
recipe = "fast"
epochs = 1
image_size = 28
augment = false
n_train = 200

[evaluation]
n_test = 40
checks = false
surrogate = "resnet18"
square_queries = 50
"""


def transfer_rows(results: Path) -> pd.DataFrame:
    frame = rows(results)
    return frame[frame["attack"] != "clean"].reset_index(drop=True)


def test_ray_targets_share_the_surrogates_examples_as_a_local_run_does(tmp_path: Path) -> None:
    """Two targets (ResNet18, MobileNetV2) attacked by Square crafted on one surrogate (a ResNet18 of
    the same seed; a surrogate is trained per seed, so targets share it within one), 2 workers: the
    second target waits for the first one's examples and reuses them, so the Ray run stores the
    local run's rows -- accuracies and settings, one ``transfer_cache: miss`` then one ``hit`` --
    instead of two crafts that each say ``miss``."""
    from robustbench_med.grid.run import RunOptions, run_grid
    from robustbench_med.grid.spec import load_spec

    local, ray_results = tmp_path / "local", tmp_path / "ray"
    local.mkdir()
    grid = local / "grid.toml"
    grid.write_text(TRANSFER_GRID)
    outcome = run_grid(load_spec(grid), RunOptions(results_dir=local, data_root=require_data()))
    assert len(outcome.trained) >= 2
    want = transfer_rows(local)
    statuses = [json.loads(s)["transfer_cache"] for s in want["settings"]]
    assert len(want) == 2 and sorted(statuses) == ["hit", "miss"], statuses

    shutil.copytree(local / "zoo", ray_results / "zoo")
    run_ray_in_process(grid, ray_results)
    got = transfer_rows(ray_results)
    pd.testing.assert_frame_equal(got[list(KEY + SAME)], want[list(KEY + SAME)])
