"""Transfer examples made once: a surrogate's adversarial examples, cached beside the results store.

A transfer attack (``aa-surrogate``, ``square-surrogate``) crafts its examples on the surrogate
alone, so they depend on the surrogate's weights, the attack and its settings, eps, the points and
their labels, the seed, the batching and the code, and never on the target. On a CPU they are
most of ``--attacks all``'s time, and a grid repeats them for every target of a dataset. The runner
crafts them for *every* test point (not only the target's clean-correct ones) and indexes each
target's subset, so targets with different correct sets share one entry.

An entry is ``<results dir>/transfer-cache/<sha256 of the key>.pt``, written to a temporary file
and renamed (a killed run never leaves half an entry); it holds the examples and the key it was
made under, which a read compares in full, so a hash collision or a stale file is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

FOLDER = "transfer-cache"


def tensor_sha256(t: torch.Tensor) -> str:
    """A digest of a tensor's values, shape and dtype (the exact points an attack saw)."""
    data = t.detach().to("cpu").contiguous()
    h = hashlib.sha256(f"{tuple(data.shape)}|{data.dtype}".encode())
    h.update(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return h.hexdigest()


@dataclass(frozen=True)
class TransferCache:
    """A folder of crafted examples; ``folder`` None crafts every time (no store, no cache)."""

    folder: Path | None

    @classmethod
    def beside(cls, store_path: str | Path | None) -> TransferCache:
        """The cache of the results store at ``store_path`` (its folder's ``transfer-cache``)."""
        return cls(None if store_path is None else Path(store_path).parent / FOLDER)

    def _path(self, text: str) -> Path:
        assert self.folder is not None
        return self.folder / f"{hashlib.sha256(text.encode()).hexdigest()}.pt"

    def holds(self, key: dict[str, Any]) -> bool:
        """Whether examples for ``key`` are stored (what the cost estimate asks before a cell)."""
        return self.folder is not None and self._path(json.dumps(key, sort_keys=True, default=str)).is_file()

    def examples(self, key: dict[str, Any],
                 craft: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, str]:
        """The examples stored under ``key`` ("hit"), else ``craft()``'s, stored ("miss");
        without a folder ``craft()``'s ("off")."""
        if self.folder is None:
            return craft(), "off"
        text = json.dumps(key, sort_keys=True, default=str)
        path = self._path(text)
        stored = _read(path, text)
        if stored is not None:
            return stored, "hit"
        x_adv = craft().detach().to("cpu")
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=self.folder)
        os.close(handle)
        try:
            torch.save({"key": text, "x_adv": x_adv}, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return x_adv, "miss"


def _read(path: Path, key_text: str) -> torch.Tensor | None:
    """The examples in ``path`` when it holds an entry made under exactly ``key_text``."""
    if not path.is_file():
        return None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError):
        return None  # unreadable (a foreign or damaged file): craft again and replace it
    if not isinstance(entry, dict) or entry.get("key") != key_text:
        return None
    x_adv = entry.get("x_adv")
    return x_adv if isinstance(x_adv, torch.Tensor) else None
