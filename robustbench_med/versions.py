"""Library versions recorded with every checkpoint and every result row."""

from __future__ import annotations

import platform
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

TRACKED = ("medrobust", "torch", "torchvision", "torchattacks", "pyautoattack",
           "adversarial-robustness-toolbox", "medmnist", "numpy")


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in TRACKED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    if found["medrobust"] == "not installed":
        from robustbench_med import __version__

        found["medrobust"] = __version__
    return found


def code_version() -> str:
    """The medrobust version, part of every result's key: new code, new rows."""
    return library_versions()["medrobust"]
