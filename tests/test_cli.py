"""The medrobust command line end to end on real data: rows, resume, and one-line errors."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from robustbench_med.cli import main
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


def test_killed_run_resumes_without_lost_or_duplicated_rows(results_dir, trained_resnet, tmp_path):
    """SIGKILL mid-grid, start again: every cell exactly once, earlier rows untouched."""
    work = tmp_path / "killed"
    shutil.copytree(results_dir / "zoo", work / "zoo")
    attacks = "pgd-10,pgd-20,pgd-50,pgd-100,bim-10,mim-10"
    args = [sys.executable, "-m", "robustbench_med", *run_args(work, "--attacks", attacks)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store = work / STORE_NAME
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if store.exists():
            with sqlite3.connect(store) as db:
                if db.execute("SELECT COUNT(*) FROM results").fetchone()[0] >= 3:
                    break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = store_rows(work)
    expected = 1 + 6 * 2 + 1  # clean + six attacks under two presets + the large-eps probe
    assert 3 <= len(before) < expected
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    after = store_rows(work)
    assert len(after) == expected
    key = ["attack", "preset", "eps", "protocol"]
    assert not after.duplicated(key).any()
    checks = ResultStore(work / STORE_NAME).checks_frame()
    assert len(checks) == 6 and not checks.check_name.duplicated().any()  # five masking + one-class
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
]


@pytest.mark.parametrize(("change", "message"), BAD_RUNS)
def test_bad_input_is_one_line_and_exit_2(capsys, results_dir, trained_resnet, change, message):
    base = {"--model": "resnet18", "--dataset": "d12", "--attacks": "pgd-10"}
    args = ["run", "--n-test", str(N_TEST), "--results-dir", str(results_dir), *cli_args()]
    for flag, value in base.items():
        if flag not in change:
            args += [flag, value]
    args += change
    before = len(store_rows(results_dir)) if (results_dir / STORE_NAME).exists() else 0
    code, _out, err = run_cli(capsys, *args)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]
    assert "Traceback" not in err
    after = len(store_rows(results_dir)) if (results_dir / STORE_NAME).exists() else 0
    assert after == before


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
