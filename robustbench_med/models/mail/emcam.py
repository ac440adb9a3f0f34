"""EMCAM: efficient multimodal cross attention module (paper Eq. 5, 13; code cell 20).

One EMCAM per stage, shared by all branches: it reads the m branches' features
X' (stacked (m, B, C, H, W)), computes one attention map and applies it to
every branch (parallel fusion, the paper's PFA):

    A_m  = sigmoid(theta_f * A_f + theta_s * A_s)       A_f = MFIFA(X'), A_s = EMSCA(X')
    x_i^S = x_i' * A_m * theta_m,i                       theta_m per branch and channel

As in the code, A_f and A_s are already sigmoid outputs, theta_f is a scalar
and theta_s is EMSCA's first per-channel weight theta_1 (the code reuses
``local_scale``); the code's unused weights (alpha1, alpha2, global_scale2)
are left out.

``fusion="cascaded"`` (paper Table 6, CAT) runs the two attentions one after
the other instead: the MFIFA gate refines X' first and EMSCA reads the
refined features, x_i^S = x_i' * sig(theta_f A_f) * sig(theta_s EMSCA(X' sig(theta_f A_f))) * theta_m,i.
``mfifa=False`` / ``emsca=False`` (Table 4) keep the other attention alone.

Robust-MAIL's MAN (``noise.py``), one of two forms (``man``):

- ``paper`` (App. B): eta' multiplies the pre-sigmoid term of A_m, Eq. 26,
  A_m = sigmoid(eta' * (theta_f * A_f + theta_s * A_s)), and MFIFA and EMSCA
  carry their own noise (Eqs. 24, 25; see ``mfifa.py``, ``emsca.py``): three
  learnable deltas per EMCAM. eta' is drawn per sample, channel and pixel (the
  term's shape). With one attention switched off, eta' multiplies what is
  left; in cascaded fusion each of the two gates gets its own draw.
- ``code`` (notebook cell 24): A_m <- A_m * clip(A_m + eta', 0, 1)^5, no noise
  inside MFIFA or EMSCA.
"""

from __future__ import annotations

import torch
from torch import nn

from robustbench_med.errors import BadInputError
from robustbench_med.models.mail.emsca import EMSCA
from robustbench_med.models.mail.mfifa import MFIFA
from robustbench_med.models.mail.noise import MAN_CODE, MAN_OFF, MAN_PAPER, ModulatedNoise, check_form

FUSIONS = ("parallel", "cascaded")


class EMCAM(nn.Module):
    """The shared cross-attention applied after a stage to all m branches."""

    def __init__(self, channels: int, modalities: int, *, mfifa: bool = True, emsca: bool = True,
                 mfifa_composition: bool = True, mfifa_diverse: bool = True, emsca_msgdc: bool = True,
                 emsca_cmi: bool = True, fusion: str = "parallel", rpf_ratio: float = 0.0,
                 rpf_weight_decay: float = 1e-4, man: str = MAN_OFF, noise_std: float = 0.6,
                 noise_channelwise: bool = True) -> None:
        super().__init__()
        if not (mfifa or emsca):
            raise BadInputError("an EMCAM needs MFIFA or EMSCA (with neither, leave EMCAM out)")
        if fusion not in FUSIONS:
            raise BadInputError(f"unknown EMCAM fusion '{fusion}' (allowed: {', '.join(FUSIONS)})")
        self.fusion, self.man = fusion, check_form(man)

        def noise(wanted: bool = True) -> ModulatedNoise | None:
            # the notebook's EMCAM noise weight is a trainable scalar, as every paper delta
            return (ModulatedNoise(channels, std=noise_std, channelwise=noise_channelwise)
                    if wanted and man != MAN_OFF else None)

        paper = man == MAN_PAPER
        self.mfifa = (MFIFA(channels, modalities, composition=mfifa_composition, diverse=mfifa_diverse,
                            noise=noise(paper)) if mfifa else None)
        self.theta_f = nn.Parameter(torch.ones(1)) if mfifa else None
        self.emsca = (EMSCA(channels, modalities, msgdc=emsca_msgdc, cross_modal=emsca_cmi,
                            rpf_ratio=rpf_ratio, rpf_weight_decay=rpf_weight_decay, noise=noise(paper))
                      if emsca else None)
        self.theta_m = nn.Parameter(torch.ones(modalities, channels))
        self.noise = noise()

    def _theta_s(self) -> torch.Tensor:
        assert self.emsca is not None
        return self.emsca.theta[0].view(1, 1, -1, 1, 1)

    def _gate(self, term: torch.Tensor) -> torch.Tensor:
        """sigmoid(term), with Eq. 26's eta' multiplying the term under the paper's MAN."""
        if self.noise is not None and self.man == MAN_PAPER:
            term = self.noise.modulate(term, channel_dim=2)
        return torch.sigmoid(term)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """A_m for stacked features (m, B, C, H, W); broadcastable to them."""
        if self.mfifa is None:
            return self._gate(self._theta_s() * self.emsca(x).unsqueeze(0))
        frequency = self.theta_f * self.mfifa(x)
        if self.emsca is None:
            return self._gate(frequency)
        if self.fusion == "parallel":
            return self._gate(frequency + self._theta_s() * self.emsca(x).unsqueeze(0))
        gate = self._gate(frequency)
        return gate * self._gate(self._theta_s() * self.emsca(x * gate).unsqueeze(0))

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        x = xs[0].unsqueeze(0) if len(xs) == 1 else torch.stack(xs)  # one branch: a view, no copy
        a = self.attention(x)
        if self.noise is not None and self.man == MAN_CODE:
            n = (a + self.noise(a.flatten(0, 1)).view_as(a)).clamp(0.0, 1.0)
            a = a * n ** 5
        out = x * a * self.theta_m.view(x.shape[0], 1, -1, 1, 1)
        return list(out.unbind(0))
