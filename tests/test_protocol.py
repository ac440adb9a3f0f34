"""The evaluation protocol on real data: attacks behave as attacks should on a standard model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from art.attacks.evasion import ProjectedGradientDescent
from art.estimators.classification import PyTorchClassifier
from torch import nn

from robustbench_med.attacks.autoattack import AutoAttackFn, autoattack_plan
from robustbench_med.attacks.iterative import IterativeLinf
from robustbench_med.cli import main
from robustbench_med.evaluation.scoring import probabilities
from robustbench_med.report.plots import sweep_lines
from robustbench_med.store import STORE_NAME, ResultStore
from tests.conftest import N_TEST, cli_args
from tests.toy_models import GaussianInputNoise

CPU = torch.device("cpu")


def clean_correct(model, data, n=96):
    with torch.no_grad():
        keep = model(data.test.x).argmax(1) == data.test.y
    idx = torch.nonzero(keep).flatten()[:n]
    return data.test.x[idx], data.test.y[idx]


def accuracy(model, x, y, draws=1):
    return float((probabilities(model, x, CPU, draws=draws).argmax(1) == y).float().mean())


def pgd(model, x, y, eps, steps, **kw):
    torch.manual_seed(0)
    return IterativeLinf(model, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True,
                         **kw)(x, y)


def test_more_pgd_steps_never_help_a_standard_model(trained_resnet, d12_small):
    model = trained_resnet.model.eval()
    x, y = clean_correct(model, d12_small)
    few, many = (accuracy(model, pgd(model, x, y, 1 / 255, k), y) for k in (5, 40))
    assert few > 0.1, "eps too large: the comparison would be saturated"
    assert many <= few + 0.03


def test_large_eps_drives_a_standard_model_to_zero(trained_resnet, d12_small):
    model = trained_resnet.model.eval()
    x, y = clean_correct(model, d12_small)
    assert accuracy(model, pgd(model, x, y, 0.1, 20), y) <= 0.02


def test_eot_beats_single_draw_on_a_randomized_model(trained_resnet, d12_small):
    model = nn.Sequential(GaussianInputNoise(0.05), trained_resnet.model).eval()
    x, y = clean_correct(trained_resnet.model, d12_small)
    single = accuracy(model, pgd(model, x, y, 4 / 255, 10, early_stop=False), y, draws=10)
    eot = accuracy(model, pgd(model, x, y, 4 / 255, 10, eot_iter=8, early_stop=False), y, draws=10)
    assert eot < single - 0.05, (single, eot)


def test_our_pgd_agrees_with_arts(trained_resnet, d12_small):
    model = trained_resnet.model.eval()
    x, y = clean_correct(model, d12_small)
    ours = IterativeLinf(model, eps=2 / 255, alpha=0.5 / 255, steps=10, early_stop=False)(x, y)
    classifier = PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]),
                                   nb_classes=2, clip_values=(0.0, 1.0), device_type="cpu")
    art_pgd = ProjectedGradientDescent(classifier, norm=np.inf, eps=2 / 255, eps_step=0.5 / 255,
                                       max_iter=10, num_random_init=0, batch_size=128, verbose=False)
    theirs = torch.from_numpy(art_pgd.generate(x=x.numpy(), y=y.numpy()))
    a_ours, a_theirs = accuracy(model, ours, y), accuracy(model, theirs, y)
    assert a_ours < 0.9  # the comparison is not trivially at 100%
    assert abs(a_ours - a_theirs) <= 0.05, (a_ours, a_theirs)


@pytest.mark.parametrize(("classes", "attacks", "note"), [
    (2, ["apgd-ce", "fab-t", "square"], "apgd-t dropped"),
    (3, ["apgd-ce", "apgd-dlr", "fab-t", "square"], "apgd-t replaced"),
    (5, ["apgd-ce", "apgd-t", "fab-t", "square"], None),
])
def test_autoattack_plan_substitutes_only_what_cannot_run(classes, attacks, note):
    planned, targets, notes = autoattack_plan(classes, "standard")
    assert planned == attacks and targets == min(9, classes - 1)
    assert (note is None and not notes) or note in notes[0]
    assert autoattack_plan(2, "rand")[0] == ["apgd-ce"]


def test_autoattack_runs_on_a_binary_task_and_records_it(trained_resnet, d12_small):
    model = trained_resnet.model.eval()
    x, y = clean_correct(model, d12_small, n=24)
    notes: list[str] = []
    x_adv = AutoAttackFn(model, 4 / 255, 2, "standard", CPU, 0, notes)(x, y)
    assert accuracy(model, x_adv, y) <= 0.1
    assert float((x_adv - x).abs().max()) <= 4 / 255 + 1e-6
    assert any("binary task" in n for n in notes)


def test_grid_rows_transfer_and_checks(capsys, results_dir, trained_resnet, d12_small):
    """On a model that learned, white-box PGD takes most of its accuracy and the surrogate transfer
    much less; checks are stored. (Measured: clean 78.1%, AUC 0.91, majority share 56.2%; PGD-20
    at 4/255 1.2%.)"""
    code = main(["run", "--model", "resnet18", "--dataset", "d12", "--attacks",
                 "pgd-20,aa-surrogate", "--preset", "standard", "--surrogate", "mobilenetv2",
                 "--n-test", str(N_TEST), "--results-dir", str(results_dir), *cli_args()])
    assert code == 0, capsys.readouterr().err
    store = ResultStore(results_dir / STORE_NAME)
    rows = store.frame(checkpoint_sha=trained_resnet.sha256)
    clean_row = rows[rows.attack == "clean"].iloc[0]
    clean = clean_row.accuracy
    majority = float(torch.bincount(d12_small.test.y).max()) / len(d12_small.test)
    assert clean > majority + 0.10 and clean_row.auc > 0.80, (clean, majority, clean_row.auc)  # learned
    white = rows[(rows.attack == "pgd-20") & (rows.eps.round(6) == round(4 / 255, 6))].accuracy.iloc[0]
    assert white < clean - 0.40, (white, clean)  # only clean-correct points are attacked: <= is free
    transfer = rows[rows.attack == "aa-surrogate[mobilenetv2]"].accuracy.iloc[0]
    assert transfer > white + 0.1, (transfer, white)
    assert list((results_dir / "zoo" / "mobilenetv2").glob("d12-28px-*.pt"))
    checks = store.checks_frame(checkpoint_sha=trained_resnet.sha256)
    verdicts = dict(zip(checks.check_name, checks.status, strict=True))
    assert verdicts["black-box-beats-white-box"] == "pass"
    assert verdicts["large-eps-above-chance"] == "pass"
    wide = pd.read_csv(results_dir / "leaderboard_wide.csv")
    assert wide.loc[wide.model == "resnet18", "masking"].str.startswith("ok").all()


def test_sweep_spans_the_model_from_robust_to_broken_nested_and_plotted(capsys, results_dir, trained_resnet):
    """Nesting makes a sweep monotone by construction, so that is no evidence the eps reached the
    attack: the first eps must leave most points standing and the largest must break nearly all.
    (Measured: 0.662, 0.244, 0.056, 0.006 at eps 0.002, 0.008, 0.014, 0.02; clean 0.781.)"""
    code = main(["sweep", "--model", "resnet18", "--dataset", "d12", "--attack", "pgd-10",
                 "--preset", "standard", "--eps", "0.002:0.02:4", "--n-test", str(N_TEST),
                 "--results-dir", str(results_dir), "--no-checks", *cli_args()])
    assert code == 0, capsys.readouterr().err
    rows = ResultStore(results_dir / STORE_NAME).frame(attack="pgd-10", preset="standard",
                                                         checkpoint_sha=trained_resnet.sha256)
    rows = rows[rows.eps <= 0.0200001].sort_values("eps")
    assert len(rows) == 4
    first, last = rows.accuracy.iloc[0], rows.accuracy.iloc[-1]
    assert last <= 0.05 and first >= last + 0.40, rows.accuracy.tolist()
    assert rows.n_attacked.tolist()[1:] == [round(a * N_TEST) for a in rows.accuracy.tolist()[:-1]]
    assert rows.settings.iloc[1].count("nested_from") == 1
    assert (results_dir / "plots" / "sweep-d12-pgd-10-standard.png").stat().st_size > 10_000
    assert (results_dir / "plots" / "sweep-d12-pgd-10-standard.svg").is_file()
    # a cell of another run (another test subset) at the same attack never joins the sweep's line
    stray = rows.iloc[[0]].assign(subset="test[40]", n=40, eps=0.05, accuracy=0.99)
    lines = sweep_lines(pd.concat([rows, stray]))
    assert [label for label, _ in lines] == ["resnet18"]
    assert lines[0][1].eps.tolist() == rows.eps.tolist()
