"""MAIL's fast layers (fastconv.py, norm.py, dct.py) compute what plain PyTorch layers do, whole models.

The fast layers re-order sums (per-channel matrices for depth-wise convs on
small maps, ``F.linear`` for 1x1 convs on maps up to 4x4, BatchNorm over rows
on 2x2 maps, one product for the channel DCT), so the check is float
rounding: whole models under ``plain_layers()`` (and the DCT as
``torch.matmul``) give the same logits and BN statistics on 32 real D12
images at 28 px (where the maps shrink to 1x1), with the same seed and so the
same noise and random filters -- which also holds the fast layers to the plain
ones' memory layout, since ``randn_like`` fills memory in order -- and the
same parameter gradients in training mode. Layer by layer: ``test_fast_layers.py``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from robustbench_med.data import load_dataset
from robustbench_med.models import build_model
from robustbench_med.models.mail import dct
from robustbench_med.models.mail.fastconv import plain_layers

MODELS = [("mail_rn18", {}), ("robust_mail", {}), ("robust_mail", {"man": "code"}),
          ("robust_mail-no-rpan", {}), ("robust_mail-rpf-only", {}), ("robust_mail-man-only", {}),
          ("robust_mail-rpf-man", {})]


def plain_dct(self, x):
    return torch.matmul(self.matrix, x.flatten(-2)).view_as(x)


def close(fast: torch.Tensor, plain: torch.Tensor, rel: float = 1e-5, floor: float = 1e-6) -> bool:
    """Equal to ``rel`` of the tensor's scale (at least ``floor``)."""
    scale = plain.float().abs().max().clamp_min(floor)
    return bool((fast.float() - plain.float()).abs().max() <= rel * scale)


def use_plain_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dct.ChannelDCT, "forward", plain_dct)


@pytest.fixture(scope="module")
def images(data_root):
    data = load_dataset("d12", data_root=data_root, image_size=28, n_train=8, n_val=8, n_test=32)
    return data.info, data.test.x, data.test.y


def run(name: str, options: dict, info, x: torch.Tensor, train: bool):
    model = build_model(name, info, seed=0, model_options=options).train(train)
    torch.manual_seed(7)
    with torch.no_grad():
        return model(x), model.state_dict()


CASES = [(name, options, train) for name, options in MODELS for train in (True, False)
         if not (train and options.get("man") == "code")]


@pytest.mark.parametrize(("name", "options", "train"), CASES,
                         ids=[f"{n}-{'-'.join(o.values())}-{'train' if t else 'eval'}" for n, o, t in CASES])
def test_fast_paths_equal_plain_convolutions(images, monkeypatch, name, options, train):
    info, x, _ = images
    fast = run(name, options, info, x, train)
    use_plain_paths(monkeypatch)
    with plain_layers():
        plain = run(name, options, info, x, train)
    rel = 2e-4 if train else 1e-5
    assert close(fast[0], plain[0], rel)
    assert fast[1].keys() == plain[1].keys()
    for key, value in plain[1].items():
        assert close(fast[1][key], value, rel, floor=1.0), key  # BN means of ~1e-10 are rounding


@pytest.mark.parametrize("name", ["mail_rn18", "robust_mail"])
def test_fast_layers_give_the_plain_gradients_on_real_images(images, name):
    """The training-mode loss and every parameter gradient of the fast model equal the plain one's
    on D12 (28 px: maps 7x7 to 1x1, every fast path); Robust-MAIL's draws are seeded alike."""
    info, x, y = images
    model = build_model(name, info, seed=0).train()

    def loss_and_grads() -> tuple[torch.Tensor, list[torch.Tensor]]:
        torch.manual_seed(7)
        loss = F.cross_entropy(model(x), y)
        return loss.detach(), [g.detach() for g in torch.autograd.grad(loss, list(model.parameters()))]

    fast_loss, fast_grads = loss_and_grads()
    with plain_layers():
        plain_loss, plain_grads = loss_and_grads()
    torch.testing.assert_close(fast_loss, plain_loss, atol=0, rtol=1e-4)
    # the whole gradient, and each parameter's that carries a share of it (biases in front of a
    # BatchNorm have a true gradient of zero: what is computed there is rounding noise)
    fast_all = torch.cat([g.flatten() for g in fast_grads])
    plain_all = torch.cat([g.flatten() for g in plain_grads])
    assert ((fast_all - plain_all).norm() / plain_all.norm()).item() < 1e-3
    floor = 1e-2 * plain_all.norm() / len(plain_grads) ** 0.5
    carrying = [((a - c).norm() / c.norm()).item() for a, c in zip(fast_grads, plain_grads, strict=True)
                if c.norm() > floor]
    assert len(carrying) > len(plain_grads) // 3 and max(carrying) < 1e-3
