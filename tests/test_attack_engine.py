"""The one L-inf loop: evaluation's attack and training's attacks are the same loop on the same draws."""

from __future__ import annotations

import pytest
import torch

from robustbench_med.attacks.engine import eval_mode, gaussian_start, linf_attack, pgd_examples
from robustbench_med.attacks.iterative import IterativeLinf
from robustbench_med.models.builder import build_model
from robustbench_med.models.losses import multitask_loss

EPS, STEP = 4 / 255, 1 / 255


@pytest.fixture(scope="module")
def net_and_batch(d12_small):
    model = build_model("resnet18", d12_small.info, seed=0)
    return model, d12_small.train.x[:8], d12_small.train.y[:8]


def test_training_examples_are_evaluations_pgd_on_the_same_seed(net_and_batch):
    """pgd_examples (adversarial training) and IterativeLinf (evaluation) give the same examples,
    and training's attack leaves the model in the mode it found."""
    model, x, y = net_and_batch
    model.train()
    torch.manual_seed(5)
    trained_side = pgd_examples(model, x, y, eps=EPS, step=STEP, steps=4)
    assert model.training
    torch.manual_seed(5)
    evaluation_side = IterativeLinf(model, eps=EPS, alpha=STEP, steps=4, random_start=True,
                                    early_stop=False, loss_fn=multitask_loss)(x, y)
    assert torch.equal(trained_side, evaluation_side)
    assert float((trained_side - x).abs().max()) <= EPS + 1e-6
    assert not torch.equal(trained_side, x)


def test_a_given_start_is_kept_for_zero_steps_and_projected_after(net_and_batch):
    model, x, y = net_and_batch
    torch.manual_seed(0)
    start = gaussian_start(x, 0.001)
    with eval_mode(model):
        assert torch.equal(linf_attack(model, x, y, eps=EPS, step=STEP, steps=0, start=start), start)
        adv = linf_attack(model, x, y, eps=EPS, step=STEP, steps=3, start=start)
    assert float((adv - x).abs().max()) <= EPS + 1e-6 and float(adv.min()) >= 0 and float(adv.max()) <= 1


def test_early_stop_keeps_the_first_iterate_that_fools(net_and_batch):
    """With early stop, a point the model already gets wrong leaves at once, unmoved."""
    model, x, y = net_and_batch
    with eval_mode(model), torch.no_grad():
        wrong = model(x).argmax(1) != y
    passes: list[int] = []
    with eval_mode(model):
        adv = linf_attack(model, x, y, eps=EPS, step=STEP, steps=3, early_stop=True, on_pass=passes.append)
    assert torch.equal(adv[wrong], x[wrong])
    assert passes[0] == len(x) and sum(passes) <= 3 * len(x)
    if wrong.any():
        assert len(passes) == 1 or passes[1] <= len(x) - int(wrong.sum())


def test_an_unknown_start_is_refused(net_and_batch):
    model, x, y = net_and_batch
    with pytest.raises(ValueError, match="start"):
        linf_attack(model, x, y, eps=EPS, step=STEP, steps=1, start="gaussian")  # type: ignore[arg-type]
