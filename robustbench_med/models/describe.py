"""What ``medrobust info`` reports of a model: the input it is sized for, its parameters and FLOPs.

A model's size depends on its input (channels, side, classes per task) and not
on the values of its normalisation: those are measured on a dataset's training
split when the dataset is loaded (``data/loading.py``), one mean and std per
channel. Counting needs only their shape, so the model is built here with the
identity normalisation (mean 0, std 1) and the report says that normalisation
is per dataset rather than showing numbers no dataset produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from robustbench_med.data.spec import DataInfo, TaskInfo
from robustbench_med.errors import BadInputError

MULTIMODAL_FAMILIES = ("mail", "robust_mail")  # families with one head per modality
PAPER_HEADS = (5, 7)  # the official MAIL code: SIPaKMeD (5 classes) + HAM10000 (7 classes)
NORMALISATION = ("per dataset: one mean and std per channel, measured on the training split when "
                 "the dataset is loaded; their values change no count")


@dataclass(frozen=True)
class InputSetting:
    """The input a model is described at, and a line saying where it comes from."""

    info: DataInfo
    label: str


def is_multimodal(name: str) -> bool:
    """Whether the registered model takes one input per modality (MAIL and Robust-MAIL)."""
    from robustbench_med.registry import MODELS

    return MODELS.entry(name).meta.get("family") in MULTIMODAL_FAMILIES


def input_setting(name: str, *, dataset: str | None = None, classes: str | None = None,
                  channels: int = 3, image_size: int = 128) -> InputSetting:
    """Channels and classes from ``dataset``'s card (or pair ``d12+d14``) when given; else
    ``classes`` ("5,7"), defaulting to the paper's configuration: heads 5 and 7 for a multimodal
    model, 2 classes for a single-task one."""
    from robustbench_med.data.loading import dataset_spec

    if dataset is not None:
        specs = [dataset_spec(part) for part in dataset.split("+")]
        tasks = tuple(TaskInfo(s.id, s.n_classes or 0) for s in specs)
        channels = max(s.channels for s in specs)
        label = f"{dataset} ({channels} channels)"
    else:
        multimodal = is_multimodal(name)
        default = ",".join(map(str, PAPER_HEADS)) if multimodal else "2"
        try:
            counts = [int(c) for c in (classes or default).split(",")]
        except ValueError:
            raise BadInputError(f"malformed --classes '{classes}' (expected integers, e.g. 5,7)") from None
        if any(c < 2 for c in counts):
            raise BadInputError(f"--classes needs at least 2 classes per task, got {classes}")
        tasks = tuple(TaskInfo(f"task{i + 1}", c) for i, c in enumerate(counts))
        label = ("the paper's configuration: m = 2 modalities, heads 5 and 7 (SIPaKMeD + "
                 "HAM10000, as the official code)" if classes is None and multimodal
                 else f"classes {','.join(map(str, counts))}")
    identity = tuple((0.0,) * channels for _ in tasks), tuple((1.0,) * channels for _ in tasks)
    info = DataInfo(dataset=dataset or "unspecified", channels=channels, image_size=image_size,
                    tasks=tasks, mean=identity[0], std=identity[1])
    return InputSetting(info, label)


def describe(name: str, setting: InputSetting, **options: Any) -> dict[str, Any]:
    """:func:`~robustbench_med.models.profile.profile` of ``name`` at ``setting``, with how the
    model normalises its input."""
    from robustbench_med.models.profile import profile

    return {**profile(name, setting.info, **options), "setting": setting.label,
            "normalisation": NORMALISATION}
