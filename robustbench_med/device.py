"""Pick the compute device: CUDA when present, else the CPU."""

from __future__ import annotations

import torch

from robustbench_med.errors import BadInputError

CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | None = None) -> torch.device:
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.split(":")[0] not in CHOICES:
        raise BadInputError(f"unknown device '{name}' (allowed: {', '.join(CHOICES)})")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BadInputError(f"device '{name}' asked for, but this machine has no CUDA GPU "
                            "(use --device cpu or auto)")
    return torch.device(name)
