"""The keys a grid file may hold, their kinds and defaults, and the one-line errors that name a
mistake's place (a section, or a block's table) with the nearest valid name.

Every key mirrors a ``medrobust run`` option and has its default. A section is validated as written
(types and ranges of the keys it names); defaults and a block's inheritance are applied later
(:mod:`~robustbench_med.grid.spec`), so a value is always checked where the file states it.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from robustbench_med.errors import BadInputError, MedrobustError
from robustbench_med.registry import nearest

NO_DEFENSE = "none"


class GridSpecError(BadInputError):
    """A grid file that cannot be run as written."""


# key -> (accepted kinds, default, what it is); a kind is a type, or "eps" (a number or "4/255")
_STR, _INT, _BOOL, _LIST, _DICT = str, int, bool, list, dict
SCHEMA: dict[str, dict[str, tuple[tuple[Any, ...], Any, str]]] = {
    "grid": {
        "description": ((_STR,), "", "a line saying what the grid is for"),
        "models": ((_LIST,), None, "registered models (medrobust list models)"),
        "defenses": ((_LIST,), [NO_DEFENSE], "registered defenses, or 'none'"),
        "datasets": ((_LIST,), None, "dataset ids (d12), MedMNIST flags or pairs d12+d14"),
        "attacks": ((_LIST, _STR, _DICT), ["pgd-10"],
                    "attack names, 'all', or a table of them per preset (paper = [\"pgd-10\"])"),
        "presets": ((_LIST,), ["paper", "standard"], "paper, standard, code"),
        "eps": ((_LIST, _STR), [], "eps values (4/255, 0.0157) or a range 0.01:0.1:10"),
        "seeds": ((_LIST,), [0], "training and attack seeds (integers)"),
    },
    "training": {
        "recipe": ((_STR,), "paper", "paper, code, fast or medmnist"),
        "epochs": ((_INT,), 200, "training epochs"),
        "image_size": ((_INT,), 128, "side of the square input, in pixels"),
        "batch_size": ((_INT,), 32, "training batch size"),
        "augment": ((_BOOL,), True, "the paper's 4x training augmentation"),
        "n_train": ((_INT,), None, "a fixed subset of this many training images"),
        "n_val": ((_INT,), None, "a fixed subset of this many validation images"),
        "adversarial": ((_BOOL,), False, "PGD adversarial training (paper Alg. 2)"),
        "adv_eps": (("eps",), "4/255", "adversarial-training eps"),
        "adv_step": (("eps",), "1/255", "adversarial-training PGD step size"),
        "adv_steps": ((_INT,), 10, "adversarial-training PGD steps"),
        "bn_settle": ((_STR,), "recalibrate", "recalibrate or none"),
        "amp": ((_STR,), "off", "mixed precision in training: off or bf16 (autocast; attacks stay fp32)"),
    },
    "evaluation": {
        "n_test": ((_INT,), None, "a fixed subset of this many test images"),
        "draws": ((_INT,), 10, "fresh draws scoring a randomized model"),
        "checks": ((_BOOL,), True, "the large-eps probe and the gradient-masking checks"),
        "attack_batch_size": ((_INT,), 128, "batch size for attacks"),
        "surrogate": ((_STR,), "resnet101", "surrogate model of the transfer attacks"),
        "square_queries": ((_INT,), 5000, "Square's query budget (square, square-surrogate, inside "
                           "autoattack and aa-surrogate); another than 5000 names the cells"),
        "device": ((_STR,), "auto", "auto, cpu or cuda"),
        "download": ((_BOOL,), False, "download a missing MedMNIST file"),
    },
}
POSITIVE = {"epochs", "image_size", "batch_size", "n_train", "n_val", "adv_steps", "n_test", "draws",
            "attack_batch_size", "square_queries"}
AT_MOST = {"square_queries": 10000}  # square-K names hold K up to 10000


def _amp_choices() -> tuple[str, ...]:
    from robustbench_med.training.precision import AMP_CHOICES  # torch: only when a file names amp

    return AMP_CHOICES


CHOICES = {"amp": _amp_choices}  # key -> its allowed values (as ``medrobust run`` accepts them)
OPTION_TABLES = ("model_options", "defense_options")
BLOCK = "block"
# A [[block]] holds the [grid] keys (but its own name), tables [block.training],
# [block.evaluation] (without the run-wide device and download), and option tables.
BLOCK_KEYS = ["name", *(k for k in SCHEMA["grid"] if k != "description"), "training", "evaluation",
              *OPTION_TABLES]
RUN_WIDE = ("device", "download")  # one value for the whole grid: the top-level [evaluation]
_KIND_WORDS = {_STR: "a string", _INT: "an integer", _BOOL: "true or false", _LIST: "a list",
               _DICT: "a table", "eps": "a number or a string such as \"4/255\""}


class Where:
    """Raises one-line errors that start with the grid file's path."""

    def __init__(self, path: Any) -> None:
        self.path = path

    def fail(self, message: str) -> NoReturn:
        raise GridSpecError(f"grid file {self.path}: {message}")

    def unknown(self, name: str, what: str, allowed: list[str], prefix: str = "") -> NoReturn:
        near = nearest(name, allowed)
        closing = "]" if prefix == "[" else ""
        self.fail(f"unknown {what} {prefix}{name}{closing}"
                  + (f"; did you mean {prefix}{near}{closing}?" if near else "")
                  + f" (allowed: {', '.join(allowed)})")

    def wrap(self, place: str, exc: MedrobustError) -> NoReturn:
        self.fail(f"{place}: {exc}")


def section(table: Any, name: str, place: str, where: Where, *,
            exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The keys ``table`` states of schema section ``name``, checked for kind and range; ``place``
    names it in errors (``[training]``, ``[block.training] of block 2 (defenses)``)."""
    if not isinstance(table, dict):
        where.fail(f"{place} must be a table of keys (got {word(table)})")
    schema = {k: v for k, v in SCHEMA[name].items() if k not in exclude}
    for key in table:
        if key not in schema:
            hint = (f" ({key} is set once for the whole grid, in the top-level [evaluation])"
                    if key in exclude else "")
            if hint:
                where.fail(f"{key} cannot be set in {place}{hint}")
            where.unknown(key, f"key in {place}:", list(schema))
    out = {}
    for key, value in table.items():
        kinds, _default, what = schema[key]
        if not any(is_kind(value, kind) for kind in kinds):
            expected = " or ".join(_KIND_WORDS[k] for k in kinds)
            where.fail(f"{place} {key} must be {expected} ({what}), got {json.dumps(value, default=str)}")
        if key in POSITIVE and value < 1:
            where.fail(f"{place} {key} must be at least 1, got {value}"
                       + (" (leave it out to use every image)" if key.startswith("n_") else ""))
        if key in AT_MOST and value > AT_MOST[key]:
            where.fail(f"{place} {key} must be at most {AT_MOST[key]}, got {value}")
        if key in CHOICES and value not in (allowed := list(CHOICES[key]())):
            where.unknown(value, f"{key} in {place}:", allowed)
        out[key] = list(value) if isinstance(value, list) else value
    return out


def defaults(name: str) -> dict[str, Any]:
    return {key: (list(default) if isinstance(default, list) else default)
            for key, (_kinds, default, _what) in SCHEMA[name].items()}


def is_kind(value: Any, kind: Any) -> bool:
    if kind == "eps":
        return isinstance(value, (str, float)) or (isinstance(value, int) and not isinstance(value, bool))
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def word(value: Any) -> str:
    return {str: "a string", bool: "a boolean", int: "an integer", float: "a number",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def check_list(items: list[Any], place: str, kind: type, where: Where) -> list[Any]:
    if not items:
        where.fail(f"{place} is empty (name at least one)")
    for item in items:
        if not is_kind(item, kind):
            where.fail(f"{place} must hold {'integers' if kind is int else 'strings'}, got "
                       f"{json.dumps(item, default=str)} ({word(item)})")
    return items


def option_tables(table: Any, name: str, place: str, where: Where) -> dict[str, dict[str, Any]]:
    """``[model_options]`` or ``[defense_options]`` (``name``): one table of options per model or
    defense, stated at ``place``."""
    kind = name.split("_")[0]
    if not isinstance(table, dict) or any(not isinstance(v, dict) for v in table.values()):
        where.fail(f"{place} must hold one table per {kind}, e.g. "
                   f"{place.split(']')[0]}.{'resnet18' if kind == 'model' else 'pni'}]")
    return {owner: dict(values) for owner, values in table.items()}
