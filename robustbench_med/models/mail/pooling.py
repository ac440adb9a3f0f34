"""Global poolings over the spatial axes, keeping (B, C, 1, 1) so results broadcast."""

from __future__ import annotations

import torch

SPATIAL = (-2, -1)


def gap(x: torch.Tensor) -> torch.Tensor:
    """Global average pooling."""
    return x.mean(SPATIAL, keepdim=True)


def gmp(x: torch.Tensor) -> torch.Tensor:
    """Global max pooling."""
    return x.amax(SPATIAL, keepdim=True)


def gmn(x: torch.Tensor) -> torch.Tensor:
    """Global min pooling."""
    return x.amin(SPATIAL, keepdim=True)


def gsum(x: torch.Tensor) -> torch.Tensor:
    """Global sum pooling (grows with H*W, as in the official CA)."""
    return x.sum(SPATIAL, keepdim=True)
