"""Gradient-masking checks: each one trips on a model built to trip it and passes on one that is not.

The check logic is tested on the rows such models produce (so every check is
covered, including ones no small real model trips reliably), and end to end
on real trained models: a non-differentiable input quantiser and a
Gaussian-noise model, against the plain ResNet18.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from robustbench_med.cli import main
from robustbench_med.evaluation.masking import run_checks
from robustbench_med.store import STORE_NAME, ResultStore
from tests import toy_models
from tests.conftest import N_TEST, cli_args

WB, BB = "white-box", "transfer"


def rows(*cells, n=200):
    """Store-like rows from (attack, eps, accuracy, box, preset, protocol, steps, nested)."""
    records = [{"attack": "clean", "eps": 0.0, "accuracy": 0.9, "n": n, "preset": "-",
                "protocol": "deterministic", "settings": "{}"}]
    for attack, eps, acc, box, preset, protocol, steps, nested in cells:
        settings = {"box": box, "steps": steps}
        if nested:
            settings["nested_from"] = 0.01
        records.append({"attack": attack, "eps": eps, "accuracy": acc, "n": n, "preset": preset,
                        "protocol": protocol, "settings": json.dumps(settings)})
    return pd.DataFrame(records)


def cell(attack, eps, acc, box=WB, preset="standard", protocol="deterministic", steps=10, nested=False):
    return (attack, eps, acc, box, preset, protocol, steps, nested)


def verdict(frame, name, n_classes=2, randomized=False):
    return {c.name: c.status for c in run_checks(frame, n_classes=n_classes, randomized=randomized)}[name]


E = 4 / 255


@pytest.mark.parametrize(("name", "masked", "honest", "randomized"), [
    ("black-box-beats-white-box",
     [cell("pgd-10", E, 0.60), cell("square", E, 0.30, box="black-box", steps=None)],
     [cell("pgd-10", E, 0.05), cell("square", E, 0.30, box="black-box", steps=None)], False),
    ("black-box-beats-white-box",
     [cell("pgd-10", E, 0.60), cell("aa-surrogate", E, 0.40, box=BB, steps=None)],
     [cell("pgd-10", E, 0.10), cell("aa-surrogate", E, 0.40, box=BB, steps=None)], False),
    ("accuracy-rises-with-eps",
     [cell("pgd-20", 0.01, 0.20), cell("pgd-20", 0.03, 0.45)],
     [cell("pgd-20", 0.01, 0.20), cell("pgd-20", 0.03, 0.05)], False),
    ("accuracy-rises-with-eps",
     [cell("autoattack", E, 0.10, steps=None), cell("pgd-20", 0.3, 0.50)],
     [cell("autoattack", E, 0.10, steps=None), cell("pgd-20", 0.3, 0.00)], False),
    ("large-eps-above-chance", [cell("pgd-20", 0.3, 0.55)], [cell("pgd-20", 0.3, 0.01)], False),
    ("more-steps-raise-accuracy",
     [cell("pgd-10", E, 0.20, steps=10), cell("pgd-100", E, 0.35, steps=100)],
     [cell("pgd-10", E, 0.20, steps=10), cell("pgd-100", E, 0.15, steps=100)], False),
    ("eot-lowers-accuracy",
     [cell("pgd-10", E, 0.70, protocol="paper"), cell("pgd-10", E, 0.30, protocol="eot")],
     [cell("pgd-10", E, 0.40, protocol="paper"), cell("pgd-10", E, 0.37, protocol="eot")], True),
])
def test_each_check_trips_on_masked_rows_and_passes_honest_ones(name, masked, honest, randomized):
    assert verdict(rows(*masked), name, randomized=randomized) == "fail"
    assert verdict(rows(*honest), name, randomized=randomized) == "pass"


def test_checks_ignore_noise_and_nested_cells():
    # a one-point wobble on 200 points is noise, not masking
    assert verdict(rows(cell("pgd-10", E, 0.200, steps=10), cell("pgd-50", E, 0.205, steps=50)),
                   "more-steps-raise-accuracy") == "pass"
    # nested sweep cells are monotone by construction and are not evidence either way
    assert verdict(rows(cell("pgd-20", 0.01, 0.2), cell("pgd-20", 0.02, 0.2, nested=True)),
                   "accuracy-rises-with-eps") == "n/a"
    assert verdict(rows(cell("pgd-10", E, 0.2)), "eot-lowers-accuracy") == "n/a"


@pytest.fixture(scope="module")
def toys():
    toy_models.register()


def run_and_checks(capsys, results_dir, model, attacks, n_test=N_TEST):
    code = main(["run", "--model", model, "--dataset", "d12", "--attacks", attacks, "--preset",
                 "standard", "--n-test", str(n_test), "--results-dir", str(results_dir), *cli_args()])
    assert code == 0, capsys.readouterr().err
    store = ResultStore(results_dir / STORE_NAME)
    checks = store.checks_frame(model=model)
    return dict(zip(checks.check_name, checks.status, strict=True)), store


def test_a_non_differentiable_quantiser_trips_the_checks(capsys, results_dir, toys):
    verdicts, _ = run_and_checks(capsys, results_dir, "test-quantised-resnet18", "pgd-10,square-300")
    assert verdicts["black-box-beats-white-box"] == "fail"
    assert verdicts["large-eps-above-chance"] == "fail"
    wide = pd.read_csv(results_dir / "leaderboard_wide.csv")
    assert wide.loc[wide.model == "test-quantised-resnet18", "masking"].str.startswith("FAIL").all()


def test_the_plain_model_passes_them(capsys, results_dir, trained_resnet):
    verdicts, _ = run_and_checks(capsys, results_dir, "resnet18", "pgd-10,square-300")
    assert verdicts["black-box-beats-white-box"] == "pass"
    assert verdicts["large-eps-above-chance"] == "pass"
    assert verdicts["eot-lowers-accuracy"] == "n/a"
    assert verdicts["clean-right-on-several-classes"] == "pass"


def test_a_one_class_model_is_flagged_not_called_robust(capsys, results_dir, toys):
    verdicts, store = run_and_checks(capsys, results_dir, "test-constant-resnet18", "pgd-10")
    rows = store.frame(model="test-constant-resnet18")
    clean, attacked = rows[rows.attack == "clean"].iloc[0], rows[rows.attack == "pgd-10"].iloc[0]
    # no attack moves a constant: its "robust accuracy" equals its clean accuracy, one class's share
    assert attacked.accuracy == clean.accuracy
    assert verdicts["clean-right-on-several-classes"] == "fail"
    wide = pd.read_csv(results_dir / "leaderboard_wide.csv")
    assert "clean-right-on-several-classes" in wide.loc[wide.model == "test-constant-resnet18",
                                                         "masking"].iloc[0]


def test_a_noisy_model_is_caught_by_eot(capsys, results_dir, toys):
    verdicts, store = run_and_checks(capsys, results_dir, "test-noisy-resnet18", "pgd-10", n_test=64)
    rows = store.frame(model="test-noisy-resnet18", attack="pgd-10")
    assert set(rows.protocol) == {"paper", "eot"}
    assert verdicts["eot-lowers-accuracy"] == "fail"
