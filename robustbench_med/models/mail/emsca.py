"""EMSCA: efficient multimodal spatial-domain cross attention (paper Eq. 10-12, code cell 20).

As the official code computes it, with one MSGDC shared by all modalities and
both hierarchy levels (bias-free branches, ungrouped fuse, no shuffle or BN):

    S(x)  = GMP(MSGDC(x)) + GAP(MSGDC(x))                          # (B, C, 1, 1)
    S_i  <- S_i + S(S_i) + S_p(i)       for i = 1..m in order,      # hierarchical + cross-modal
    A_s   = sigmoid( sum_i theta_i * S_i )                           # theta_i per channel

with p(i) = m - i + 1 (paper's pairing). The updates run in order and read the
partner's current value, as the code's two-modality version does (S_2's update
sees the updated S_1). With m = 1 the branch pairs with itself. S(S_i) is the
MSGDC applied to the pooled 1x1 map (its depth-wise convs reduce to their
centre taps), computed literally as in the code. A_s is a channel gate.

Ablations (paper Table 5): ``msgdc=False`` pools x directly (S(x) = GMP(x) +
GAP(x), so S(S(x)) = 2 S(x)); ``cross_modal=False`` (CMI) drops the partner
term, so each S_i depends on its own modality only.

With ``rpf_ratio > 0`` the MSGDC's GPC and depth-wise convs hold random
projection filters (Robust-MAIL, paper Eq. 23). With ``noise``, Robust-MAIL's
paper MAN (Eq. 25): each modality's weighted context is multiplied by its own
eta'_i, drawn per sample and channel (the context's shape), before the sum
and the sigmoid,

    A_s = sigmoid( sum_i eta'_i * theta_i * S_i )

(Eq. 25 writes no sigmoid, as Eq. 12 does not; the text and the code apply
one, and the noise goes inside it.) The notebook puts no noise in EMSCA.
"""

from __future__ import annotations

import torch
from torch import nn

from robustbench_med.models.mail.msgdc import MSGDC
from robustbench_med.models.mail.noise import ModulatedNoise


def partner(i: int, modalities: int) -> int:
    """The paper's pairing i <-> m - i + 1, 0-based."""
    return modalities - 1 - i


class EMSCA(nn.Module):
    """Spatial-domain cross attention over stacked features (m, B, C, H, W)."""

    def __init__(self, channels: int, modalities: int, *, msgdc: bool = True, cross_modal: bool = True,
                 rpf_ratio: float = 0.0, rpf_weight_decay: float = 1e-4,
                 noise: ModulatedNoise | None = None) -> None:
        super().__init__()
        self.noise = noise
        self.modalities, self.cross_modal = modalities, cross_modal
        self.msgdc = (MSGDC(channels, channels, fuse_groups=1, shuffle=False, bias=False, fuse_norm=False,
                            rpf_ratio=rpf_ratio, rpf_weight_decay=rpf_weight_decay)
                      if msgdc else None)
        self.theta = nn.Parameter(torch.ones(modalities, channels))

    def squeeze(self, x: torch.Tensor) -> torch.Tensor:
        """S(x) = GMP(MSGDC(x)) + GAP(MSGDC(x)) on (N, C, H, W) -> (N, C, 1, 1)."""
        y = self.msgdc(x) if self.msgdc is not None else x
        return y.amax((-2, -1), keepdim=True) + y.mean((-2, -1), keepdim=True)

    def contexts(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The refined per-modality contexts S_i, each (B, C, 1, 1)."""
        m = x.shape[0]
        base = self.squeeze(x.flatten(0, 1))                      # S(x_i), all modalities at once
        hierarchical = self.squeeze(base).unflatten(0, (m, -1))   # S(S(x_i)) reads S_i before its update
        states = list(base.unflatten(0, (m, -1)).unbind(0))
        for i in range(m):
            update = states[i] + hierarchical[i]
            if self.cross_modal:
                update = update + states[partner(i, m)]
            states[i] = update
        return states

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A_s, shape (B, C, 1, 1)."""
        states = self.contexts(x)
        if self.noise is not None:  # Eq. 25: one eta'_i per modality, stacked (m, B, C, 1, 1)
            weighted = torch.stack([self.theta[i].view(1, -1, 1, 1) * s for i, s in enumerate(states)])
            return torch.sigmoid(self.noise.modulate(weighted, channel_dim=2).sum(0))
        weighted = sum(self.theta[i].view(1, -1, 1, 1) * s for i, s in enumerate(states))
        return torch.sigmoid(weighted)
