"""BatchNorm2d that normalises tiny maps as rows, where PyTorch's CPU kernel is slow.

On a 2x2 map (the third stage at 28 px) ``native_batch_norm`` walks every
channel's 4 pixels per sample, and its forward plus backward on (32, 256, 2, 2)
took 0.8-1.1 ms against 0.4-0.5 ms for the same statistics over the pixels
laid out as rows (B*H*W, C, 1, 1) (one thread). The statistics, the running
averages and the affine map are the same (the mean and variance are over
B*H*W values per channel either way), so only the order of the float sums
differs. Maps of 1 pixel and of more than 4 run as ``nn.BatchNorm2d`` does.
"""

from __future__ import annotations

import torch
from torch import nn

from robustbench_med.models.mail.fastconv import contiguous_grad, is_plain

ROWS_MAX_PIXELS = 4


class SmallMapBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (same parameters, buffers and state-dict keys) with the row path."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if is_plain() or not 1 < h * w <= ROWS_MAX_PIXELS:
            return super().forward(x)
        rows = contiguous_grad(x).permute(0, 2, 3, 1).reshape(-1, c, 1, 1)
        return super().forward(rows).view(b, h, w, c).permute(0, 3, 1, 2).contiguous()
