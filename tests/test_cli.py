"""The medrobust command line end to end on real data: rows, resume, and one-line errors."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from robustbench_med.cli import main
from robustbench_med.defenses.base import Defense, register_defense
from robustbench_med.errors import BadInputError
from robustbench_med.registry import DEFENSES
from robustbench_med.store import STORE_NAME, ResultStore
from tests.conftest import DATA_ROOT, N_TEST, cli_args


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_args(results_dir: Path, *extra: str) -> list[str]:
    return ["run", "--model", "resnet18", "--dataset", "d12", "--n-test", str(N_TEST),
            "--results-dir", str(results_dir), *cli_args(*extra)]


def store_rows(results_dir: Path) -> pd.DataFrame:
    return ResultStore(results_dir / STORE_NAME).frame()


def test_run_stores_clean_and_robust_rows_and_a_leaderboard(capsys, results_dir, trained_resnet):
    code, out, err = run_cli(capsys, *run_args(results_dir, "--attacks", "pgd-10"))
    assert code == 0, err
    rows = store_rows(results_dir)
    clean = rows[rows.attack == "clean"].iloc[0]
    robust = rows[(rows.attack == "pgd-10") & (rows.preset == "standard")].iloc[0]
    assert set(rows.preset) == {"-", "paper", "standard"}
    assert clean.n == N_TEST and clean.checkpoint_sha == trained_resnet.sha256
    assert robust.accuracy < clean.accuracy
    assert robust.ci_low <= robust.accuracy <= robust.ci_high
    assert robust.n_attacked == round(clean.accuracy * N_TEST)
    assert "using checkpoint" in err  # the session's trained model was reused, not retrained
    wide = pd.read_csv(results_dir / "leaderboard_wide.csv")
    assert {"clean", "pgd-10"} <= set(wide.columns)
    assert "pgd-10" in out and "95% CI" in out


def test_second_run_adds_no_rows(capsys, results_dir, trained_resnet):
    args = run_args(results_dir, "--attacks", "pgd-10")
    assert run_cli(capsys, *args)[0] == 0
    before = store_rows(results_dir)
    code, _out, err = run_cli(capsys, *args)
    assert code == 0
    after = store_rows(results_dir)
    assert len(after) == len(before)
    assert after.id.tolist() == before.id.tolist()
    assert "stored, not recomputed" in err


def test_run_trains_when_there_is_no_checkpoint(capsys, tmp_path):
    code, _out, err = run_cli(capsys, "run", "--model", "resnet18", "--dataset", "d14",
                             "--n-test", "40", "--results-dir", str(tmp_path),
                             *cli_args("--attacks", "bim-10", "--preset", "paper", "--epochs", "1",
                                       "--n-train", "100", "--no-checks"))
    assert code == 0, err
    assert "no checkpoint for resnet18 on d14" in err and "training it now" in err
    assert list((tmp_path / "zoo" / "resnet18").glob("d14-28px-*.pt"))
    assert len(store_rows(tmp_path)) == 2


def test_square_queries_name_the_cell_and_are_recorded(capsys, tmp_path):
    """``--square-queries 20`` on a model trained 1 epoch on 200 real images: the Square row is
    stored as square-20 and its settings say 20 queries; the budget is refused in sweep too."""
    import json

    code, _out, err = run_cli(capsys, "run", "--model", "resnet18", "--dataset", "d12",
                              "--n-test", "40", "--results-dir", str(tmp_path),
                              *cli_args("--attacks", "square", "--square-queries", "20",
                                        "--preset", "standard", "--epochs", "1", "--n-train", "200",
                                        "--no-checks"))
    assert code == 0, err
    rows = store_rows(tmp_path)
    assert sorted(rows.attack) == ["clean", "square-20"]
    square = rows[rows.attack == "square-20"].iloc[0]
    assert json.loads(square.settings)["steps"] == 20
    assert square.n_attacked == round(rows[rows.attack == "clean"].iloc[0].accuracy * 40)
    code, _out, err = run_cli(capsys, "sweep", "--model", "resnet18", "--dataset", "d12",
                              "--attack", "square", "--results-dir", str(tmp_path),
                              *cli_args("--square-queries", "0"))
    assert_one_line_error(code, err, "--square-queries must be between 1 and 10000, got 0")


def attack_cells_written(store: Path) -> int:
    """Attack rows in the store: 0 while the file or its table does not exist yet, or while the
    writer holds the lock (the next poll reads it)."""
    if not store.is_file():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)) as db:
            table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'results'"
            if db.execute(table).fetchone() is None:
                return 0
            return db.execute("SELECT COUNT(*) FROM results WHERE attack != 'clean'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_killed_run_resumes_without_lost_or_duplicated_rows(capsys, results_dir, trained_resnet, tmp_path):
    """SIGKILL once an attack cell is stored, start again: the same rows and checks as a run that was
    never killed, each exactly once, and the rows stored before the kill untouched."""
    attacks = "pgd-10,bim-10,mim-10"
    reference, work = tmp_path / "reference", tmp_path / "killed"
    for folder in (reference, work):
        shutil.copytree(results_dir / "zoo", folder / "zoo")
    assert run_cli(capsys, *run_args(reference, "--attacks", attacks))[0] == 0  # never killed
    args = [sys.executable, "-m", "robustbench_med", *run_args(work, "--attacks", attacks)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 1800  # a generous bound for a loaded machine, not a schedule
        while attack_cells_written(work / STORE_NAME) < 1:
            assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before any attack cell"
            assert time.monotonic() < deadline, "no attack cell stored within 30 minutes"
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it was killed"
    before = store_rows(work)
    expected = store_rows(reference)
    key = ["task", "attack", "preset", "eps", "protocol"]
    assert (before.attack == "clean").sum() == 1 and (before.attack != "clean").sum() >= 1
    assert len(before) < len(expected)  # killed mid-grid
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    after = store_rows(work)
    assert not after.duplicated(key).any()
    assert sorted(map(tuple, after[key].round({"eps": 9}).values.tolist())) == sorted(
        map(tuple, expected[key].round({"eps": 9}).values.tolist()))
    checks = ResultStore(work / STORE_NAME).checks_frame()
    assert not checks.check_name.duplicated().any()
    assert set(checks.check_name) == set(ResultStore(reference / STORE_NAME).checks_frame().check_name)
    kept = after.set_index("id").loc[before.id, ["accuracy", "created"]]
    assert kept.equals(before.set_index("id")[["accuracy", "created"]])


# -- bad input: one line, exit 2, nothing half-written --------------------------------
BAD_RUNS = [
    (["--model", "resnet19"], "unknown model 'resnet19'; did you mean 'resnet18'?"),
    (["--dataset", "d99"], "unknown dataset 'd99'"),
    (["--attacks", "pgdd-10"], "unknown attack 'pgdd-10'; did you mean 'pgd-10'?"),
    (["--eps", "4/0"], "malformed eps '4/0'"),
    (["--eps", "banana"], "malformed eps 'banana'"),
    (["--preset", "papr"], "unknown preset 'papr'; did you mean 'paper'?"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--model-option", "stem"], "malformed --model-option 'stem'"),
    (["--draws", "0"], "--draws must be at least 1"),
    (["--preset", ""], "--preset '' names no preset (allowed: paper, standard, code"),
    (["--n-test", "0"], "--n-test must be at least 1, got 0"),
    (["--bn-settle", "sometimes"], "unknown BatchNorm settling 'sometimes' (allowed: recalibrate, none)"),
    (["--recipe", "medmnst"], "unknown training recipe 'medmnst'"),
    (["--n-train", "-5"], "--n-train must be at least 1, got -5"),
    (["--model-option", "stm=cifar"],
     "model resnet18 has no option stm (allowed: stem); did you mean 'stem'?"),
    # found by the factory itself: refused before "training it now" (the one-line check shows it)
    (["--model-option", "stem=cifr"], "unknown stem 'cifr' (allowed: imagenet, cifar)"),
    (["--defense", "pni", "--defense-option", "delay=abc"],
     "defense pni option delay must be an int or null, got 'abc'"),
    (["--defense", "pni", "--defense-option", "alpha_init=-1"], "PNI alpha_init must be >= 0"),
    (["--defense-option", "delay=3"], "--defense-option needs --defense"),
    (["--square-queries", "0"], "--square-queries must be between 1 and 10000, got 0"),
    (["--square-queries", "-5"], "--square-queries must be between 1 and 10000, got -5"),
    (["--square-queries", "2.5"], "Invalid value for '--square-queries'"),
]


def store_bytes(results_dir: Path) -> bytes:
    return (results_dir / STORE_NAME).read_bytes()


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    """Exit 2, one non-empty stderr line that starts with 'error:' and holds every word, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(word in lines[0] for word in words), lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize(("change", "message"), BAD_RUNS)
def test_bad_input_is_one_line_and_exit_2(capsys, results_dir, trained_resnet, change, message):
    base = {"--model": "resnet18", "--dataset": "d12", "--attacks": "pgd-10"}
    args = ["run", "--n-test", str(N_TEST), "--results-dir", str(results_dir), *cli_args()]
    for flag, value in base.items():
        if flag not in change:
            args += [flag, value]
    args += change
    ResultStore(results_dir / STORE_NAME)  # a store exists (made now if no test made it earlier)
    before = store_bytes(results_dir)
    code, _out, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, message)
    assert store_bytes(results_dir) == before


# -- a results folder or store that cannot be used: refused before anything is read or written -----
def _under_a_file(tmp: Path) -> Path:
    (tmp / "afile").write_text("a file, not a folder")
    return tmp / "afile" / "sub"


def _a_file(tmp: Path) -> Path:
    (tmp / "afile").write_text("a file, not a folder")
    return tmp / "afile"


def _store_is_a_folder(tmp: Path) -> Path:
    (tmp / "r" / STORE_NAME).mkdir(parents=True)
    return tmp / "r"


def _store_is_not_sqlite(tmp: Path) -> Path:
    (tmp / "r").mkdir()
    (tmp / "r" / STORE_NAME).write_bytes(bytes(range(256)) * 8)
    return tmp / "r"


def _store_of_another_schema(tmp: Path) -> Path:
    (tmp / "r").mkdir()
    with closing(sqlite3.connect(tmp / "r" / STORE_NAME)) as db, db:
        db.execute("CREATE TABLE results (a INTEGER)")
        db.execute("INSERT INTO results VALUES (7)")
    return tmp / "r"


UNUSABLE = {
    "results dir under a file": (_under_a_file, ["--results-dir", "afile is a file, not a folder"]),
    "results dir is a file": (_a_file, ["--results-dir", "afile is a file, not a folder"]),
    "store is a folder": (_store_is_a_folder, [STORE_NAME, "it is a folder, not a file"]),
    "store is not SQLite": (_store_is_not_sqlite, [STORE_NAME, "it is not a SQLite file", "left as it is"]),
    "store of another schema": (_store_of_another_schema,
                                [STORE_NAME, "results table has another schema", "columns a;"]),
}


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for a folder)."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("command", ["run", "show", "publish"])
@pytest.mark.parametrize("case", list(UNUSABLE))
def test_unusable_results_folder_or_store_is_one_line_and_untouched(capsys, tmp_path, case, command):
    make, words = UNUSABLE[case]
    folder = make(tmp_path)
    args = {"run": run_args(folder, "--attacks", "pgd-10"),
            "show": ["leaderboard", "show", "--results-dir", str(folder)],
            "publish": ["leaderboard", "publish", "--results-dir", str(folder), "--out",
                        str(tmp_path / "published")]}[command]
    before = snapshot(tmp_path)
    code, _out, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, *words)
    assert snapshot(tmp_path) == before  # nothing written, created or changed


def test_corrupt_image_in_a_folder_dataset_is_named(capsys, tmp_path):
    folder = tmp_path / "data" / "TB_Chest_Radiography_Database"
    rng = np.random.default_rng(0)
    for name in ("Normal", "Tuberculosis"):
        (folder / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(folder / name / f"{i}.png")
    bad = folder / "Tuberculosis" / "3.png"
    bad.write_bytes(bad.read_bytes()[:60])  # cut inside its pixel data
    code, _out, err = run_cli(capsys, "run", "--model", "resnet18", "--dataset", "d3", "--image-size", "28",
                              "--data-root", str(tmp_path / "data"), "--results-dir", str(tmp_path / "r"),
                              "--quiet")
    assert_one_line_error(code, err, "cannot read image", str(bad), "dataset d3")


# -- a third-party defense's options are typed by its factory's annotations and defaults ---------------
def plugin_defense(build_backbone, info, levels=4, sigma: float = 0.1):
    """A defense as a plugin writes it: ``levels`` typed by its default, ``sigma`` by its annotation."""
    return build_backbone()


@pytest.fixture
def plugin(monkeypatch) -> str:
    """``plugin_defense`` registered for one test only."""
    DEFENSES.names()  # the built-ins load into the copy, not after it
    monkeypatch.setattr(DEFENSES, "_entries", dict(DEFENSES._entries))
    register_defense(Defense(name="test-plugin", build=plugin_defense, randomized=False, reference="tests"))
    return "test-plugin"


@pytest.mark.parametrize(("option", "message"), [
    ("levels=abc", "defense test-plugin option levels must be an int, got 'abc'"),
    ("levels=2.5", "defense test-plugin option levels must be an int, got 2.5"),
    ("sigma=abc", "defense test-plugin option sigma must be a float, got 'abc'"),
    ("sigma=true", "defense test-plugin option sigma must be a float, got True"),
    ("sigmaa=0.2", "has no option sigmaa (allowed: levels, sigma); did you mean 'sigma'?"),
])
def test_plugin_option_values_are_type_checked_before_training(capsys, results_dir, plugin, option,
                                                              message):
    ResultStore(results_dir / STORE_NAME)
    before = store_bytes(results_dir)
    code, _out, err = run_cli(capsys, *run_args(results_dir, "--defense", plugin,
                                                "--defense-option", option))
    assert_one_line_error(code, err, message)  # one line: no "training it now" before it
    assert store_bytes(results_dir) == before


def test_option_values_are_converted_only_where_nothing_is_lost():
    from robustbench_med.factory_options import check_options

    options = check_options("defense", "test-plugin", plugin_defense, 2, {"levels": 3.0, "sigma": 1})
    assert options == {"levels": 3, "sigma": 1} and type(options["levels"]) is int
    with pytest.raises(BadInputError, match=r"levels must be an int, got 2\.5"):
        check_options("defense", "test-plugin", plugin_defense, 2, {"levels": 2.5})


def test_missing_data_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("MEDROBUST_DATA", raising=False)
    monkeypatch.setattr("robustbench_med.data.roots.DEFAULT_ROOT", tmp_path / "cache")
    code, _, err = run_cli(capsys, "run", "--model", "resnet18", "--dataset", "d3",
                           "--data-root", str(tmp_path), "--results-dir", str(tmp_path / "r"))
    assert code == 2
    assert err.count("\n") == 1 and "TB_Chest_Radiography_Database" in err
    assert not (tmp_path / "r" / STORE_NAME).exists() or len(store_rows(tmp_path / "r")) == 0


@pytest.mark.parametrize("content", [b"\x00not a checkpoint", None])
def test_bad_checkpoint_file_is_one_line(capsys, tmp_path, content):
    path = tmp_path / "model.pt"
    if content is None:
        torch.save({"state": torch.ones(2)}, path)
    else:
        path.write_bytes(content)
    code, _, err = run_cli(capsys, "run", "--checkpoint", str(path), "--results-dir", str(tmp_path))
    assert code == 2 and err.count("\n") == 1
    assert "not a" in err and "medrobust checkpoint" in err


def test_evaluating_a_given_checkpoint(capsys, trained_resnet, tmp_path):
    code, _out, err = run_cli(capsys, "run", "--checkpoint", str(trained_resnet.path), "--attacks",
                             "bim-10", "--preset", "paper", "--n-test", str(N_TEST),
                             "--data-root", str(DATA_ROOT), "--results-dir", str(tmp_path), "--quiet")
    assert code == 0, err
    rows = store_rows(tmp_path)
    assert set(rows.checkpoint_sha) == {trained_resnet.sha256}


def test_list_commands(capsys):
    for kind, expected in [("datasets", "PneumoniaMNIST"), ("models", "resnet101"),
                           ("attacks", "pgd-100"), ("defenses", "randomized")]:
        code, out, _ = run_cli(capsys, "list", kind)
        assert code == 0 and expected in out
    code, _, err = run_cli(capsys, "list", "modles")
    assert code == 2 and "did you mean 'models'" in err


def test_console_script_has_no_traceback_on_bad_input():
    done = subprocess.run([sys.executable, "-m", "robustbench_med", "run", "--model", "nope",
                           "--dataset", "d12"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: unknown model 'nope'")


def test_sweep_passes_model_and_defense_options_on(capsys, tmp_path):
    """``sweep`` used to drop --model-option and --defense-option silently: a bad value now ends in
    one line before any training, and an unknown defense option names the defense's options."""
    base = ["sweep", "--model", "resnet18", "--dataset", "d12", "--eps", "0.01,0.02", "--image-size", "28",
            "--epochs", "1", "--n-train", "64", "--n-test", "8", "--data-root", str(DATA_ROOT),
            "--results-dir", str(tmp_path), "--quiet"]
    code, out, err = run_cli(capsys, *base, "--model-option", "stem=nope")
    assert code == 2 and "stem" in err and "nope" in err and len(err.strip().splitlines()) == 1, err
    assert "training" not in err + out
    code, out, err = run_cli(capsys, *base, "--defense", "pni", "--defense-option", "levels=abc")
    assert code == 2 and "levels" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "zoo").exists() or not any((tmp_path / "zoo").rglob("*.pt"))


def test_info_counts_the_model_at_its_input_and_invents_no_normalisation(capsys):
    """``info`` counts what torchvision counts for the same network, and says normalisation is per
    dataset instead of printing a mean and std that no dataset produced."""
    from torchvision.models import resnet18

    code, out, err = run_cli(capsys, "info", "resnet18", "--image-size", "32")
    assert code == 0, err
    params = sum(p.numel() for p in resnet18(num_classes=2).parameters())
    assert f"{params / 1e6:.3f}" in out and "32x32x3; classes 2" in out
    assert "normalisation: per dataset" in " ".join(out.split())
    code, out, err = run_cli(capsys, "info", "resnet18", "--dataset", "d12", "--image-size", "28")
    assert code == 0 and "28x28x1; d12 (1 channels)" in out, err
    code, _, err = run_cli(capsys, "info", "mail_rn18", "--classes", "5,x")
    assert code == 2 and err.strip() == "error: malformed --classes '5,x' (expected integers, e.g. 5,7)"


def test_training_says_how_long_it_will_take_and_how_to_shorten_it(capsys, tmp_path):
    """Once its first steps are timed, a training run says how long all of it will take (the
    library's event) and which flags shorten it (the CLI's rendering), once."""
    code, _out, err = run_cli(capsys, "train", "--model", "resnet18", "--dataset", "d12",
                              "--image-size", "28", "--epochs", "2", "--n-train", "64", "--n-val", "32",
                              "--no-augment", "--data-root", str(DATA_ROOT), "--results-dir", str(tmp_path))
    assert code == 0, err
    text = " ".join(err.split())
    assert text.count("training will take about") == 1, err
    assert "(2 epochs of 2 steps at" in text and "timed on the first 2;" in text
    assert "to shorten it: fewer epochs (--epochs N), fewer training images (--n-train N)" in text
