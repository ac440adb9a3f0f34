"""The model zoo: trained checkpoints on disk, each with a sidecar JSON.

A checkpoint is a plain dict of tensors and strings, so it loads with
``torch.load(..., weights_only=True)``. Its name is a hash of everything that
determines the weights (model, defense, dataset, options, training recipe), so
a changed setting never silently reuses old weights. Files are written to a
temporary name and renamed, so a killed process never leaves half a checkpoint.

A checkpoint's identity (the ``checkpoint_sha`` of every result row) is the
hash of what decides its predictions -- the weights and buffers, the config and
the data card -- not of the file, which also holds timings: training the same
configuration twice gives the same identity, and its rows are reused. A file
in the zoo is never overwritten with different weights, since stored rows
refer to it (see :meth:`Zoo.save`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustbench_med.data.spec import DataInfo, TaskInfo
from robustbench_med.errors import CheckpointError
from robustbench_med.models.builder import build_model
from robustbench_med.versions import library_versions

FORMAT = "medrobust-checkpoint/1"


@dataclass(frozen=True)
class ModelConfig:
    """Everything that determines a trained model's weights."""

    model: str
    dataset: str
    image_size: int
    defense: str | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    defense_options: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        return cls(**json.loads(text))

    @property
    def key(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        return self.model if self.defense is None else f"{self.model}+{self.defense}"


def info_to_json(info: DataInfo) -> str:
    return json.dumps(asdict(info), sort_keys=True)


def info_from_json(text: str) -> DataInfo:
    raw = json.loads(text)
    return DataInfo(
        dataset=raw["dataset"], channels=raw["channels"], image_size=raw["image_size"],
        tasks=tuple(TaskInfo(**t) for t in raw["tasks"]),
        mean=tuple(tuple(m) for m in raw["mean"]), std=tuple(tuple(s) for s in raw["std"]),
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_sha256(state_dict: dict[str, torch.Tensor], config_json: str, info_json: str) -> str:
    """sha256 over every tensor (name, dtype, shape, bytes), the config and the data card."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    digest.update(config_json.encode() + b"|" + info_json.encode())
    return digest.hexdigest()


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Write through ``write(fileobj)`` to a temporary file, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model, how it was made, and how good it was."""

    model: nn.Module
    config: ModelConfig
    info: DataInfo
    metrics: dict[str, Any]
    path: Path
    sha256: str


class Zoo:
    """Checkpoints under one folder, found by the hash of their :class:`ModelConfig`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path_for(self, config: ModelConfig) -> Path:
        return self.root / config.label / f"{config.dataset}-{config.image_size}px-{config.key}.pt"

    def find(self, config: ModelConfig) -> Path | None:
        path = self.path_for(config)
        return path if path.is_file() else None

    def save(self, model: nn.Module, config: ModelConfig, info: DataInfo,
             metrics: dict[str, Any]) -> Path:
        """Store a trained model; returns the path that holds these weights.

        When the zoo already holds this configuration: identical weights keep the
        stored file (its rows stay valid); different weights (another device, a
        changed library) go beside it as ``<name>-<content hash>.pt`` and the
        stored file is left as it is, because result rows refer to it.
        """
        path = self.path_for(config)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        identity = content_sha256(state, config.to_json(), info_to_json(info))
        if path.is_file():
            existing = load_checkpoint(path).sha256
            if existing == identity:
                return path
            path = path.with_name(f"{path.stem}-{identity[:12]}.pt")
            if path.is_file():
                return path
        payload = {
            "format": FORMAT,
            "config": config.to_json(),
            "info": info_to_json(info),
            "metrics": json.dumps(metrics, sort_keys=True),
            "versions": json.dumps(library_versions(), sort_keys=True),
            "state_dict": state,
        }
        atomic_write_bytes(path, lambda fh: torch.save(payload, fh))
        sidecar = {
            "config": json.loads(config.to_json()), "info": json.loads(info_to_json(info)),
            "metrics": metrics, "sha256": identity, "file_sha256": sha256_of(path),
            "versions": library_versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "file": path.name,
        }
        text = json.dumps(sidecar, indent=2, sort_keys=True).encode()
        atomic_write_bytes(path.with_suffix(".json"), lambda fh: fh.write(text))
        return path


def load_checkpoint(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> Checkpoint:
    """Rebuild and load a checkpoint; refuse anything that is not a medrobust checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path} is not a loadable medrobust checkpoint (corrupt, or not a weights-only "
            f"torch file): {reason[:200]}"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a torch file but not a medrobust checkpoint "
                              f"(expected format '{FORMAT}')")
    config = ModelConfig.from_json(payload["config"])
    info = info_from_json(payload["info"])
    model = build_model(config.model, info, defense=config.defense,
                        model_options=config.model_options, defense_options=config.defense_options)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not match the {config.label} architecture of this "
                              f"medrobust version: {str(exc).splitlines()[0]}") from exc
    identity = content_sha256(payload["state_dict"], payload["config"], payload["info"])
    return Checkpoint(model=model.to(device).eval(), config=config, info=info,
                      metrics=json.loads(payload["metrics"]), path=path, sha256=identity)
