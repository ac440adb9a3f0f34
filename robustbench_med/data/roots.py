"""Where datasets live on disk: ``--data-root``, then ``$MEDROBUST_DATA``, then the cache."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MEDROBUST_DATA"
DEFAULT_ROOT = Path("~/.cache/medrobust/data")


def candidate_roots(data_root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Data roots in search order; the first one holding a dataset wins."""
    roots: list[Path] = []
    if data_root:
        roots.append(Path(data_root))
    if os.environ.get(ENV_VAR):
        roots.append(Path(os.environ[ENV_VAR]))
    roots.append(DEFAULT_ROOT)
    unique: list[Path] = []
    for root in roots:
        root = root.expanduser().resolve()
        if root not in unique:
            unique.append(root)
    return unique


def download_root(data_root: str | os.PathLike[str] | None = None) -> Path:
    """Where a download goes: the first candidate root."""
    return candidate_roots(data_root)[0]
