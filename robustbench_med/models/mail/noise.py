"""Modulated attention noise (MAN): the learnable noise of paper Eq. 22, and how each form applies it.

``eta ~ N(0, std^2)`` elementwise, modulated by a weight ``delta``:
``eta' = eta * (delta + eta * delta)`` (Eq. 22). A fresh draw on every forward
pass, in training and at inference (the notebook ignores the ``training``
flag too), so a model holding one is randomized; nothing is held between
passes, so there is nothing for ``resample()`` to re-draw.

Two forms, chosen by the model option ``man``:

- ``paper`` (Appendix B, Eqs. 21, 24, 25, 26): eta' MULTIPLIES the
  pre-sigmoid term of CA, MFIFA, EMSCA and A_m -- ``sigmoid(term * eta')``;
  no clipping, no powers. See :meth:`ModulatedNoise.modulate`.
- ``code`` (the official notebook, cells 23-24): eta' is ADDED to CA's logits
  and to EMILA's output / EMCAM's A_m, clipped to [0, 1], and the gates are
  raised to powers (EMILA ``o * (s * se)^3``, EMCAM ``A_m * A_n^5``).

Choices the paper leaves open, the same for both forms:

- the std of eta: not given by the paper; 0.6 is the notebook's;
- the shape of a draw: the shape of the term it perturbs, so every sample,
  channel and (where the term has them) pixel gets its own eta, as the
  notebook draws ``tf.random.normal(shape of the tensor)``. A per-batch draw
  would hand every image of a batch the same perturbation, which the paper
  never suggests;
- ``delta``: channel-wise and learnable by default (Eq. 22, delta in R^c). The
  notebook's is one scalar, fixed at 1 in EMILA and learnable in EMCAM:
  ``channelwise=False`` with ``learnable`` chosen per place.
"""

from __future__ import annotations

import torch
from torch import nn

NOISE_STD = 0.6
MAN_OFF, MAN_PAPER, MAN_CODE = "off", "paper", "code"
MAN_FORMS = (MAN_OFF, MAN_PAPER, MAN_CODE)


class ModulatedNoise(nn.Module):
    """Draws eta' = eta * (delta + eta * delta) shaped like its input, delta on the channel axis."""

    randomized = True
    noise_per_sample = True  # eta is drawn per element of a batched input, on every pass

    def __init__(self, channels: int, *, std: float = NOISE_STD, channelwise: bool = True,
                 learnable: bool = True) -> None:
        super().__init__()
        self.std = std
        delta = torch.ones(channels if channelwise else 1)
        if learnable:
            self.delta = nn.Parameter(delta)
        else:
            self.register_buffer("delta", delta)

    def forward(self, like: torch.Tensor, channel_dim: int = 1) -> torch.Tensor:
        """Fresh modulated noise with the shape of ``like``; delta broadcasts over ``channel_dim``."""
        eta = self.draw(like) * self.std
        shape = [1] * like.ndim
        shape[channel_dim] = -1
        delta = self.delta.view(shape)
        return eta * (delta + eta * delta)

    def draw(self, like: torch.Tensor) -> torch.Tensor:
        """Standard normal draws shaped like ``like`` (one place, so tests can fix them)."""
        return torch.randn_like(like)

    def modulate(self, term: torch.Tensor, channel_dim: int = 1) -> torch.Tensor:
        """The paper's MAN: ``term * eta'`` with a fresh eta' of the term's shape (Eqs. 21, 24-26)."""
        return term * self(term, channel_dim)

    def extra_repr(self) -> str:
        return f"std={self.std}, delta={tuple(self.delta.shape)}, learnable={self.delta.requires_grad}"


def check_form(man: str) -> str:
    """``man`` itself, or a ValueError naming the allowed forms."""
    if man not in MAN_FORMS:
        raise ValueError(f"unknown MAN form '{man}' (allowed: {', '.join(MAN_FORMS)})")
    return man


class AlwaysOnDropout(nn.Dropout):
    """Dropout that stays active in eval mode, as the notebook's ``Dropout(0.25)(x, training=True)``."""

    randomized = True
    noise_per_sample = True  # a fresh mask per element on every pass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.dropout(x, self.p, training=True, inplace=self.inplace)
