"""Finding and swapping modules of any backbone (torchvision ResNet/MobileNetV2, MAIL), by structure.

The defenses never assume layer names: they look for module types, and for
shapes they run one dummy forward pass at the dataset's input size and record
what each module of interest received and returned (Learn2Perturb's sigma
maps, RPF's input convolutions, CTRW's mask all depend on ``info.image_size``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from robustbench_med.data.spec import DataInfo


@dataclass(frozen=True)
class Call:
    """One module call of the dummy forward pass; calls are listed in the order they start."""

    name: str
    module: nn.Module
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]


def _shape(value: object) -> tuple[int, ...]:
    return tuple(value.shape[1:]) if isinstance(value, torch.Tensor) else ()


def trace_calls(model: nn.Module, info: DataInfo, modules: dict[str, nn.Module]) -> list[Call]:
    """Every call of ``modules`` (name -> module) during one eval-mode pass on a dummy input.

    Calls are ordered by when they start (a block before the layers inside it);
    shapes leave out the batch dimension; a module called twice appears twice.
    """
    started: list[list] = []
    open_calls: list[int] = []
    handles = []
    for name, module in modules.items():
        def pre(mod: nn.Module, args: tuple, name: str = name) -> None:
            open_calls.append(len(started))
            started.append([name, mod, _shape(args[0]) if args else (), ()])

        def post(mod: nn.Module, args: tuple, out: object) -> None:
            started[open_calls.pop()][3] = _shape(out)

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    was_training = model.training
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        model.eval()
        with torch.no_grad():
            model(torch.rand(2, *info.input_shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return [Call(*record) for record in started]


def output_shapes(calls: list[Call]) -> dict[str, tuple[int, ...]]:
    """Each traced module's output shape; a module whose calls return several shapes is refused."""
    shapes: dict[str, tuple[int, ...]] = {}
    for call in calls:
        if shapes.setdefault(call.name, call.output_shape) != call.output_shape:
            raise ValueError(f"module {call.name} returns outputs of several shapes")
    return shapes


def of_type(root: nn.Module, kinds: type | tuple[type, ...]) -> dict[str, nn.Module]:
    """Named submodules of ``root`` that are instances of ``kinds`` (registration order)."""
    return {name: m for name, m in root.named_modules() if isinstance(m, kinds) and name}


def replace(root: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where ``root``'s submodule ``name`` was."""
    root.set_submodule(name, new)


@contextmanager
def preserved_batchnorm_stats(model: nn.Module) -> Iterator[None]:
    """Run extra train-mode passes without moving any BatchNorm running statistics.

    The passes see ``track_running_stats=False``, so they normalise with batch statistics and
    never write the running buffers. Restoring the buffers afterwards instead (an in-place copy)
    would bump their version and break the backward pass through those very forwards.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    tracked = [m.track_running_stats for m in norms]
    for m in norms:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m, flag in zip(norms, tracked, strict=True):
            m.track_running_stats = flag
