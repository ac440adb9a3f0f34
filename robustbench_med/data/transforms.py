"""Array-to-tensor conversion, resizing, and the paper's 4x training augmentation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

# The paper's translation is 5 px at 128x128; we keep that fraction of the side.
PAPER_SIZE = 128
PAPER_SHIFT_PX = 5
PAPER_ROTATION_DEG = 20.0
BLUR_KERNEL = 3
BLUR_SIGMA = 0.8  # what OpenCV's GaussianBlur uses for a 3x3 kernel with sigma 0


def to_tensor(images: np.ndarray, channels: int) -> torch.Tensor:
    """uint8 (N, H, W) or (N, H, W, C) -> float (N, channels, H, W) in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    if x.shape[1] == channels:
        return x.contiguous()
    if x.shape[1] == 1:
        return x.expand(-1, channels, -1, -1).contiguous()
    if channels == 1:  # ITU-R 601 luma, as Pillow's convert("L")
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (x * weights).sum(1, keepdim=True)
    raise ValueError(f"cannot convert {x.shape[1]} channels to {channels}")


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of (N, C, H, W) to size x size (antialiased when shrinking)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    out = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                        antialias=size < x.shape[-1])
    return out.clamp_(0.0, 1.0)


def paper_augmentation(x: torch.Tensor) -> list[torch.Tensor]:
    """The paper's three extra copies: rotation 20 deg, translation, 3x3 Gaussian blur."""
    shift = max(1, round(PAPER_SHIFT_PX * x.shape[-1] / PAPER_SIZE))
    rotated = TF.rotate(x, PAPER_ROTATION_DEG, interpolation=TF.InterpolationMode.BILINEAR)
    shifted = TF.affine(x, angle=0.0, translate=[shift, shift], scale=1.0, shear=[0.0, 0.0])
    blurred = TF.gaussian_blur(x, kernel_size=[BLUR_KERNEL, BLUR_KERNEL],
                               sigma=[BLUR_SIGMA, BLUR_SIGMA])
    return [rotated, shifted, blurred]


def augment_4x(x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's 4x training set: originals plus three augmented copies, shuffled."""
    xs = torch.cat([x, *paper_augmentation(x)]).clamp_(0.0, 1.0)
    ys = y.repeat(4, *([1] * (y.ndim - 1)))
    order = torch.randperm(len(xs), generator=torch.Generator().manual_seed(seed))
    return xs[order], ys[order]
