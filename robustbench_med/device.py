"""Pick the compute device (CUDA when present, else the CPU) and set it up for speed.

On CUDA two settings change how fast, never what is computed in expectation:
``torch.backends.cudnn.benchmark`` (cuDNN times its convolution algorithms once per input shape
and keeps the fastest; every batch of a run has one of a few shapes, so this pays off at once),
and channels-last memory for convolutional models (:func:`place_model`), the layout cuDNN's
tensor-core kernels read without a transpose. On the CPU nothing changes: results there stay
bit-identical to earlier code versions.
"""

from __future__ import annotations

import torch
from torch import nn

from robustbench_med.errors import BadInputError

CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | None = None) -> torch.device:
    name = (name or "auto").lower()
    if name == "auto":
        return prepare_device(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    if name.split(":")[0] not in CHOICES:
        raise BadInputError(f"unknown device '{name}' (allowed: {', '.join(CHOICES)})")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BadInputError(f"device '{name}' asked for, but this machine has no CUDA GPU "
                            "(use --device cpu or auto)")
    return prepare_device(torch.device(name))


def prepare_device(device: torch.device) -> torch.device:
    """Turn on cuDNN autotuning for a CUDA device (process-wide; a no-op for the CPU)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return device


def wants_channels_last(model: nn.Module, device: torch.device) -> bool:
    """Channels-last pays on CUDA for models built of 2-D convolutions; elsewhere it only copies."""
    return device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in model.modules())


def place_model(model: nn.Module, device: torch.device, channels_last: bool | None = None) -> nn.Module:
    """Move ``model`` to ``device``, in channels-last memory where :func:`wants_channels_last`
    (or ``channels_last``, for tests) says so. In place, like ``Module.to``; returns ``model``.

    Only the layout of 4-D parameters and buffers changes; inputs may stay contiguous, as a
    convolution whose weight is channels-last returns a channels-last output.
    """
    model.to(device)
    if wants_channels_last(model, device) if channels_last is None else channels_last:
        model.to(memory_format=torch.channels_last)
    return model
