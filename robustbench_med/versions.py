"""Library versions and the code digest recorded with every checkpoint and every result row."""

from __future__ import annotations

import hashlib
import platform
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

TRACKED = ("medrobust", "torch", "torchvision", "torchattacks", "pyautoattack",
           "adversarial-robustness-toolbox", "medmnist", "numpy")

# The source that decides a number: how data is read, how models are built and trained,
# how attacks run and how cells are scored. The CLI, the store and the reports only move
# numbers around, so editing them keeps the stored rows valid.
RESULT_SOURCES = ("attacks", "evaluation", "models", "defenses", "data", "training", "randomness.py",
                  "batchnorm_settle.py", "device.py")
PACKAGE_ROOT = Path(__file__).resolve().parent


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
    found["code"] = code_version()
    return found


def source_digest(root: Path = PACKAGE_ROOT) -> str:
    """sha256 over the path and bytes of every result-deciding ``.py`` file under ``root``."""
    digest = hashlib.sha256()
    for name in RESULT_SOURCES:
        entry = root / name
        files = sorted(entry.rglob("*.py")) if entry.is_dir() else [entry] if entry.is_file() else []
        for path in files:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


@lru_cache(maxsize=1)
def code_version() -> str:
    """Part of every result's key: the package version plus a digest of the source that decides
    results, so a resumed run after a code change recomputes instead of reusing old rows."""
    from robustbench_med import __version__

    return f"{__version__}+{source_digest()[:12]}"
