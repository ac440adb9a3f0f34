"""A grid file: TOML naming what to train and what to attack, validated into a :class:`GridSpec`.

```toml
[grid]                      # what: the product models x defenses x datasets x seeds
models = ["resnet18", "mail_rn18"]
defenses = ["none", "pni"]  # "none": the plain model (default ["none"])
datasets = ["d12"]          # ids, MedMNIST flags, or pairs "d12+d14"
attacks = ["pgd-10", "bim-10"]   # or "all"
presets = ["paper", "standard"]
eps = ["4/255"]             # a list, or a range "0.01:0.1:10"; default: the preset's 4/255
seeds = [0]

[training]                  # the budget every checkpoint (and surrogate) is trained with
recipe = "fast"
epochs = 3
image_size = 28
n_train = 1000

[evaluation]
n_test = 40

[model_options.resnet18]    # --model-option, per model
stem = "cifar"
```

Every key mirrors a ``medrobust run`` option and has its default; a mistake is one line naming the
file, the place, what was wrong, what is allowed and the nearest valid name, raised as a
:class:`GridSpecError` (exit code 2 from the CLI). Names are checked against the registries, and
every (model, defense, dataset) request is built by the same function as ``medrobust run``'s.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustbench_med.errors import BadInputError, MedrobustError
from robustbench_med.registry import nearest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser from PyPI (a dependency there)
    import tomli as tomllib

NO_DEFENSE = "none"


class GridSpecError(BadInputError):
    """A grid file that cannot be run as written."""


# key -> (accepted kinds, default, what it is); a kind is a type, or "eps" (a number or "4/255")
_STR, _INT, _BOOL, _LIST = str, int, bool, list
SCHEMA: dict[str, dict[str, tuple[tuple[Any, ...], Any, str]]] = {
    "grid": {
        "description": ((_STR,), "", "a line saying what the grid is for"),
        "models": ((_LIST,), None, "registered models (medrobust list models)"),
        "defenses": ((_LIST,), [NO_DEFENSE], "registered defenses, or 'none'"),
        "datasets": ((_LIST,), None, "dataset ids (d12), MedMNIST flags or pairs d12+d14"),
        "attacks": ((_LIST, _STR), ["pgd-10"], "attack names, or 'all'"),
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
    },
    "evaluation": {
        "n_test": ((_INT,), None, "a fixed subset of this many test images"),
        "draws": ((_INT,), 10, "fresh draws scoring a randomized model"),
        "checks": ((_BOOL,), True, "the large-eps probe and the gradient-masking checks"),
        "attack_batch_size": ((_INT,), 128, "batch size for attacks"),
        "surrogate": ((_STR,), "resnet101", "surrogate model of the transfer attacks"),
        "device": ((_STR,), "auto", "auto, cpu or cuda"),
        "download": ((_BOOL,), False, "download a missing MedMNIST file"),
    },
}
OPTION_TABLES = ("model_options", "defense_options")
_KIND_WORDS = {_STR: "a string", _INT: "an integer", _BOOL: "true or false", _LIST: "a list",
               "eps": "a number or a string such as \"4/255\""}


@dataclass(frozen=True)
class GridSpec:
    """A validated grid file. ``requests`` are the checkpoints to evaluate (model x defense x dataset
    x seed, in that nesting order), each a :class:`~robustbench_med.workflow.ModelRequest` built as
    ``medrobust run`` builds it."""

    path: Path
    description: str
    requests: tuple[Any, ...]
    attacks: str  # comma-separated, as --attacks
    presets: tuple[str, ...]
    eps: tuple[float, ...]
    n_test: int | None
    draws: int
    checks: bool
    attack_batch_size: int
    surrogate: str
    device: str
    download: bool
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.path.stem


def load_spec(path: str | Path) -> GridSpec:
    """Read and validate the grid file at ``path``; a :class:`GridSpecError` names any mistake."""
    path = Path(path)
    if not path.is_file():
        raise GridSpecError(f"no grid file at {path}" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GridSpecError(f"{path} is not valid TOML: {exc}") from None
    return parse_spec(raw, path)


def parse_spec(raw: dict[str, Any], path: Path) -> GridSpec:
    """Validate the parsed TOML ``raw`` of the grid file ``path``."""
    where = _Where(path)
    unknown = [k for k in raw if k not in SCHEMA and k not in OPTION_TABLES]
    if unknown:
        where.unknown(unknown[0], "section", [*SCHEMA, *OPTION_TABLES], "[")
    values = {section: _section(raw.get(section, {}), section, where) for section in SCHEMA}
    g, t, e = values["grid"], values["training"], values["evaluation"]
    for key, example in (("models", '["resnet18"]'), ("datasets", '["d12"]')):
        if g[key] is None:
            where.fail(f"[grid] needs {key} ({SCHEMA['grid'][key][2]}), e.g. {key} = {example}")
    for key in ("models", "defenses", "datasets", "presets", "seeds"):
        _check_list(g[key], f"[grid] {key}", int if key == "seeds" else str, where)
    for section, names in (("training", ("epochs", "image_size", "batch_size", "n_train", "n_val",
                                         "adv_steps")),
                           ("evaluation", ("n_test", "draws", "attack_batch_size"))):
        for key in names:
            value = values[section][key]
            if value is not None and value < 1:
                where.fail(f"[{section}] {key} must be at least 1, got {value}"
                           + (" (leave it out to use every image)" if key.startswith("n_") else ""))
    attacks = g["attacks"] if isinstance(g["attacks"], str) else ",".join(
        _check_list(g["attacks"], "[grid] attacks", str, where))
    presets, eps = _attack_settings(attacks, g["presets"], g["eps"], where)
    models = _resolve_all("models", g["models"], where)
    defenses = [None if d.strip().lower() == NO_DEFENSE else d for d in g["defenses"]]
    defenses = [None if d is None else _resolve_all("defenses", [d], where)[0] for d in defenses]
    options = {table: _option_tables(raw.get(table, {}), table, where) for table in OPTION_TABLES}
    _check_option_owners(options, models, [d for d in defenses if d], where)
    requests = tuple(_request(model, defense, dataset, seed, t, options, where)
                     for model in models for defense in dict.fromkeys(defenses)
                     for dataset in g["datasets"] for seed in dict.fromkeys(g["seeds"]))
    _check_attacks_per_dataset(attacks, requests, where)
    surrogate = _resolve_all("surrogate", [e["surrogate"]], where, key="[evaluation] surrogate")[0]
    _check_device(e["device"], where)
    return GridSpec(path=path, description=g["description"], requests=requests, attacks=attacks,
                    presets=presets, eps=eps, n_test=e["n_test"], draws=e["draws"], checks=e["checks"],
                    attack_batch_size=e["attack_batch_size"], surrogate=surrogate, device=e["device"],
                    download=e["download"], raw=raw)


class _Where:
    """Raises one-line errors that start with the grid file's path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, message: str) -> None:
        raise GridSpecError(f"grid file {self.path}: {message}")

    def unknown(self, name: str, what: str, allowed: list[str], prefix: str = "") -> None:
        near = nearest(name, allowed)
        closing = "]" if prefix == "[" else ""
        self.fail(f"unknown {what} {prefix}{name}{closing}"
                  + (f"; did you mean {prefix}{near}{closing}?" if near else "")
                  + f" (allowed: {', '.join(allowed)})")

    def wrap(self, place: str, exc: MedrobustError) -> None:
        self.fail(f"{place}: {exc}")


def _section(table: Any, section: str, where: _Where) -> dict[str, Any]:
    if not isinstance(table, dict):
        where.fail(f"[{section}] must be a table of keys (got {_word(table)})")
    schema = SCHEMA[section]
    for key in table:
        if key not in schema:
            where.unknown(key, f"key in [{section}]:", list(schema))
    out = {}
    for key, (kinds, default, what) in schema.items():
        value = table.get(key, default)
        if key in table and not any(_is_kind(value, kind) for kind in kinds):
            expected = " or ".join(_KIND_WORDS[k] for k in kinds)
            where.fail(f"[{section}] {key} must be {expected} ({what}), got {json.dumps(value, default=str)}")
        out[key] = list(value) if isinstance(value, list) else value
    return out


def _is_kind(value: Any, kind: Any) -> bool:
    if kind == "eps":
        return isinstance(value, (str, float)) or (isinstance(value, int) and not isinstance(value, bool))
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _word(value: Any) -> str:
    return {str: "a string", bool: "a boolean", int: "an integer", float: "a number",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _check_list(items: list[Any], place: str, kind: type, where: _Where) -> list[Any]:
    if not items:
        where.fail(f"{place} is empty (name at least one)")
    for item in items:
        if not _is_kind(item, kind):
            where.fail(f"{place} must hold {'integers' if kind is int else 'strings'}, got "
                       f"{json.dumps(item, default=str)} ({_word(item)})")
    return items


def _attack_settings(attacks: str, presets: list[str], eps: list[Any] | str,
                     where: _Where) -> tuple[tuple[str, ...], tuple[float, ...]]:
    from robustbench_med.attacks.eps import parse_eps_list
    from robustbench_med.attacks.spec import check_preset, parse_attacks

    try:
        parse_attacks(attacks)
    except MedrobustError as exc:
        where.wrap("[grid] attacks", exc)
    for preset in presets:
        try:
            check_preset(preset)
        except MedrobustError as exc:
            where.wrap("[grid] presets", exc)
    if isinstance(eps, list):
        for item in eps:
            if not _is_kind(item, "eps"):
                where.fail(f"[grid] eps must hold numbers or strings such as \"4/255\", got "
                           f"{json.dumps(item, default=str)}")
        eps = ",".join(str(item) for item in eps)
    try:
        values = tuple(parse_eps_list(eps)) if eps.strip() else ()
    except MedrobustError as exc:
        where.wrap("[grid] eps", exc)
    return tuple(dict.fromkeys(presets)), values


def _resolve_all(kind: str, names: list[str], where: _Where, key: str | None = None) -> list[str]:
    from robustbench_med.registry import DEFENSES, MODELS

    registry = DEFENSES if kind == "defenses" else MODELS
    resolved = []
    for name in names:
        try:
            resolved.append(registry.resolve(name))
        except MedrobustError as exc:
            extra = f" or '{NO_DEFENSE}'" if kind == "defenses" else ""
            where.wrap(key or f"[grid] {kind}", MedrobustError(f"{exc}{extra}"))
    return list(dict.fromkeys(resolved))


def _option_tables(table: Any, name: str, where: _Where) -> dict[str, dict[str, Any]]:
    if not isinstance(table, dict) or any(not isinstance(v, dict) for v in table.values()):
        where.fail(f"[{name}] must hold one table per {name.split('_')[0]}, e.g. "
                   f"[{name}.{'resnet18' if name == 'model_options' else 'pni'}]")
    return table


def _check_option_owners(options: dict[str, dict[str, dict[str, Any]]], models: list[str],
                         defenses: list[str], where: _Where) -> None:
    """[model_options.X] must name a model of the grid, [defense_options.Y] one of its defenses."""
    from robustbench_med.registry import DEFENSES, MODELS

    for table, registry, names in (("model_options", MODELS, models),
                                   ("defense_options", DEFENSES, defenses)):
        for owner in options[table]:
            resolved = registry.resolve(owner) if owner in registry else owner
            if resolved not in names:
                near = nearest(owner, names)
                where.fail(f"[{table}.{owner}] names no {table.split('_')[0]} of the grid"
                           + (f"; did you mean [{table}.{near}]?" if near else "")
                           + f" (the grid's: {', '.join(names) or 'none'})")


def _request(model: str, defense: str | None, dataset: str, seed: int, t: dict[str, Any],
             options: dict[str, dict[str, dict[str, Any]]], where: _Where) -> Any:
    """The ModelRequest that ``medrobust run`` would build from the same settings."""
    from robustbench_med.cli import model_request
    from robustbench_med.registry import DEFENSES, MODELS

    def items(table: str, owner: str | None, registry: Any) -> list[str]:
        found = {registry.resolve(k): v for k, v in options[table].items() if k in registry}
        return [f"{k}={json.dumps(v)}" for k, v in found.get(owner, {}).items()]

    try:
        return model_request(
            model, dataset, defense=defense, image_size=t["image_size"], epochs=t["epochs"],
            batch_size=t["batch_size"], recipe=t["recipe"], augment=t["augment"], n_train=t["n_train"],
            n_val=t["n_val"], seed=seed, model_option=items("model_options", model, MODELS) or None,
            defense_option=items("defense_options", defense, DEFENSES) or None,
            adversarial=t["adversarial"], adv_eps=str(t["adv_eps"]), adv_steps=t["adv_steps"],
            adv_step=str(t["adv_step"]), bn_settle=t["bn_settle"])
    except MedrobustError as exc:
        where.wrap(f"{model}{'+' + defense if defense else ''} on {dataset}", exc)


def _check_attacks_per_dataset(attacks: str, requests: tuple[Any, ...], where: _Where) -> None:
    """A transfer attack cannot attack a paired dataset: say so now, not after training."""
    from robustbench_med.attacks.spec import parse_attacks

    for dataset in dict.fromkeys(r.dataset for r in requests):
        try:
            parse_attacks(attacks, paired="+" in dataset)
        except MedrobustError as exc:
            where.wrap(f"[grid] attacks on {dataset}", exc)


def _check_device(device: str, where: _Where) -> None:
    from robustbench_med.device import CHOICES

    if device.lower().split(":")[0] not in CHOICES:
        where.unknown(device, "device in [evaluation]:", list(CHOICES))
