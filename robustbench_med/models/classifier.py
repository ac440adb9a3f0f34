"""The model contract: images in [0, 1] in, logits out, normalisation inside.

Normalising outside the model silently wrecks attack results (AutoAttack #13,
RobustBench #105), so every medrobust model is a :class:`Classifier` that owns
its mean/std buffers. The same wrapper serves paired inputs (N, m, C, H, W):
the buffers then have shape (m, C, 1, 1) and broadcast per modality.
"""

from __future__ import annotations

import torch
from torch import nn

from robustbench_med.data.spec import DataInfo


class Classifier(nn.Module):
    """``net`` behind per-channel input normalisation measured on the training split."""

    def __init__(self, net: nn.Module, info: DataInfo) -> None:
        super().__init__()
        self.net = net
        self.info = info
        mean = torch.tensor(info.mean, dtype=torch.float32)
        std = torch.tensor(info.std, dtype=torch.float32)
        if info.modalities == 1:
            mean, std = mean[0], std[0]
        self.register_buffer("mean", mean[..., None, None])
        self.register_buffer("std", std[..., None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        return self.net((x - self.mean) / self.std)

    @property
    def randomized(self) -> bool:
        """True when any part of the network draws fresh randomness at inference."""
        return any(getattr(m, "randomized", False) for m in self.net.modules())

    def resample(self) -> None:
        """Re-draw every random filter and noise tensor (no-op for deterministic models)."""
        for module in self.net.modules():
            if module is not self and hasattr(module, "resample") and callable(module.resample):
                module.resample()


def task_logits(output: torch.Tensor | tuple[torch.Tensor, ...] | list[torch.Tensor]) -> list[torch.Tensor]:
    """A model's output as one logits tensor per task."""
    return list(output) if isinstance(output, (tuple, list)) else [output]


class TaskView(nn.Module):
    """A single-task view of a multi-task model, so attack libraries see plain logits."""

    def __init__(self, model: nn.Module, task: int = 0) -> None:
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return task_logits(self.model(x))[self.task]

    @property
    def randomized(self) -> bool:
        return bool(getattr(self.model, "randomized", False))


class ModalitiesAsChannels(nn.Module):
    """A paired model seen as an image model: (N, m*C, H, W) in, reshaped to (N, m, C, H, W).

    Attack libraries that assume 4-D images (Square, FAB) then run unchanged; an
    L-inf ball over the packed channels is the same threat model.
    """

    def __init__(self, model: nn.Module, modalities: int) -> None:
        super().__init__()
        self.model = model
        self.modalities = modalities

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, channels, h, w = x.shape
        return self.model(x.view(n, self.modalities, channels // self.modalities, h, w))

    @staticmethod
    def pack(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1, 2)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], self.modalities, -1, *x.shape[-2:])
