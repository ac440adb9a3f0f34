"""Gradient-masking checks: each one trips on a model built to trip it, passes on one that is not, and
tells the noise of a small test set or of a randomized model's scoring from masking.

The check logic is tested on store-like rows that carry per-point flags (so every check is covered,
including ones no small real model trips reliably, and no data is needed), and end to end on real
trained models: a non-differentiable input quantiser and a constant predictor, against the plain
ResNet18.
"""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

from robustbench_med.cli import main
from robustbench_med.evaluation.masking import ALPHA, run_checks
from robustbench_med.store import CHECK_KEY, STORE_NAME, ResultStore, pack_flags
from tests import toy_models
from tests.conftest import N_TEST, cli_args

WB, BB = "white-box", "transfer"
E = 4 / 255
N = 200
CLEAN = 0.9  # the clean rows' accuracy: the first 90% of the points are attacked


def prefix(acc: float, n: int = N) -> np.ndarray:
    """Flags right on the first acc x n points: cells built this way are nested, so a gap between
    two of them is all discordant points one way (the clearest evidence a gap can have)."""
    return np.arange(n) < round(acc * n)


def cell(attack, eps, acc, box=WB, preset="standard", protocol="deterministic", steps=10, nested=False):
    """``acc``: an accuracy (flags by ``prefix``) or the per-point flags themselves."""
    return (attack, eps, acc, box, preset, protocol, steps, nested)


def rows(*cells, n=N, paired=True):
    """Store-like rows, as ``ResultStore.frame(with_flags=True)`` returns them (without ``flags``
    when not ``paired``)."""
    clean = prefix(CLEAN, n)
    records = [{"attack": "clean", "eps": 0.0, "flags": clean, "preset": "-",
                "protocol": "deterministic", "settings": "{}"}]
    for attack, eps, acc, box, preset, protocol, steps, nested in cells:
        settings = {"box": box, "steps": steps} | ({"nested_from": 0.01} if nested else {})
        flags = prefix(acc, n) if np.isscalar(acc) else np.asarray(acc, dtype=bool)
        records.append({"attack": attack, "eps": eps, "flags": flags, "preset": preset,
                        "protocol": protocol, "settings": json.dumps(settings)})
    frame = pd.DataFrame(records)
    frame["n"], frame["n_attacked"] = n, int(clean.sum())
    frame["accuracy"] = [float(f.mean()) for f in frame["flags"]]
    frame["flags"] = [pack_flags(f) for f in frame["flags"]]
    return frame if paired else frame.drop(columns="flags")


def results(frame, n_classes=2, randomized=False, draw_noise=None):
    return {c.name: c for c in run_checks(frame, n_classes=n_classes, randomized=randomized,
                                          draw_noise=draw_noise)}


def verdict(frame, name, **kwargs):
    return results(frame, **kwargs)[name].status


MASKED_AND_HONEST = [
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
     [cell("pgd-10", E, 0.70, protocol="single-draw"), cell("pgd-10", E, 0.30, protocol="eot")],
     [cell("pgd-10", E, 0.37, protocol="single-draw"), cell("pgd-10", E, 0.40, protocol="eot")], True),
]


@pytest.mark.parametrize(("name", "masked", "honest", "randomized"), MASKED_AND_HONEST)
def test_each_check_trips_on_masked_rows_and_passes_honest_ones(name, masked, honest, randomized):
    failed = results(rows(*masked), randomized=randomized)[name]
    assert failed.status == "fail"
    assert failed.p_value is not None and failed.p_value < ALPHA
    assert verdict(rows(*honest), name, randomized=randomized) == "pass"


@pytest.mark.parametrize(("name", "masked", "honest", "randomized"), MASKED_AND_HONEST)
def test_rows_without_flags_fall_back_to_the_unpaired_rule(name, masked, honest, randomized):
    failed = results(rows(*masked, paired=False), randomized=randomized)[name]
    assert failed.status == "fail"
    assert name == "large-eps-above-chance" or "unpaired" in failed.detail
    assert verdict(rows(*honest, paired=False), name, randomized=randomized) == "pass"


def test_checks_ignore_noise_and_nested_cells():
    # a one-point wobble on 200 points points the masking way but cannot decide anything
    assert verdict(rows(cell("pgd-10", E, 0.200, steps=10), cell("pgd-50", E, 0.205, steps=50)),
                   "more-steps-raise-accuracy") == "inconclusive"
    # nested sweep cells are monotone by construction and are not evidence either way
    assert verdict(rows(cell("pgd-20", 0.01, 0.2), cell("pgd-20", 0.02, 0.2, nested=True)),
                   "accuracy-rises-with-eps") == "n/a"
    assert verdict(rows(cell("pgd-10", E, 0.2)), "eot-lowers-accuracy") == "n/a"


def pair(name, suspect, reference):
    """Two cells that ``name`` compares; ``suspect`` is the one that is too high if the model masks."""
    if name == "black-box-beats-white-box":
        return [cell("pgd-10", E, suspect), cell("square", E, reference, box="black-box", steps=None)]
    if name == "accuracy-rises-with-eps":
        return [cell("pgd-20", 0.01, reference), cell("pgd-20", 0.03, suspect)]
    if name == "more-steps-raise-accuracy":
        return [cell("pgd-10", E, reference, steps=10), cell("pgd-100", E, suspect, steps=100)]
    return [cell("pgd-10", E, suspect, protocol="single-draw"), cell("pgd-10", E, reference, protocol="eot")]


COMPARISONS = ["black-box-beats-white-box", "accuracy-rises-with-eps", "more-steps-raise-accuracy",
               "eot-lowers-accuracy"]


def split(n, both, suspect_only, reference_only):
    """Flags of two cells over n points: right together on ``both``, then apart on the others."""
    index = np.arange(n)
    suspect = (index < both) | ((index >= both) & (index < both + suspect_only))
    start = both + suspect_only
    reference = (index < both) | ((index >= start) & (index < start + reference_only))
    return suspect, reference


@pytest.mark.parametrize("name", COMPARISONS)
def test_a_small_subsets_noise_is_never_called_masking(name):
    # 12.5 points on 40 points (7 discordant one way, 2 the other), the spread fresh draws gave
    # Robust-MAIL's cells on D14: the old tolerance rule failed it, McNemar cannot decide it
    suspect, reference = split(40, 12, 7, 2)
    assert suspect.mean() - reference.mean() == pytest.approx(0.125)
    for randomized in (True,) if name == "eot-lowers-accuracy" else (False, True):
        result = results(rows(*pair(name, suspect, reference), n=40), randomized=randomized)[name]
        assert result.status in {"pass", "inconclusive"}
        assert result.p_value is not None and result.p_value >= ALPHA


@pytest.mark.parametrize("name", COMPARISONS)
def test_a_clear_masking_pattern_fails_with_its_p_value(name):
    # 30 of 200 points right in the suspect cell that the reference cell got wrong, none the other way
    suspect, reference = split(N, 20, 30, 0)
    result = results(rows(*pair(name, suspect, reference)), randomized=name == "eot-lowers-accuracy")[name]
    assert result.status == "fail"
    assert result.p_value < ALPHA
    assert result.statistic == 30


def noisy_scoring(truth: np.ndarray, flip: float, rng: np.random.Generator) -> np.ndarray:
    """One scoring of a randomized model: the attacked points' flags flip with probability ``flip``."""
    attacked = np.arange(len(truth)) < round(CLEAN * len(truth))
    return truth ^ (attacked & (rng.random(len(truth)) < flip))


def measured_draw_noise(truth: np.ndarray, flip: float, rng: np.random.Generator) -> float:
    """What the runner measures: the share of points two independent scorings disagree on."""
    return float((noisy_scoring(truth, flip, rng) != noisy_scoring(truth, flip, rng)).mean())


@pytest.mark.parametrize("name", COMPARISONS)
@pytest.mark.parametrize("seed", range(10))
def test_a_model_whose_only_randomness_is_scoring_noise_passes(name, seed):
    rng = np.random.default_rng(seed)
    truth = prefix(0.3)  # both attacks equally strong: they break the same points
    draw_noise = measured_draw_noise(truth, 0.06, rng)
    cells = pair(name, noisy_scoring(truth, 0.06, rng), noisy_scoring(truth, 0.06, rng))
    result = results(rows(*cells), randomized=True, draw_noise=draw_noise)[name]
    assert result.status == "pass", result.detail


@pytest.mark.parametrize("name", COMPARISONS)
def test_one_way_flips_within_the_measured_noise_pass_and_unmeasured_noise_is_said(name):
    # scoring noise can flip boundary points one way only: 16 of 180 attacked points at draw_noise 0.1
    suspect, reference = split(N, 40, 16, 0)
    frame = rows(*pair(name, suspect, reference))
    measured = results(frame, randomized=True, draw_noise=0.1)[name]
    assert measured.status == "pass"
    unmeasured = results(frame, randomized=True, draw_noise=None)[name]
    assert unmeasured.status == "fail"
    assert "scoring noise not measured" in unmeasured.detail


def test_a_noisy_model_is_caught_by_eot():
    # single-draw gradients leave 60% of the points robust; EOT breaks half of those; every cell is
    # scored through the model's own noise (7% of attacked points flip per scoring)
    rng = np.random.default_rng(0)
    single, averaged = prefix(0.60), prefix(0.30)
    draw_noise = measured_draw_noise(single, 0.07, rng)
    cells = [cell("pgd-10", E, noisy_scoring(single, 0.07, rng), protocol="single-draw"),
             cell("pgd-10", E, noisy_scoring(averaged, 0.07, rng), protocol="eot")]
    result = results(rows(*cells), randomized=True, draw_noise=draw_noise)["eot-lowers-accuracy"]
    assert result.status == "fail", result.detail
    assert result.p_value < ALPHA
    # the same model scored the same way, with EOT no stronger than one draw, is not flagged
    honest = [cell("pgd-10", E, noisy_scoring(averaged, 0.07, rng), protocol="single-draw"),
              cell("pgd-10", E, noisy_scoring(averaged, 0.07, rng), protocol="eot")]
    assert verdict(rows(*honest), "eot-lowers-accuracy", randomized=True, draw_noise=draw_noise) == "pass"


def test_every_paired_check_keeps_its_test_as_evidence():
    frame = rows(cell("pgd-10", E, 0.60, steps=10, protocol="single-draw"),
                 cell("pgd-100", E, 0.65, steps=100, protocol="single-draw"),
                 cell("pgd-10", E, 0.20, steps=10, protocol="eot"),
                 cell("square", E, 0.30, box="black-box", steps=None, protocol="single-draw"),
                 cell("pgd-20", 0.3, 0.40, protocol="single-draw"))
    checks = results(frame, randomized=True, draw_noise=0.02)
    assert {c.status for c in checks.values()} >= {"fail"}
    for name in (*COMPARISONS, "large-eps-above-chance"):
        result = checks[name]
        assert result.statistic is not None and 0.0 <= result.p_value <= 1.0, name
        assert "p = " in result.detail
    for name in COMPARISONS:
        assert "exact McNemar" in checks[name].detail and "discordant" in checks[name].detail
    assert "exact binomial" in checks["large-eps-above-chance"].detail


def test_the_store_keeps_the_evidence_and_reads_old_stores(tmp_path):
    path = tmp_path / STORE_NAME
    key = {"model": "m", "defense": "", "dataset": "d12", "task": "t", "protocol": "all", "seed": 0,
           "subset": "full", "checkpoint_sha": "sha", "code_version": "v"}
    ResultStore(path)
    with sqlite3.connect(path) as db:  # a checks table from before the evidence columns
        db.execute("DROP TABLE checks")
        columns = ", ".join(f"{c} TEXT NOT NULL" for c in CHECK_KEY)
        db.execute(f"CREATE TABLE checks (id INTEGER PRIMARY KEY, {columns}, status TEXT NOT NULL, "
                   f"detail TEXT, created TEXT, UNIQUE ({', '.join(CHECK_KEY)}))")
        db.execute(f"INSERT INTO checks ({', '.join(CHECK_KEY)}, status) VALUES "
                   f"({', '.join('?' for _ in CHECK_KEY)}, 'pass')", (*key.values(), "old-check"))
    db.close()
    store = ResultStore(path)
    old = store.checks_frame()
    assert old.loc[0, "status"] == "pass" and pd.isna(old.loc[0, "p_value"])
    store.put_check(key, "new-check", "fail", "exact McNemar", statistic=30.0, p_value=1e-9)
    new = store.checks_frame(check_name="new-check").iloc[0]
    assert (new.statistic, new.p_value) == (30.0, 1e-9)
    assert len(store.checks_frame()) == 2


def test_the_store_hands_out_flags_on_request(tmp_path):
    from robustbench_med.store import ResultKey, unpack_flags

    store = ResultStore(tmp_path / STORE_NAME)
    flags = prefix(0.3)
    key = ResultKey("m", "", "d12", "t", "pgd-10", "standard", E, "deterministic", 0, "full", "sha", "v")
    store.put(key, flags=flags, n=N, accuracy=float(flags.mean()))
    assert "flags" not in store.frame()
    stored = store.frame(with_flags=True, model="m").iloc[0]
    assert (unpack_flags(stored["flags"], int(stored["n"])) == flags).all()


def test_the_one_class_check_tests_each_classs_recall():
    from robustbench_med.evaluation.masking import check_one_class

    labels = np.repeat([0, 1], 100)
    constant = check_one_class((labels == 1, labels))
    assert constant.status == "fail" and constant.p_value is not None
    learned = check_one_class(((labels == 1) | (np.arange(200) < 60), labels))
    assert learned.status == "pass" and learned.p_value < ALPHA
    # one lucky point of the other class (1%) is still a constant predictor
    assert check_one_class(((labels == 1) | (np.arange(200) == 0), labels)).status == "fail"


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


def paired_verdicts(store, model, n_classes=2):
    """The checks on the model's stored rows with their flags, as the runner runs them."""
    frame = store.frame(model=model, with_flags=True)
    return {c.name: c for c in run_checks(frame, n_classes=n_classes, randomized=False)}


def test_a_non_differentiable_quantiser_trips_the_checks(capsys, results_dir, toys):
    verdicts, store = run_and_checks(capsys, results_dir, "test-quantised-resnet18", "pgd-10,square-300")
    assert verdicts["black-box-beats-white-box"] == "fail"
    assert verdicts["large-eps-above-chance"] == "fail"
    paired = paired_verdicts(store, "test-quantised-resnet18")
    for name in ("black-box-beats-white-box", "large-eps-above-chance"):
        assert paired[name].status == "fail" and paired[name].p_value < ALPHA, paired[name].detail
    wide = pd.read_csv(results_dir / "leaderboard_wide.csv")
    assert wide.loc[wide.model == "test-quantised-resnet18", "masking"].str.startswith("FAIL").all()


def test_the_plain_model_passes_them(capsys, results_dir, trained_resnet):
    verdicts, store = run_and_checks(capsys, results_dir, "resnet18", "pgd-10,square-300")
    assert verdicts["black-box-beats-white-box"] == "pass"
    assert verdicts["large-eps-above-chance"] == "pass"
    assert verdicts["eot-lowers-accuracy"] == "n/a"
    assert verdicts["clean-right-on-several-classes"] == "pass"
    paired = paired_verdicts(store, "resnet18")
    assert paired["black-box-beats-white-box"].status != "fail"
    assert paired["large-eps-above-chance"].status == "pass"


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
