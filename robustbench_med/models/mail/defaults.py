"""The Keras defaults that the official MAIL code relies on, in PyTorch terms.

The notebooks build every layer with Keras defaults: BatchNormalization with
eps 1e-3 and momentum 0.99 (PyTorch momentum 0.01), Glorot-uniform kernels and
zero biases. PyTorch's defaults differ (eps 1e-5, momentum 0.1, Kaiming
kernels), so MAIL sets them explicitly here. ``torch.nn.init.xavier_uniform_``
gives exactly Keras' Glorot limit for grouped and depth-wise kernels too: both
frameworks sum the same fan-in and fan-out, only split differently.
"""

from __future__ import annotations

from torch import nn

from robustbench_med.models.mail.norm import SmallMapBatchNorm2d

BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # Keras momentum 0.99


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """BatchNorm2d with Keras' eps and momentum (its fast path for tiny maps, ``norm.py``)."""
    return SmallMapBatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def keras_init(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases for every Conv2d and Linear under ``module``."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def set_bn_momentum(module: nn.Module, momentum: float) -> None:
    """Set the running-statistics momentum of every BatchNorm under ``module``.

    Keras' 0.01 makes running statistics lag for hundreds of steps; short runs
    (tests, smoke runs) can ask for a faster one without touching the layers.
    """
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.momentum = momentum
