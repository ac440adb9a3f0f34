"""A :class:`~robustbench_med.workflow.ModelRequest` from the values a user types.

``medrobust run``/``train``/``sweep`` and grid files name models, datasets and
options as text; this module turns that text into a checked request, so that a
bad name, option or subset size is refused before any data is read or a model
trained. The CLI and the grid share it, so both build the same request from the
same settings.
"""

from __future__ import annotations

import json
from typing import Any

from robustbench_med.errors import BadInputError


def parse_key_values(items: list[str] | None, what: str) -> dict[str, Any]:
    """``["stem=cifar", "ratio=0.25"]`` -> ``{"stem": "cifar", "ratio": 0.25}`` (values read as JSON
    when they parse, else kept as text); ``what`` names the flag in the error."""
    options: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise BadInputError(f"malformed {what} '{item}' (expected key=value, e.g. stem=cifar)")
        key, value = (part.strip() for part in item.split("=", 1))
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def check_count(flag: str, value: int | None) -> None:
    """A subset size of 0 or less is refused under the flag's own name (None: all points)."""
    if value is not None and value < 1:
        raise BadInputError(f"{flag} must be at least 1, got {value} (leave it out to use every image)")


def checked_options(model: str, defense: str | None, model_option: list[str] | None,
                    defense_option: list[str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Model and defense options by name and value type, before any data, message or training."""
    from robustbench_med.factory_options import check_options
    from robustbench_med.registry import DEFENSES, MODELS

    model_options = check_options("model", model, MODELS.get(model), 1,
                                  parse_key_values(model_option, "--model-option"))
    defense_options = parse_key_values(defense_option, "--defense-option")
    if defense is None:
        if defense_options:
            raise BadInputError("--defense-option needs --defense (see medrobust list defenses)")
        return model_options, {}
    return model_options, check_options("defense", defense, DEFENSES.get(defense).build, 2,
                                        defense_options)


def model_request(model: str | None, dataset: str | None, *, defense: str | None, image_size: int,
                  epochs: int, batch_size: int, recipe: str, augment: bool, n_train: int | None,
                  n_val: int | None, seed: int, model_option: list[str] | None,
                  defense_option: list[str] | None, adversarial: bool, adv_eps: str,
                  adv_steps: int, adv_step: str, bn_settle: str = "recalibrate", amp: str = "off") -> Any:
    """The checked ModelRequest for these settings: names resolved to their canonical form, a pair
    ``d12+d14`` to dataset ids, eps read from ``4/255`` or ``0.0157``, options checked."""
    from robustbench_med.attacks.eps import parse_eps
    from robustbench_med.data.loading import dataset_spec
    from robustbench_med.registry import DEFENSES, MODELS
    from robustbench_med.training import TrainConfig
    from robustbench_med.workflow import ModelRequest

    if model is None or dataset is None:
        raise BadInputError("--model and --dataset are required (or --checkpoint FILE for run)")
    model = MODELS.resolve(model)
    if defense:
        defense = DEFENSES.resolve(defense)
    dataset = "+".join(dataset_spec(part).id for part in dataset.split("+"))
    check_count("--n-train", n_train)
    check_count("--n-val", n_val)
    model_options, defense_options = checked_options(model, defense, model_option, defense_option)
    train = TrainConfig(recipe=recipe, epochs=epochs, batch_size=batch_size, seed=seed,
                        adversarial=adversarial, adv_eps=parse_eps(adv_eps),
                        adv_step=parse_eps(adv_step), adv_steps=adv_steps, bn_settle=bn_settle, amp=amp)
    return ModelRequest(model=model, dataset=dataset, image_size=image_size, train=train,
                        defense=defense, model_options=model_options, defense_options=defense_options,
                        augment=augment, n_train=n_train, n_val=n_val)
