"""MAIL's fast layers (models/mail/fastconv.py, norm.py) compute what the plain PyTorch layers do.

Each path (depth-wise as matrix products or channels-last, 1x1 as ``F.linear`` or batched products,
BatchNorm over rows) is compared with ``F.conv2d`` / ``nn.BatchNorm2d`` on every map size that picks
it, forward and backward (whole models: ``test_mail_speed_equivalence.py``).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustbench_med.models.mail.fastconv import depthwise, plain_layers, pointwise, uses_matrix
from robustbench_med.models.mail.msgdc import MSGDC
from robustbench_med.models.mail.norm import SmallMapBatchNorm2d
from robustbench_med.models.mail.shuffle import channel_shuffle


def channels_last_grad(y: torch.Tensor) -> torch.Tensor:
    """An upstream gradient laid out channels-last, as the row paths hand back."""
    return torch.randn_like(y).contiguous(memory_format=torch.channels_last)


def assert_same(fast: torch.Tensor, plain: torch.Tensor, inputs: tuple[torch.Tensor, ...],
                upstream: torch.Tensor, *, tol: float, grad_atol: float, grad_rtol: float,
                plain_inputs: tuple[torch.Tensor, ...] | None = None) -> None:
    """Equal outputs (``tol``) and equal gradients of ``upstream`` through both to their inputs."""
    assert fast.shape == plain.shape
    torch.testing.assert_close(fast, plain, atol=tol, rtol=tol)
    fast_grads = torch.autograd.grad(fast, inputs, upstream)
    plain_grads = torch.autograd.grad(plain, plain_inputs or inputs, upstream)
    for a, c in zip(fast_grads, plain_grads, strict=True):
        torch.testing.assert_close(a, c, atol=grad_atol, rtol=grad_rtol)


@pytest.mark.parametrize("size", [1, 2, 4, 7, 8, 9])
@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_equals_conv2d(size, kernel, stride):
    torch.manual_seed(size * 10 + kernel + stride)
    x = torch.randn(4, 16, size, size, requires_grad=True)
    w = torch.randn(16, 1, kernel, kernel, requires_grad=True)
    b = torch.randn(16, requires_grad=True)
    fast = depthwise(x, w, b, stride, kernel // 2)
    plain = F.conv2d(x, w, b, stride, kernel // 2, groups=16)
    assert_same(fast, plain, (x, w, b), channels_last_grad(plain), tol=1e-5, grad_atol=1e-5, grad_rtol=1e-5)


def test_matrix_path_covers_the_small_maps():
    """Up to 3x the conv's multiply-adds: 5x5 kernels on maps up to 8x8, 3x3 up to 5x5."""
    def on(size: int, kernel: int) -> bool:
        return uses_matrix(torch.empty(1, 1, size, size), kernel)

    assert on(8, 5) and on(7, 5) and not on(9, 5)
    assert on(5, 3) and not on(7, 3)


@pytest.mark.parametrize("size", [1, 2, 4, 7, 8])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("groups", [1, 2, 16])
def test_pointwise_equals_conv2d(size, stride, groups):
    torch.manual_seed(size + stride + groups)
    x = torch.randn(4, 32, size, size, requires_grad=True)
    w = torch.randn(48, 32 // groups, 1, 1, requires_grad=True)
    b = torch.randn(48, requires_grad=True)
    fast = pointwise(x, w, b, stride, groups)
    plain = F.conv2d(x, w, b, stride, groups=groups)
    assert groups > 1 or fast.is_contiguous()
    assert_same(fast, plain, (x, w, b), channels_last_grad(plain), tol=1e-5, grad_atol=1e-5, grad_rtol=1e-5)


@pytest.mark.parametrize("size", [1, 2, 4])
def test_small_map_batch_norm_equals_batch_norm(size):
    torch.manual_seed(size)
    fast, plain = SmallMapBatchNorm2d(24, eps=1e-3, momentum=0.1), nn.BatchNorm2d(24, eps=1e-3, momentum=0.1)
    with torch.no_grad():
        for layer in (fast, plain):
            layer.weight.copy_(torch.linspace(0.5, 2.0, 24))
            layer.bias.copy_(torch.linspace(-1.0, 1.0, 24))
    x = (torch.randn(8, 24, size, size) * 3 + 1).requires_grad_()
    y_fast, y_plain = fast(x), plain(x)
    assert y_fast.is_contiguous()
    assert_same(y_fast, y_plain, (x, fast.weight, fast.bias), torch.randn_like(y_plain), tol=1e-5,
                grad_atol=1e-4, grad_rtol=1e-4, plain_inputs=(x, plain.weight, plain.bias))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(fast, name), getattr(plain, name))
    fast.eval(), plain.eval()
    torch.testing.assert_close(fast(x), plain(x), atol=1e-5, rtol=1e-5)
    assert set(fast.state_dict()) == set(plain.state_dict())


@pytest.mark.parametrize(("channels", "groups"), [(192, 2), (48, 2), (64, 1)])
def test_shuffle_folded_into_the_pointwise_equals_shuffle_then_conv(channels, groups):
    """16-group shuffle, then the fuse: folded into one copy where the shuffled groups split evenly
    (192 = 16 x 12 channels into 2 groups), else shuffled first (48 = 16 x 3 into 2; ungrouped)."""
    torch.manual_seed(channels)
    x = torch.randn(4, channels, 5, 5, requires_grad=True)
    w = torch.randn(24, channels // groups, 1, 1, requires_grad=True)
    b = torch.randn(24, requires_grad=True)
    fast = pointwise(x, w, b, 1, groups, shuffle=16)
    plain = F.conv2d(channel_shuffle(x, 16), w, b, groups=groups)
    assert_same(fast, plain, (x, w, b), torch.randn_like(plain), tol=1e-5, grad_atol=1e-5, grad_rtol=1e-5)
    assert not torch.allclose(plain, F.conv2d(x, w, b, groups=groups), atol=1e-2)  # the shuffle matters


@pytest.mark.parametrize("branch_norm", [False, True])
def test_msgdc_on_a_channels_last_map_equals_its_plain_layers(branch_norm):
    """A 16x16 map: depth-wise convs in channels-last memory (their gradient back in NCHW), the
    branch BatchNorms on contiguous maps, the shuffle folded into the fuse."""
    torch.manual_seed(3)
    layer = MSGDC(32, 32, branch_norm=branch_norm).train()
    x = torch.randn(4, 32, 16, 16, requires_grad=True)
    fast = layer(x)
    with plain_layers():
        plain = layer(x)
    assert_same(fast, plain, (x, *layer.parameters()), torch.randn_like(plain), tol=1e-4, grad_atol=1e-3,
                grad_rtol=1e-3)
