"""MFIFA: multimodal frequency-domain information fusion attention (paper Eq. 6-9, code cell 20).

As the official code computes it, for each modality's features x_i:

    D  = DCT-II over channels (orthonormal)
    H1 = sig(W GMP(D) + b),  L1 = sig(W GAP(D) + b),  L2 = sig(W GMN(D) + b)   # one shared Dense
    high = H1 + (H1 - L1) + (D - L2)      low = L1 + L2      mean = high - low
    A_f = sigmoid( sum_i alpha_i * low_i + phi_i * high_i + gamma_i * mean_i )

``high`` keeps D's full resolution, so A_f is a (B, C, H, W) map. The paper's
alpha_i, phi_i, gamma_i are per modality (the code shares one of each; this is
one of medrobust's two documented changes). Naming follows Eq. 9: alpha
weighs the low, phi the high and gamma the mean component.

Ablations (paper Table 5):

- ``composition=False`` (CO/MO): no modulated composition (Stages 2-3) -- no
  alpha/phi/gamma, and each modality keeps its own map
  sigmoid(low_i + high_i + mean_i) instead of one fused across modalities;
- ``diverse=False`` (DF): one frequency descriptor instead of the diverse
  low/high/mean decomposition: L1 = sig(W GAP(D) + b) alone, modulated by
  alpha_i (no phi, gamma).

Robust-MAIL's paper MAN (Eq. 24, with ``noise``): every term of modality i is
multiplied by eta'_i before the sum and the sigmoid,

    A_f = sigmoid( sum_i eta'_i * (alpha_i * low_i + phi_i * high_i + gamma_i * mean_i) )

Eq. 24 writes the same eta'_i on the three terms of modality i, so one draw
multiplies their sum; it is drawn per modality, sample, channel and pixel
(the shape of the term). The ablations keep the noise on what they leave:
sigmoid(eta'_i * (low_i + high_i + mean_i)) without composition,
sigmoid(sum_i eta'_i * alpha_i * L1_i) without diversity. The notebook puts
no noise in MFIFA (its MAN acts on A_m only, see ``emcam.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from robustbench_med.models.mail.dct import ChannelDCT
from robustbench_med.models.mail.noise import ModulatedNoise


def _per_modality(weights: torch.Tensor) -> torch.Tensor:
    """(m,) -> (m, 1, 1, 1, 1), to weigh a stacked (m, B, C, H, W) tensor."""
    return weights.view(-1, 1, 1, 1, 1)


class MFIFA(nn.Module):
    """Frequency-domain attention over stacked features (m, B, C, H, W)."""

    def __init__(self, channels: int, modalities: int, *, composition: bool = True,
                 diverse: bool = True, noise: ModulatedNoise | None = None) -> None:
        super().__init__()
        self.noise = noise
        self.dct = ChannelDCT(channels)
        self.dense = nn.Linear(channels, channels)
        self.composition, self.diverse = composition, diverse
        if composition:
            self.alpha = nn.Parameter(torch.ones(modalities))
            if diverse:
                self.phi = nn.Parameter(torch.ones(modalities))
                self.gamma = nn.Parameter(torch.ones(modalities))

    def _descriptor(self, pooled: torch.Tensor) -> torch.Tensor:
        """sig(W p + b) for pooled (m, B, C, 1, 1) -> (m, B, C, 1, 1)."""
        return torch.sigmoid(self.dense(pooled.flatten(-3))).unsqueeze(-1).unsqueeze(-1)

    def _noisy(self, terms: torch.Tensor) -> torch.Tensor:
        """Eq. 24: eta'_i times modality i's terms (m, B, C, H', W'), when MAN is on."""
        return terms if self.noise is None else self.noise.modulate(terms, channel_dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A_f: (1, B, C, H, W) when composed across modalities, else (m, B, C, H, W)."""
        d = self.dct(x)
        low1 = self._descriptor(d.mean((-2, -1), keepdim=True))
        if not self.diverse:
            if not self.composition:
                return torch.sigmoid(self._noisy(low1))
            return torch.sigmoid(self._noisy(_per_modality(self.alpha) * low1).sum(0, keepdim=True))
        high1 = self._descriptor(d.amax((-2, -1), keepdim=True))
        low2 = self._descriptor(d.amin((-2, -1), keepdim=True))
        high = high1 + (high1 - low1) + (d - low2)
        low = low1 + low2
        mean = high - low
        if not self.composition:
            return torch.sigmoid(self._noisy(low + high + mean))
        fused = (_per_modality(self.alpha) * low + _per_modality(self.phi) * high
                 + _per_modality(self.gamma) * mean)
        return torch.sigmoid(self._noisy(fused).sum(0, keepdim=True))
