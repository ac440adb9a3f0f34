"""CAP's contour augmentation: smooth the dark regions with a fast guided filter, keep the contours.

Written here, in torch, because none of the installed libraries has a guided
filter (scikit-image, scipy and torchvision do not; the official code uses
OpenCV, kornia has ``guided_blur`` but is not a dependency), and the filter
is a few box filters (He, Sun, Tang, "Guided Image Filtering", ECCV 2010;
"fast" variant with subsampling, He & Sun 2015). Running on the batch tensor
also keeps the augmentation on the training device.

The official ``PN_Aug`` (Quinn777/CAP ``dataloaders/SARS_COV_2.py``), in [0, 1]:
grey = luma(x); bright = grey > 127/255 keeps its pixels; the dark part
``p = grey * (1 - bright)`` is guided-filtered with ``grey`` as guide (window
5, eps 0.003, subsample 0.5 at 224 px); out = clip(grey * bright + q, 0, 1),
replicated to the input's channels. Defaults for small images (under 112 px):
window 3 and no subsampling (medrobust's choice: the official code runs at
224 px only); the official window and 0.5 subsampling from 112 px up. OpenCV's uint8 rounding is left out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, OpenCV's RGB -> grey
SMALL_IMAGE = 112


def box_filter(x: torch.Tensor, window: int) -> torch.Tensor:
    """Mean over a ``window`` x ``window`` box, borders reflected (OpenCV's ``blur`` default)."""
    if window <= 1:
        return x
    before, after = window // 2, (window - 1) // 2
    padded = F.pad(x, (before, after, before, after), mode="reflect")
    return F.avg_pool2d(padded, window, stride=1)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, window: int, eps: float,
                  scale: float = 1.0) -> torch.Tensor:
    """Edge-preserving smoothing of ``src`` (N, 1, H, W) steered by ``guide``; ``scale`` < 1: fast variant."""
    size = guide.shape[-2:]
    small_guide, small_src = guide, src
    if scale != 1.0:
        small = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
        small_guide = F.interpolate(guide, size=small, mode="bicubic", align_corners=False)
        small_src = F.interpolate(src, size=small, mode="bicubic", align_corners=False)
        window = max(1, round(window * scale))
    mean_i = box_filter(small_guide, window)
    mean_p = box_filter(small_src, window)
    var_i = box_filter(small_guide * small_guide, window) - mean_i * mean_i
    cov_ip = box_filter(small_guide * small_src, window) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    mean_a, mean_b = box_filter(a, window), box_filter(b, window)
    if scale != 1.0:
        mean_a = F.interpolate(mean_a, size=size, mode="bilinear", align_corners=False)
        mean_b = F.interpolate(mean_b, size=size, mode="bilinear", align_corners=False)
    return mean_a * guide + mean_b


def grey(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) luma of (N, C, H, W) images (C = 1 is already grey; other C: channel mean)."""
    if x.shape[1] == 3:
        weights = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * weights).sum(1, keepdim=True)
    return x.mean(1, keepdim=True)


@torch.no_grad()
def contour_augment(x: torch.Tensor, *, threshold: float = 127 / 255, window: int | None = None,
                    eps: float = 0.003, scale: float | None = None) -> torch.Tensor:
    """CAP's x_aug for images (..., C, H, W) in [0, 1]: dark regions smoothed, contours kept."""
    lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
    flat = x.reshape(-1, c, h, w)
    small = min(h, w) < SMALL_IMAGE
    window = window if window is not None else (3 if small else 5)
    scale = scale if scale is not None else (1.0 if small else 0.5)
    g = grey(flat)
    bright = (g > threshold).to(g.dtype)
    smoothed = guided_filter(g, g * (1 - bright), window, eps, scale)
    out = (g * bright + smoothed).clamp(0, 1)
    return out.expand(-1, c, h, w).reshape(*lead, c, h, w).contiguous()
