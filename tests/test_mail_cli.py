"""MAIL through the command line, end to end on real data: one dataset, and a paired one."""

from __future__ import annotations

import json

import pytest
import torch

from robustbench_med.cli import main
from robustbench_med.store import STORE_NAME, ResultStore
from tests.conftest import DATA_ROOT, N_TEST, require_data

TINY = ["--image-size", "28", "--epochs", "1", "--no-augment", "--recipe", "fast", "--data-root",
        str(DATA_ROOT), "--quiet", "--no-checks"]
SMALL = ["--n-train", "200", "--n-test", "40", *TINY]

pytestmark = pytest.mark.usefixtures("data_root")  # every test here reads the real data


def test_mail_runs_end_to_end_and_pgd_takes_what_it_learned(capsys, tmp_path, trained_mail, d12_mail):
    """The session's MAIL (trained by ``train_model``, tests/conftest.py) through ``medrobust run``:
    first shown to have learned, then PGD-10 must take a large share of it. (Measured over four
    training runs: clean 0.72-0.77, PGD-10 at 4/255 (standard) 0.29-0.38, a drop of 0.34-0.48.
    The paper preset's step, 10/255 for a 4/255 ball, is much weaker on MAIL: 0.64 -> 0.46.)"""
    code = main(["run", "--checkpoint", str(trained_mail.path), "--attacks", "pgd-10", "--preset", "standard",
                 "--n-test", str(N_TEST), "--data-root", str(require_data()), "--results-dir", str(tmp_path),
                 "--quiet", "--no-checks"])
    assert code == 0, capsys.readouterr().err
    rows = ResultStore(tmp_path / STORE_NAME).frame()
    assert set(rows.model) == {"mail_rn18"} and set(rows.attack) == {"clean", "pgd-10"}
    clean = rows[rows.attack == "clean"].iloc[0]
    pgd = rows[rows.attack == "pgd-10"].iloc[0]
    majority = float(torch.bincount(d12_mail.test.y).max()) / len(d12_mail.test)
    assert clean.n == N_TEST, clean.n
    assert clean.accuracy > majority + 0.08 and clean.auc > 0.75, (clean.accuracy, majority, clean.auc)
    assert pgd.accuracy < clean.accuracy - 0.20, (pgd.accuracy, clean.accuracy)


def test_a_paired_mail_is_scored_per_task_and_attacked_jointly(capsys, tmp_path):
    code = main(["run", "--model", "mail_rn18", "--dataset", "d12+d14", "--attacks", "pgd-10,square-50",
                 "--preset", "standard", "--results-dir", str(tmp_path), *SMALL])
    assert code == 0, capsys.readouterr().err
    rows = ResultStore(tmp_path / STORE_NAME).frame()
    assert set(rows.task) == {"d12+d14:d12", "d12+d14:d14"}
    assert set(rows.dataset) == {"d12+d14"}
    pgd = rows[rows.attack == "pgd-10"]
    assert len(pgd) == 2
    assert all(json.loads(s)["perturbation"].startswith("joint") for s in pgd.settings)
    square = rows[rows.attack == "square-50"]
    assert all(json.loads(s)["perturbation"] == "all inputs, this task's loss" for s in square.settings)
    # Each task's attacks start from that task's clean-correct points, not another task's. (How much
    # the joint attack takes from a paired model that learned is not tested here: at this budget the
    # paired model has not learned -- measured with 'medmnist', 4 epochs, 400 pairs: d12 task 57%,
    # AUC 0.57 -- and robust <= clean holds by construction. The single-dataset test above does it.)
    for task, group in rows.groupby("task"):
        clean = group[group.attack == "clean"].iloc[0]
        attacked = group[group.attack != "clean"]
        assert (attacked.n_attacked == round(clean.accuracy * clean.n)).all(), task


def test_robust_mail_run_fills_both_protocols(capsys, tmp_path):
    """Issue 6's command at a tiny budget: adversarial training, then every white-box iterative attack
    under the single-draw protocol and under EOT, a black-box attack scored on fresh draws."""
    code = main(["run", "--model", "robust_mail", "--dataset", "d12", "--adversarial", "--adv-steps", "1",
                 "--adv-step", "4/255", "--attacks", "pgd-10,square-50", "--preset", "paper",
                 "--results-dir", str(tmp_path), "--n-train", "60", "--n-test", "16", *TINY])
    assert code == 0, capsys.readouterr().err
    rows = ResultStore(tmp_path / STORE_NAME).frame()
    assert set(rows.model) == {"robust_mail"}
    protocols = rows.groupby("attack").protocol.apply(set).to_dict()
    assert protocols == {"clean": {"randomized"}, "pgd-10": {"single-draw", "eot"},
                         "square-50": {"single-draw"}}
    settings = json.loads(rows.loc[rows.attack == "clean", "settings"].iloc[0])
    assert settings["train"]["adversarial"] is True and settings["draws"] == 10
