"""Adversarial training (paper Alg. 2) on a real PneumoniaMNIST slice must buy robustness."""

from __future__ import annotations

import torch

from robustbench_med.attacks.iterative import IterativeLinf
from robustbench_med.models.zoo import Zoo
from robustbench_med.training import AdversarialTraining, default_strategy
from robustbench_med.workflow import train_and_save
from tests.conftest import small_request

EPS = 2 / 255


def robust_accuracy(model, data) -> float:
    """PGD-10 (standard preset) accuracy over every test point of the slice."""
    torch.manual_seed(0)
    x, y = data.test.x, data.test.y
    x_adv = IterativeLinf(model.eval(), eps=EPS, alpha=2.5 * EPS / 10, steps=10,
                          random_start=True)(x, y)
    with torch.no_grad():
        return float((model(x_adv).argmax(1) == y).float().mean())


def test_adversarial_training_lifts_pgd_accuracy_above_standard_training(trained_resnet, d12_small,
                                                                        tmp_path):
    request = small_request(adversarial=True, adv_eps=EPS, adv_step=EPS / 2, adv_steps=3)
    assert isinstance(default_strategy(request.train), AdversarialTraining)
    robust = train_and_save(request, d12_small, Zoo(tmp_path), torch.device("cpu"), progress=False)
    assert robust.config.train["adv_eps"] == EPS  # the attack is part of the checkpoint's identity
    assert robust.metrics["strategy"]["strategy"] == "pgd-at"
    standard_acc = robust_accuracy(trained_resnet.model, d12_small)
    robust_acc = robust_accuracy(robust.model, d12_small)
    majority = float(torch.bincount(d12_small.test.y).max()) / len(d12_small.test)
    assert robust_acc > standard_acc + 0.10, (robust_acc, standard_acc)
    assert robust.metrics["test_accuracy"] > majority - 0.05  # still a classifier, not a constant
