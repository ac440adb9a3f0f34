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
from robustbench_med.randomness import Delegating


class Classifier(Delegating):
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


def task_logits(output: torch.Tensor | tuple[torch.Tensor, ...] | list[torch.Tensor]) -> list[torch.Tensor]:
    """A model's output as one logits tensor per task."""
    return list(output) if isinstance(output, (tuple, list)) else [output]


class TaskView(Delegating):
    """A single-task view of a multi-task model, so attack libraries see plain logits.

    ``randomized`` and ``resample()`` reach the wrapped model (:class:`Delegating`)."""

    def __init__(self, model: nn.Module, task: int = 0) -> None:
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return task_logits(self.model(x))[self.task]


class ModalitiesAsChannels(Delegating):
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
