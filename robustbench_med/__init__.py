"""medrobust: adversarial-robustness benchmarking for medical image classifiers.

The library API (``evaluate``, ``create_model``, ``load_checkpoint``, ``load_dataset``, ``train``,
``list_models``, ...) lives in :mod:`robustbench_med.api` and is imported on first use, so that
``import robustbench_med`` (and ``medrobust list``) does not pay for torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = ("evaluate", "create_model", "load_checkpoint", "load_dataset", "train", "list_models",
        "list_attacks", "list_defenses", "list_datasets", "Report", "CellResult", "Checkpoint",
        "Event", "ResultStore")
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from robustbench_med import api

        return getattr(api, name)
    raise AttributeError(f"module 'robustbench_med' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
