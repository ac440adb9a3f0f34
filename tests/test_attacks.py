"""Attacks on a trained model: they must hurt it, stay in the threat model, and match the libraries."""

from __future__ import annotations

import pytest
import torch
import torchattacks

from robustbench_med.attacks import parse_attack, parse_attacks, parse_eps, parse_eps_list
from robustbench_med.attacks.eps import format_eps
from robustbench_med.attacks.iterative import IterativeLinf
from robustbench_med.errors import BadInputError, UnknownNameError


def correct_points(model, data, n=64):
    with torch.no_grad():
        pred = model(data.test.x).argmax(1)
    idx = torch.nonzero(pred == data.test.y).flatten()[:n]
    return data.test.x[idx], data.test.y[idx]


def accuracy(model, x, y):
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def test_pgd_lowers_a_standard_models_accuracy(trained_resnet, d12_small):
    model = trained_resnet.model.eval()
    x, y = correct_points(model, d12_small)
    request = parse_attack("pgd-10")
    settings = request.spec.settings("standard", None, request.steps)
    from robustbench_med.attacks import AttackContext

    attack = request.spec.build(model, settings, AttackContext(torch.device("cpu"), n_classes=2))
    x_adv = attack(x, y)
    assert accuracy(model, x, y) == 1.0
    assert accuracy(model, x_adv, y) < 0.5
    assert float((x_adv - x).abs().max()) <= 4 / 255 + 1e-6
    assert 0.0 <= float(x_adv.min()) and float(x_adv.max()) <= 1.0


def test_engine_equals_torchattacks_pgd_without_early_stop(trained_resnet, d12_small):
    model = trained_resnet.model.eval()
    x, y = correct_points(model, d12_small, n=16)
    torch.manual_seed(7)
    ours = IterativeLinf(model, eps=4 / 255, alpha=1 / 255, steps=5, random_start=True,
                         early_stop=False)(x, y)
    torch.manual_seed(7)
    theirs = torchattacks.PGD(model, eps=4 / 255, alpha=1 / 255, steps=5, random_start=True)(x, y)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_engine_equals_torchattacks_mim(trained_resnet, d12_small):
    model = trained_resnet.model.eval()
    x, y = correct_points(model, d12_small, n=16)
    ours = IterativeLinf(model, eps=4 / 255, alpha=1 / 255, steps=5, decay=1.0, early_stop=False)(x, y)
    theirs = torchattacks.MIFGSM(model, eps=4 / 255, alpha=1 / 255, steps=5, decay=1.0)(x, y)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_early_stop_keeps_a_successful_iterate_and_costs_less(trained_resnet, d12_small):
    model = trained_resnet.model.eval()
    x, y = correct_points(model, d12_small)
    attack = IterativeLinf(model, eps=8 / 255, alpha=2 / 255, steps=20, early_stop=True)
    x_adv = attack(x, y)
    full = IterativeLinf(model, eps=8 / 255, alpha=2 / 255, steps=20, early_stop=False)
    full(x, y)
    assert accuracy(model, x_adv, y) <= 0.2
    assert attack.forward_backward_passes < full.forward_backward_passes


def test_attack_names_parse():
    assert parse_attack("pgd-37").steps == 37
    assert parse_attack("PGD-10").name == "pgd-10"
    assert parse_attack("bim").steps == 10
    with pytest.raises(UnknownNameError, match="did you mean 'pgd-10'"):
        parse_attack("pgdd-10")
    with pytest.raises(BadInputError):
        parse_attack("pgd-0")
    names = [r.name for r in parse_attacks("all")]
    assert {"pgd-10", "pgd-20", "pgd-50", "pgd-100", "bim-10", "mim-10"} <= set(names)
    assert "eot-pgd-20" not in names
    assert "eot-pgd-20" in [r.name for r in parse_attacks("all", randomized=True)]


def test_presets_follow_the_paper_and_the_standard_rule():
    spec = parse_attack("pgd-20").spec
    paper = spec.settings("paper", None, 20)
    assert (paper.eps, paper.alpha, paper.random_start) == (4 / 255, 10 / 255, True)
    standard = spec.settings("standard", 8 / 255, 20)
    assert standard.alpha == pytest.approx(2.5 * (8 / 255) / 20) and standard.random_start
    code = spec.settings("code", None, 10)
    assert (code.alpha, code.random_start) == (1 / 255, False)
    assert not parse_attack("bim-10").spec.settings("standard", None, 10).random_start
    with pytest.raises(BadInputError, match="unknown preset 'papr'; did you mean 'paper'"):
        spec.settings("papr", None, 10)


@pytest.mark.parametrize(("text", "value"), [("4/255", 4 / 255), ("0.0157", 0.0157), (".03", 0.03),
                                             ("8 / 255", 8 / 255), ("1e-2", 0.01)])
def test_eps_parses(text, value):
    assert parse_eps(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["abc", "4/0", "4//255", "-0.1", "2", "", "nan", "4/255/3"])
def test_malformed_eps_is_refused(text):
    with pytest.raises(BadInputError, match="eps"):
        parse_eps(text)


def test_eps_ranges_and_lists():
    assert parse_eps_list("0.01:0.1:10")[:2] == pytest.approx([0.01, 0.02])
    assert len(parse_eps_list("0.01:0.1:10")) == 10
    assert parse_eps_list("8/255,4/255") == pytest.approx([4 / 255, 8 / 255])
    assert format_eps(4 / 255) == "4/255" and format_eps(0.03) == "0.03"
    with pytest.raises(BadInputError):
        parse_eps_list("0.1:0.01:5")


def test_transfer_attacks_are_refused_for_paired_datasets():
    with pytest.raises(BadInputError, match="cannot attack a paired dataset"):
        parse_attacks("pgd-10,aa-surrogate", paired=True)
    names = [r.name for r in parse_attacks("all", paired=True)]
    assert "pgd-10" in names and "square" in names
    assert not {"aa-surrogate", "square-surrogate"} & set(names)


def test_square_budget_inside_autoattack_is_a_setting():
    from torch import nn

    from robustbench_med.attacks.autoattack import build_autoattack
    from robustbench_med.attacks.spec import AttackContext, AttackSettings
    from robustbench_med.attacks.transfer import build_aa_surrogate
    from robustbench_med.evaluation.stored_names import with_square_queries

    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    ctx = AttackContext(device=torch.device("cpu"), n_classes=3, surrogate=lambda: net)
    default = AttackSettings(eps=4 / 255, preset="standard")
    small = AttackSettings(eps=4 / 255, preset="standard", square_queries=7)
    assert build_autoattack("standard")(net, default, ctx).adversary.square.n_queries == 5000
    assert build_autoattack("standard")(net, small, ctx).adversary.square.n_queries == 7
    assert "square_queries" not in default.as_record() and small.as_record()["square_queries"] == 7
    assert build_aa_surrogate(net, small, ctx).adversary.square.n_queries == 7
    renamed = with_square_queries(parse_attacks("square,square-surrogate,square-90,pgd-10"), 500)
    assert [r.name for r in renamed] == ["square-500", "square-surrogate-500", "square-90", "pgd-10"]
    assert with_square_queries(parse_attacks("square"), 5000)[0].name == "square"
