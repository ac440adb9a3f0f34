"""Paired datasets (``d12+d14``): MAIL's m modalities, formed as the official code forms them.

The official notebooks train one MAIL on two unrelated datasets at once
(SIPaKMeD + HAM10000), sample i of one fed with sample i of the other, one
head per dataset (github.com/misti1203/MAIL-Robust-MAIL, ``Code/MAIL.ipynb``:
SIPaKMeD in one branch, HAM10000 in the other). So:

- pairing is by array index, within each split;
- a shorter training split is padded to the longest with augmented copies of
  its own images (the paper's rotation / translation / blur,
  ``transforms.paper_augmentation``; each (image, augmentation) pair used at
  most once before any repeats, drawn with a fixed seed), appended after the
  originals as the code appends them;
- longer validation and test splits are cut to the shortest (the first
  points of each split's fixed seeded subset), as the code subsamples;
- channels are promoted to the largest among the datasets (grey images are
  repeated to RGB), so the branches see the same input shape;
- ``n_train``/``n_val``/``n_test`` limit each dataset before pairing;
  ``augment`` then applies the paper's 4x augmentation to the paired
  training set (the same transform on every modality of a pair).

Labels are (N, m), images (N, m, C, H, W). Mean and std are measured per
modality on its own (unpadded) training images. ``provenance`` records what
was padded, cut and promoted.
"""

from __future__ import annotations

from pathlib import Path

import torch

from robustbench_med.data.single import SUBSET_SEED, channel_stats, dataset_spec, load_single, subset
from robustbench_med.data.spec import DataInfo, DatasetSpec, LoadedDataset, Split, TaskInfo
from robustbench_med.data.transforms import augment_4x, paper_augmentation
from robustbench_med.errors import BadInputError

PAD_SEED = 0
SPLITS = ("train", "val", "test")


def parse_pair(name: str) -> list[DatasetSpec]:
    """The registry cards of ``a+b[+c...]``; refuses empty parts and repeats."""
    parts = [part.strip() for part in name.split("+")]
    if len(parts) < 2 or not all(parts):
        raise BadInputError(f"malformed paired dataset '{name}' (expected e.g. d12+d14)")
    specs = [dataset_spec(part) for part in parts]
    ids = [spec.id for spec in specs]
    if len(set(ids)) != len(ids):
        raise BadInputError(f"paired dataset '{name}' names {', '.join(ids)}: each dataset may appear once")
    return specs


def augmented_padding(split: Split, length: int, seed: int = PAD_SEED) -> tuple[Split, int]:
    """``split`` padded to ``length`` with augmented copies of its images; (split, copies added)."""
    need = length - len(split)
    if need <= 0:
        return split, 0
    n, kinds = len(split), 3  # paper_augmentation's three copies per image
    generator = torch.Generator().manual_seed(seed)
    rounds = -(-need // (n * kinds))
    picks = torch.cat([torch.randperm(n * kinds, generator=generator) for _ in range(rounds)])[:need]
    images, kind = picks % n, picks // n
    x = torch.empty((need, *split.x.shape[1:]), dtype=split.x.dtype)
    for k in range(kinds):
        chosen = (kind == k).nonzero().flatten()
        if len(chosen):
            x[chosen] = paper_augmentation(split.x[images[chosen]])[k].clamp(0.0, 1.0)
    padded = Split(torch.cat([split.x, x]), torch.cat([split.y, split.y[images]]))
    return padded, need


def load_pair(name: str, *, data_root: str | Path | None, image_size: int, augment: bool,
              n_train: int | None, n_val: int | None, n_test: int | None,
              download: bool) -> LoadedDataset:
    """Train/val/test splits of a paired dataset: x (N, m, C, H, W), y (N, m)."""
    specs = parse_pair(name)
    channels = max(spec.channels for spec in specs)
    limits = {"train": n_train, "val": n_val, "test": n_test}
    per_dataset: list[dict[str, Split]] = []
    sources: dict[str, object] = {}
    for spec in specs:
        splits, provenance = load_single(spec, data_root=data_root, image_size=image_size,
                                         channels=channels, download=download)
        per_dataset.append({split: subset(splits[split], limits[split], SUBSET_SEED) for split in SPLITS})
        sources[spec.id] = provenance
    stats = [channel_stats(parts["train"].x) for parts in per_dataset]

    train_length = max(len(parts["train"]) for parts in per_dataset)
    padded, padding = [], {}
    for spec, parts in zip(specs, per_dataset, strict=True):
        split, added = augmented_padding(parts["train"], train_length)
        padded.append(split)
        padding[spec.id] = {"original": len(parts["train"]), "augmented_copies_added": added}
    train = Split(torch.stack([s.x for s in padded], 1), torch.stack([s.y for s in padded], 1))

    def cut(split_name: str) -> tuple[Split, dict[str, dict[str, int]]]:
        length = min(len(parts[split_name]) for parts in per_dataset)
        kept = [parts[split_name].take(torch.arange(length)) for parts in per_dataset]
        record = {spec.id: {"original": len(parts[split_name]), "kept": length}
                  for spec, parts in zip(specs, per_dataset, strict=True)}
        return Split(torch.stack([s.x for s in kept], 1), torch.stack([s.y for s in kept], 1)), record

    val, val_record = cut("val")
    test, test_record = cut("test")
    if augment:
        train = Split(*augment_4x(train.x, train.y))
    info = DataInfo(dataset="+".join(spec.id for spec in specs), channels=channels, image_size=image_size,
                    tasks=tuple(TaskInfo(spec.id, spec.n_classes or 0) for spec in specs),
                    mean=tuple(mean for mean, _ in stats), std=tuple(std for _, std in stats))
    provenance: dict[str, object] = {
        "pair": [spec.id for spec in specs], "pairing": "by index (official code)",
        "sources": sources, "channels": channels,
        "channel_promotion": {spec.id: f"{spec.channels}->{channels}" for spec in specs
                              if spec.channels != channels},
        "train_padding": padding, "val_cut": val_record, "test_cut": test_record,
        "augment": augment, "n_train": len(train), "n_val": len(val), "n_test": len(test),
        "image_size": image_size,
    }
    return LoadedDataset(info=info, train=train, val=val, test=test, provenance=provenance)
