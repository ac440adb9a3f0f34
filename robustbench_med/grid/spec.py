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

A file may instead hold several blocks, each a product of its own, with its own budget and
options; a block inherits the top-level sections and overrides what it states. Attacks may be given
per preset, which is what several ``medrobust run`` commands on one checkpoint ask for:

```toml
[training]                  # shared by every block
recipe = "medmnist"
epochs = 4

[[block]]
name = "defenses"
models = ["mail_rn18"]
defenses = ["pni", "rpf"]
datasets = ["d12"]
attacks = { paper = ["pgd-10", "mim-10"], standard = ["pgd-20"] }
[block.training]
adv_steps = 3
adv_step = "2/255"
amp = "bf16"                # --amp: bf16 autocast in training (attacks stay fp32)
[block.model_options.mail_rn18]
...
```

Every key mirrors a ``medrobust run`` option and has its default; a mistake is one line naming the
file, the place, what was wrong, what is allowed and the nearest valid name, raised as a
:class:`GridSpecError` (exit code 2 from the CLI). Names are checked against the registries, and
every (model, defense, dataset) request is built by the same function as ``medrobust run``'s, so a
grid's checkpoint has the zoo key of the ``run`` command with the same settings.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from robustbench_med.errors import MedrobustError
from robustbench_med.grid.schema import (
    BLOCK,
    BLOCK_KEYS,
    NO_DEFENSE,
    OPTION_TABLES,
    RUN_WIDE,
    SCHEMA,
    GridSpecError,
    Where,
    check_list,
    defaults,
    is_kind,
    option_tables,
    section,
)
from robustbench_med.registry import nearest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser from PyPI (a dependency there)
    import tomli as tomllib

__all__ = ["NO_DEFENSE", "SCHEMA", "Entry", "Evaluation", "GridSpec", "GridSpecError", "load_spec",
           "parse_spec"]


@dataclass(frozen=True)
class Evaluation:
    """How one checkpoint is evaluated. ``groups`` are (attacks as ``--attacks``, presets) pairs in
    order, one per ``medrobust run`` command it stands for; the rest is what those commands share."""

    groups: tuple[tuple[str, tuple[str, ...]], ...]
    eps: tuple[float, ...]
    n_test: int | None
    draws: int
    checks: bool
    attack_batch_size: int
    surrogate: str
    square_queries: int = 5000  # Square's budget (square, transfer, inside AutoAttack)

    @property
    def attacks(self) -> str:
        """Every group's attacks, as one ``--attacks`` value."""
        parts = [p.strip() for attacks, _ in self.groups for p in attacks.split(",") if p.strip()]
        return ",".join(dict.fromkeys(parts))

    @property
    def presets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for _, presets in self.groups for p in presets))


@dataclass(frozen=True)
class Entry:
    """One checkpoint to evaluate: its request (as ``medrobust run`` builds it) and evaluation."""

    block: str
    request: Any  # ModelRequest
    evaluation: Evaluation


@dataclass(frozen=True)
class GridSpec:
    """A validated grid file: its ``entries`` in file order (per block: model x defense x dataset x
    seed); entries with the same checkpoint and test settings are one, their attack groups joined."""

    path: Path
    description: str
    entries: tuple[Entry, ...]
    blocks: tuple[str, ...]
    device: str
    download: bool
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def requests(self) -> tuple[Any, ...]:
        return tuple(entry.request for entry in self.entries)


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
    where = Where(path)
    unknown = [k for k in raw if k not in SCHEMA and k not in OPTION_TABLES and k != BLOCK]
    if unknown:
        where.unknown(unknown[0], "section", [*SCHEMA, *OPTION_TABLES, BLOCK], "[")
    top = {name: section(raw.get(name, {}), name, f"[{name}]", where) for name in SCHEMA}
    top_options = {t: option_tables(raw.get(t, {}), t, f"[{t}]", where) for t in OPTION_TABLES}
    blocks = raw.get(BLOCK)
    if blocks is not None and (not isinstance(blocks, list) or not blocks
                               or not all(isinstance(b, dict) for b in blocks)):
        where.fail("[[block]] must be one or more tables, each written as [[block]] followed by its keys")
    entries: list[Entry] = []
    labels = []
    for index, block in enumerate(blocks or [None], start=1):
        label, g, t, e, options, own_presets = _block(block, index, top, top_options, where)
        labels.append(label)
        entries += _entries(label, g, t, e, options, own_presets, where)
    evaluation = {**defaults("evaluation"), **top["evaluation"]}
    _check_device(evaluation["device"], where)
    return GridSpec(path=path, description=top["grid"].get("description", ""), entries=_merged(entries),
                    blocks=tuple(labels), device=evaluation["device"], download=evaluation["download"],
                    raw=raw)


def _block(block: dict[str, Any] | None, index: int, top: dict[str, dict[str, Any]],
           top_options: dict[str, dict[str, dict[str, Any]]], where: Where) -> tuple[Any, ...]:
    """A block's label and its settings: the defaults, then the top-level sections, then its own."""
    own: dict[str, dict[str, Any]] = {name: {} for name in SCHEMA}
    options = {t: {o: dict(v) for o, v in top_options[t].items()} for t in OPTION_TABLES}
    if block is None:
        label = "[grid]"
    else:
        name = block.get("name", "")
        if not isinstance(name, str):
            where.fail(f"block {index} name must be a string, got {json.dumps(name, default=str)}")
        label = f"block {index}" + (f" ({name})" if name else "")
        for key in block:
            if key not in BLOCK_KEYS:
                where.unknown(key, f"key in {label}:", BLOCK_KEYS)
        own["grid"] = section({k: v for k, v in block.items() if k in SCHEMA["grid"]}, "grid", label, where)
        own["training"] = section(block.get("training", {}), "training", f"[block.training] of {label}",
                                  where)
        own["evaluation"] = section(block.get("evaluation", {}), "evaluation",
                                    f"[block.evaluation] of {label}", where, exclude=RUN_WIDE)
        for table in OPTION_TABLES:
            for owner, values in option_tables(block.get(table, {}), table, f"[block.{table}] of {label}",
                                               where).items():
                options[table].setdefault(owner, {}).update(values)
    merged = {name: {**defaults(name), **top[name], **own[name]} for name in SCHEMA}
    own_presets = "presets" in top["grid"] or "presets" in own["grid"]
    return label, merged["grid"], merged["training"], merged["evaluation"], options, own_presets


def _entries(label: str, g: dict[str, Any], t: dict[str, Any], e: dict[str, Any],
             options: dict[str, dict[str, dict[str, Any]]], own_presets: bool, where: Where) -> list[Entry]:
    """The block's product models x defenses x datasets x seeds, each with its evaluation."""
    for key, example in (("models", '["resnet18"]'), ("datasets", '["d12"]')):
        if g[key] is None:
            where.fail(f"{label} needs {key} ({SCHEMA['grid'][key][2]}), e.g. {key} = {example}")
    for key in ("models", "defenses", "datasets", "presets", "seeds"):
        check_list(g[key], f"{label} {key}", int if key == "seeds" else str, where)
    groups = _groups(g["attacks"], g["presets"], own_presets, label, where)
    eps = _eps(g["eps"], label, where)
    models = _resolve_all("models", g["models"], label, where)
    defenses = [None if d.strip().lower() == NO_DEFENSE else d for d in g["defenses"]]
    defenses = [None if d is None else _resolve_all("defenses", [d], label, where)[0] for d in defenses]
    _check_option_owners(options, models, [d for d in defenses if d], label, where)
    requests = [_request(model, defense, dataset, seed, t, options, where)
                for model in models for defense in dict.fromkeys(defenses)
                for dataset in g["datasets"] for seed in dict.fromkeys(g["seeds"])]
    for attacks, _presets in groups:
        _check_attacks_per_dataset(attacks, requests, label, where)
    surrogate = _resolve_all("surrogate", [e["surrogate"]], label, where,
                             key=f"{'[evaluation]' if label == '[grid]' else label} surrogate")[0]
    evaluation = Evaluation(groups=groups, eps=eps, n_test=e["n_test"], draws=e["draws"], checks=e["checks"],
                            attack_batch_size=e["attack_batch_size"], surrogate=surrogate,
                            square_queries=e["square_queries"])
    return [Entry(label, request, evaluation) for request in requests]


def _merged(entries: list[Entry]) -> tuple[Entry, ...]:
    """One entry per checkpoint and test settings: a later entry's attack groups join the first's."""
    out: dict[str, Entry] = {}
    for entry in entries:
        ev = entry.evaluation
        key = json.dumps([entry.request.config().key, ev.eps, ev.n_test, ev.draws, ev.checks,
                          ev.attack_batch_size, ev.surrogate, ev.square_queries])
        first = out.get(key)
        if first is None:
            out[key] = entry
        else:
            groups = tuple(dict.fromkeys((*first.evaluation.groups, *ev.groups)))
            out[key] = replace(first, evaluation=replace(first.evaluation, groups=groups))
    return tuple(out.values())


def _groups(attacks: Any, presets: list[str], own_presets: bool, label: str,
            where: Where) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(attacks, presets) pairs: one for a list of attacks, one per preset for a table of them."""
    from robustbench_med.attacks.spec import check_preset, parse_attacks

    def names(value: Any, place: str) -> str:
        if not isinstance(value, (str, list)):
            where.fail(f"{place} must be a list of attack names or 'all', got "
                       f"{json.dumps(value, default=str)}")
        text = value if isinstance(value, str) else ",".join(check_list(value, place, str, where))
        try:
            parse_attacks(text)
        except MedrobustError as exc:
            where.wrap(place, exc)
        return text

    def preset_ok(preset: str, place: str) -> None:
        try:
            check_preset(preset)
        except MedrobustError as exc:
            where.wrap(place, exc)

    if isinstance(attacks, dict):
        if own_presets:
            where.fail(f"{label} gives presets twice: as the keys of attacks and as presets (keep one)")
        if not attacks:
            where.fail(f"{label} attacks is empty (e.g. attacks = {{ paper = [\"pgd-10\"] }})")
        groups = []
        for preset, value in attacks.items():
            preset_ok(preset, f"{label} attacks")
            groups.append((names(value, f"{label} attacks.{preset}"), (preset,)))
        return tuple(groups)
    for preset in presets:
        preset_ok(preset, f"{label} presets")
    return ((names(attacks, f"{label} attacks"), tuple(dict.fromkeys(presets))),)


def _eps(eps: list[Any] | str, label: str, where: Where) -> tuple[float, ...]:
    from robustbench_med.attacks.eps import parse_eps_list

    if isinstance(eps, list):
        for item in eps:
            if not is_kind(item, "eps"):
                where.fail(f"{label} eps must hold numbers or strings such as \"4/255\", got "
                           f"{json.dumps(item, default=str)}")
        eps = ",".join(str(item) for item in eps)
    try:
        return tuple(parse_eps_list(eps)) if eps.strip() else ()
    except MedrobustError as exc:
        where.wrap(f"{label} eps", exc)


def _resolve_all(kind: str, names: list[str], label: str, where: Where, key: str | None = None) -> list[str]:
    from robustbench_med.registry import DEFENSES, MODELS

    registry = DEFENSES if kind == "defenses" else MODELS
    resolved = []
    for name in names:
        try:
            resolved.append(registry.resolve(name))
        except MedrobustError as exc:
            extra = f" or '{NO_DEFENSE}'" if kind == "defenses" else ""
            where.wrap(key or f"{label} {kind}", MedrobustError(f"{exc}{extra}"))
    return list(dict.fromkeys(resolved))


def _check_option_owners(options: dict[str, dict[str, dict[str, Any]]], models: list[str],
                         defenses: list[str], label: str, where: Where) -> None:
    """[model_options.X] must name a model of the block, [defense_options.Y] one of its defenses."""
    from robustbench_med.registry import DEFENSES, MODELS

    for table, registry, names in (("model_options", MODELS, models),
                                   ("defense_options", DEFENSES, defenses)):
        for owner in options[table]:
            resolved = registry.resolve(owner) if owner in registry else owner
            if resolved not in names:
                near = nearest(owner, names)
                whose = "the grid's" if label == "[grid]" else f"{label}'s"
                where.fail(f"[{table}.{owner}] names no {table.split('_')[0]} of "
                           f"{'the grid' if label == '[grid]' else label}"
                           + (f"; did you mean [{table}.{near}]?" if near else "")
                           + f" ({whose}: {', '.join(names) or 'none'})")


def _request(model: str, defense: str | None, dataset: str, seed: int, t: dict[str, Any],
             options: dict[str, dict[str, dict[str, Any]]], where: Where) -> Any:
    """The ModelRequest that ``medrobust run`` would build from the same settings."""
    from robustbench_med.model_request import model_request
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
            adv_step=str(t["adv_step"]), bn_settle=t["bn_settle"], amp=t["amp"])
    except MedrobustError as exc:
        where.wrap(f"{model}{'+' + defense if defense else ''} on {dataset}", exc)


def _check_attacks_per_dataset(attacks: str, requests: list[Any], label: str, where: Where) -> None:
    """A transfer attack cannot attack a paired dataset: say so now, not after training."""
    from robustbench_med.attacks.spec import parse_attacks

    for dataset in dict.fromkeys(r.dataset for r in requests):
        try:
            parse_attacks(attacks, paired="+" in dataset)
        except MedrobustError as exc:
            where.wrap(f"{label} attacks on {dataset}", exc)


def _check_device(device: str, where: Where) -> None:
    from robustbench_med.device import CHOICES

    if device.lower().split(":")[0] not in CHOICES:
        where.unknown(device, "device in [evaluation]:", list(CHOICES))
