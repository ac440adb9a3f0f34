"""MAIL's fast paths (fastconv.py, dct.py) compute what plain convolutions and matrix products do.

The fast paths re-order sums (per-channel matrices for depth-wise convs on maps
smaller than the kernel, ``F.linear`` for 1x1 convs on 1x1 maps, one product
for the channel DCT), so the check is float rounding: whole models, with the
fast paths swapped for ``F.conv2d`` / ``torch.matmul``, give the same logits
and BN statistics on 32 real D12 images at 28 px (where the
maps shrink to 1x1), with the same seed and so the same noise and random
filters -- which also holds the fast paths to the
plain ones' memory layout, since ``randn_like`` fills memory in order.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from robustbench_med.data import load_dataset
from robustbench_med.models import build_model
from robustbench_med.models.mail import dct, fastconv, rpf

MODELS = [("mail_rn18", {}), ("robust_mail", {}), ("robust_mail", {"man": "code"}),
          ("robust_mail-no-rpan", {}), ("robust_mail-rpf-only", {}), ("robust_mail-man-only", {}),
          ("robust_mail-rpf-man", {})]


def plain_pointwise(x, weight, bias, stride=1, groups=1):
    return F.conv2d(x, weight, bias, stride, groups=groups)


def plain_depthwise(x, weight, bias, stride, padding):
    return F.conv2d(x, weight, bias, stride, padding, groups=x.shape[1])


def plain_dct(self, x):
    return torch.matmul(self.matrix, x.flatten(-2)).view_as(x)


def close(fast: torch.Tensor, plain: torch.Tensor, rel: float = 1e-5, floor: float = 1e-6) -> bool:
    """Equal to ``rel`` of the tensor's scale (at least ``floor``)."""
    scale = plain.float().abs().max().clamp_min(floor)
    return bool((fast.float() - plain.float()).abs().max() <= rel * scale)


def use_plain_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (fastconv, rpf):
        monkeypatch.setattr(module, "pointwise", plain_pointwise)
        monkeypatch.setattr(module, "depthwise", plain_depthwise)
    monkeypatch.setattr(dct.ChannelDCT, "forward", plain_dct)


@pytest.fixture(scope="module")
def images(data_root):
    data = load_dataset("d12", data_root=data_root, image_size=28, n_train=8, n_val=8, n_test=32)
    return data.info, data.test.x


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
    info, x = images
    fast = run(name, options, info, x, train)
    use_plain_paths(monkeypatch)
    plain = run(name, options, info, x, train)
    rel = 2e-4 if train else 1e-5
    assert close(fast[0], plain[0], rel)
    assert fast[1].keys() == plain[1].keys()
    for key, value in plain[1].items():
        assert close(fast[1][key], value, rel, floor=1.0), key  # BN means of ~1e-10 are rounding


@pytest.mark.parametrize(("size", "kernel", "stride"), [(1, 5, 1), (1, 3, 2), (2, 5, 1), (2, 3, 2),
                                                        (4, 5, 1), (4, 5, 2), (7, 5, 2)])
def test_small_map_depthwise_equals_conv2d(size, kernel, stride):
    torch.manual_seed(0)
    x = torch.randn(4, 6, size, size, requires_grad=True)
    w = torch.randn(6, 1, kernel, kernel, requires_grad=True)
    b = torch.randn(6, requires_grad=True)
    fast = fastconv.depthwise(x, w, b, stride, kernel // 2)
    plain = plain_depthwise(x, w, b, stride, kernel // 2)
    assert torch.allclose(fast, plain, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(plain)
    for gf, gp in zip(torch.autograd.grad(fast, (x, w, b), g), torch.autograd.grad(plain, (x, w, b), g),
                      strict=True):
        assert torch.allclose(gf, gp, rtol=1e-5, atol=1e-5)


def test_pointwise_on_a_one_pixel_map_equals_conv2d():
    torch.manual_seed(0)
    x = torch.randn(4, 12, 1, 1, requires_grad=True)
    w = torch.randn(5, 12, 1, 1, requires_grad=True)
    b = torch.randn(5, requires_grad=True)
    fast, plain = fastconv.pointwise(x, w, b), plain_pointwise(x, w, b)
    assert fast.shape == plain.shape and torch.allclose(fast, plain, rtol=1e-5, atol=1e-6)
    g = torch.randn_like(plain)
    for gf, gp in zip(torch.autograd.grad(fast, (x, w, b), g), torch.autograd.grad(plain, (x, w, b), g),
                      strict=True):
        assert torch.allclose(gf, gp, rtol=1e-5, atol=1e-6)
