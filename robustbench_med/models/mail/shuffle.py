"""Channel shuffle (ShuffleNet), as EMILA uses it to mix the MSGDC branches across groups."""

from __future__ import annotations

import torch


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(B, C, H, W) with C = groups * n -> channels reordered so each group sees every other.

    Same permutation as the official code's NHWC reshape [g, C/g] -> transpose.
    """
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)
