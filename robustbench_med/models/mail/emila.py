"""EMILA: efficient multi-scale information learning attention (paper Eq. 3, code cell 19).

As the official code computes it (not Eq. 3's ``x + GPC(CA(MSGDC(x)))``):

    o   = BN(fuse_g2(shuffle_16(cat[GPC(x), DW3(x), DW5(x)])))      # MSGDC
    out = ReLU(BN(conv1x1_s(x)) + o * CA(o))                       # projected skip

Robust-MAIL's EMILA adds a BN on each MSGDC branch (notebook cell 23) and
modulated attention noise (MAN, ``noise.py``) in one of two forms (``man``):

- ``paper`` (App. B): the paper redesigns only CA, by Eq. 21, so the block is
  the one above with CA's gate ``se = sigmoid(f(pool(o)) * theta_x * eta')``
  (see ``ca.py``): out = ReLU(BN(conv1x1_s(x)) + o * se).
- ``code`` (notebook cell 23): noise in CA's logits (added, clipped) and again
  on the block output, which then gates the MSGDC features::

      o1 = ReLU(BN(conv1x1_s(x)) + o * se)        se = CA gate with noisy logits
      s  = clip(o1 + eta'_s, 0, 1)
      out = o * (s * se)^3                         # no skip, no ReLU, as the notebook

Ablations (paper Table 5): ``msgdc=False`` keeps only the GPC branch (no
depth-wise convs, shuffle or fuse); ``ca=False`` drops the CA gate.
"""

from __future__ import annotations

import torch
from torch import nn

from robustbench_med.models.mail.ca import ChannelAttention
from robustbench_med.models.mail.defaults import batch_norm
from robustbench_med.models.mail.fastconv import PointwiseConv2d
from robustbench_med.models.mail.msgdc import MSGDC, PointwiseOnly
from robustbench_med.models.mail.noise import MAN_CODE, MAN_OFF, ModulatedNoise, check_form


class EMILA(nn.Module):
    """MSGDC -> CA gate, plus a 1x1 projected skip; optionally with RPF and MAN."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, msgdc: bool = True,
                 ca: bool = True, branch_norm: bool = False, rpf_ratio: float = 0.0,
                 rpf_weight_decay: float = 1e-4, man: str = MAN_OFF, noise_std: float = 0.6,
                 noise_channelwise: bool = True, noise_learnable: bool = True) -> None:
        super().__init__()
        rpf = {"rpf_ratio": rpf_ratio, "rpf_weight_decay": rpf_weight_decay}
        self.msgdc = (MSGDC(in_channels, out_channels, stride=stride, branch_norm=branch_norm, **rpf)
                      if msgdc else PointwiseOnly(in_channels, out_channels, stride=stride, **rpf))
        self.man = check_form(man)

        def noise() -> ModulatedNoise | None:
            if man == MAN_OFF:
                return None
            return ModulatedNoise(out_channels, std=noise_std, channelwise=noise_channelwise,
                                  learnable=noise_learnable)

        self.ca = ChannelAttention(out_channels, noise=noise(), man=man) if ca else None
        self.proj = PointwiseConv2d(in_channels, out_channels, stride)
        self.proj_norm = batch_norm(out_channels)
        self.spatial_noise = noise() if man == MAN_CODE else None  # the paper has no spatial noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.msgdc(x)
        gate = self.ca(o) if self.ca is not None else None
        gated = o * gate if gate is not None else o
        out = torch.relu(self.proj_norm(self.proj(x)) + gated)
        if self.spatial_noise is None:
            return out
        s = (out + self.spatial_noise(out)).clamp(0.0, 1.0)
        a = s * gate if gate is not None else s
        return o * (a * a * a)
