"""Batched EOT: one pass over K stacked copies where every draw is per sample, the loop elsewhere."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from robustbench_med.attacks.engine import eot_gradient
from robustbench_med.models.builder import build_model
from robustbench_med.randomness import draws_per_sample

DRAWS = 64


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.flatten(), b.flatten(), 0))


@pytest.mark.parametrize(("model", "defense", "per_sample"), [
    ("robust_mail-man-only", None, True),  # modulated attention noise and dropout: per element
    ("robust_mail", None, False),  # also RPF's held filters
    ("resnet18", "pni", False),  # one weight draw per pass, shared by the batch
    ("resnet18", "learn2perturb", False),  # one (C, H, W) map draw per pass, shared by the batch
    ("resnet18", "rpf", False),  # held draws
    ("resnet18", None, False),  # deterministic
])
def test_only_models_whose_every_draw_is_per_sample_are_batched(model, defense, per_sample, d12_small):
    net = build_model(model, d12_small.info, defense=defense, seed=0).eval()
    assert draws_per_sample(net) is per_sample
    x, y = d12_small.train.x[:4], d12_small.train.y[:4]
    passes: list[int] = []
    grad, _ = eot_gradient(net, x, y, F.cross_entropy, 3, net, passes.append)
    assert passes == ([3 * len(x)] if per_sample else [len(x)] * 3)
    assert grad.shape == x.shape


def test_batched_gradient_is_the_sum_over_separate_draws_in_distribution(d12_small):
    """K stacked copies in one pass give what K separate passes give: the same expected gradient
    (cosine near 1, same norm), while two single draws differ (the noise is real)."""
    net = build_model("robust_mail-man-only", d12_small.info, seed=0).eval()
    x, y = d12_small.train.x[:4], d12_small.train.y[:4]
    torch.manual_seed(0)
    batched, last = eot_gradient(net, x, y, F.cross_entropy, DRAWS, net, batched=True)
    looped, _ = eot_gradient(net, x, y, F.cross_entropy, DRAWS, net, batched=False)
    one, _ = eot_gradient(net, x, y, F.cross_entropy, 1, net, batched=False)
    other, _ = eot_gradient(net, x, y, F.cross_entropy, 1, net, batched=False)
    assert batched.shape == looped.shape == x.shape and last.shape[0] == len(x)
    assert cosine(batched, looped) > 0.9
    assert 0.9 < float(batched.norm() / looped.norm()) < 1.1
    assert cosine(one, other) < 0.9 and cosine(one, looped) < 0.9
