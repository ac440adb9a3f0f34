"""The randomness contract shared by the randomized defenses (PNI, Learn2Perturb, RPF, CTRW).

Each random module holds standard-normal draws as non-persistent buffers (a
checkpoint keeps only what was learnt; a random tensor is never a trained
parameter) and declares ``randomized = True``. Two ways to draw, one switch:

- ``per_forward=True``: a fresh draw on every forward pass, as PNI's and
  Learn2Perturb's official code (train and eval alike). An attack then sees a
  new network at every step.
- ``per_forward=False``: the draw is held until :meth:`resample`, as RPF's
  ``random_rp_matrix()`` and CTRW's ``set_rands()`` (once per batch). This is
  what makes the paper's "attack one draw, infer another" protocol possible.

:meth:`resample` always makes a new held draw, so the attack suite's EOT
(``model.resample()`` before every gradient sample) works in both modes.
"""

from __future__ import annotations

import torch
from torch import nn


class RandomDraws(nn.Module):
    """Base class: named standard-normal draws, fresh per forward or held until :meth:`resample`."""

    randomized = True

    def __init__(self, per_forward: bool) -> None:
        super().__init__()
        self.per_forward = per_forward
        self._draw_names: list[str] = []

    def add_draw(self, name: str, shape: tuple[int, ...]) -> None:
        """Register a held N(0, 1) draw of ``shape`` (a buffer left out of the state dict)."""
        self.register_buffer(name, torch.randn(shape), persistent=False)
        self._draw_names.append(name)

    def draw(self, name: str) -> torch.Tensor:
        """The draw ``name`` for this forward pass: fresh, or the held one."""
        held: torch.Tensor = getattr(self, name)
        return torch.randn_like(held) if self.per_forward else held

    @torch.no_grad()
    def resample(self) -> None:
        """A new held draw for every named draw of this module."""
        for name in self._draw_names:
            getattr(self, name).normal_()
