"""The one randomness protocol: what makes a model randomized, and how to re-draw it.

A module that draws randomness declares ``randomized = True`` (a class or
instance attribute) and, when it *holds* a draw between passes (RPF's random
filters, CTRW's weights), exposes ``resample()`` that re-draws its own draws.

Both are found by walking ``model.modules()``, so every wrapper that is an
``nn.Module`` -- our task view and packed-modalities view, a defense, a
plugin's wrapper, a surrogate -- passes them on without writing any glue.
Before this, the suite asked only the outermost module (``getattr(model,
"resample")``) and the runner's wrappers answered "no": held-draw defenses were
scored and attacked with EOT on one draw.

Wrappers may still offer ``model.resample()`` and ``model.randomized`` for
callers who expect them (:class:`Delegating`), built on these functions.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn


def _declares_randomness(module: nn.Module) -> bool:
    """The module's own declaration; a property (a wrapper asking its children) does not count."""
    declared = inspect.getattr_static(module, "randomized", False)
    return False if isinstance(declared, property) else bool(declared)


def _own_resample(module: nn.Module):
    """The module's ``resample`` method when it re-draws something itself, else None."""
    method = getattr(module, "resample", None)
    if not inspect.ismethod(method) or getattr(method.__func__, "walks_children", False):
        return None  # a submodule named 'resample' (an upsampler), or a delegating wrapper
    return method


def is_randomized(model: nn.Module) -> bool:
    """True when any module anywhere in ``model`` declares that it draws randomness."""
    return any(_declares_randomness(m) for m in model.modules())


def draws_per_sample(model: nn.Module) -> bool:
    """True when ``model`` is randomized and every module that draws declares
    ``noise_per_sample = True``: a fresh, independent draw for every sample on every forward
    pass, so K copies of a batch in one pass are K independent draws (batched EOT)."""
    drawing = [m for m in model.modules() if _declares_randomness(m)]
    return bool(drawing) and all(getattr(m, "noise_per_sample", False) for m in drawing)


@torch.no_grad()
def resample(model: nn.Module) -> int:
    """Re-draw every held draw anywhere in ``model``; returns how many modules re-drew."""
    count = 0
    for module in model.modules():
        method = _own_resample(module)
        if method is not None:
            method()
            count += 1
    return count


def walks_children(method):
    """Mark a wrapper's ``resample`` as a delegation, so :func:`resample` does not call it twice."""
    method.walks_children = True
    return method


class Delegating(nn.Module):
    """Mixin for wrappers: ``randomized`` and ``resample()`` answer for everything inside."""

    @property
    def randomized(self) -> bool:
        return is_randomized(self)

    @walks_children
    def resample(self) -> None:
        resample(self)


class FreshDrawPerPass(Delegating):
    """``model`` re-drawn before every forward pass.

    For attacks that sample the randomness themselves by calling the model
    several times (AutoAttack's EOT): with a held-draw model each call would
    otherwise see the same draw.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        resample(self.model)
        return self.model(x)
