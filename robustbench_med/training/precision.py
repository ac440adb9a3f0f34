"""Mixed precision for training: bf16 autocast as an opt-in (``TrainConfig.amp``).

bf16 keeps fp32's exponent range, so unlike fp16 it needs no loss scaling and cannot overflow
where fp32 would not; what it loses is mantissa (8 bits against 24), which SGD's noise absorbs
in training. Attacks are another matter: a sign-gradient step flips wherever a gradient entry is
near zero, and 8 bits move many entries across zero, so the adversarial examples (and the
robust accuracy read from them) would differ from fp32's by more than the differences the
benchmark compares. Every attack therefore runs with autocast off
(:func:`robustbench_med.attacks.fp32.in_fp32`), also the PGD that crafts training
examples inside an autocast training step.
"""

from __future__ import annotations

import contextlib

import torch

from robustbench_med.errors import BadInputError

AMP_CHOICES = ("off", "bf16")


def check_amp(amp: str) -> str:
    if amp not in AMP_CHOICES:
        raise BadInputError(f"unknown mixed precision '{amp}' (allowed: {', '.join(AMP_CHOICES)})")
    return amp


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """The forward pass's precision context: bf16 autocast for ``amp="bf16"``, else nothing."""
    if check_amp(amp) == "off":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
