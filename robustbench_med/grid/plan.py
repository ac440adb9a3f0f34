"""A grid's work as a dependency graph: trainings first, then evaluation units grouped by checkpoint.

- A :class:`Training` is one checkpoint to obtain (a target, or the surrogate a transfer attack
  crafts on); trainings with the same configuration are one node, however many targets need them.
- A :class:`Target` is one checkpoint to evaluate (model x defense x dataset x seed, per block of
  the grid file) with its evaluation settings; it depends on its training and, when it is attacked
  by a transfer attack, on its surrogate's. Two targets may share a training (the same checkpoint
  evaluated on other test points, say).
- A :class:`Unit` is the smallest piece of a target's grid that runs on its own: one attack under
  one preset, every eps (ascending: the nested-ball shortcut needs them together) and every
  protocol, plus the clean row (a target's attack groups, e.g. PGD-10 under the paper preset and
  PGD-20 under the standard one, are its units in order); a target's last unit (``checks``) adds
  the large-eps probe and the gradient-masking checks once every other unit of the target is stored.

Which cells a unit stores depends on whether the model is randomized (declared by its modules;
confirmed by the stored clean row once there is one), so cells are computed from a unit on demand.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustbench_med.grid.spec import Evaluation, GridSpec

CHECKS = "checks"


@dataclass(frozen=True)
class Cell:
    """One planned row's distinguishing key columns (the rest come from its target)."""

    task: str
    attack: str
    preset: str
    eps: float
    protocol: str


@dataclass(frozen=True)
class Training:
    """A checkpoint to obtain; ``role`` is ``model`` or ``surrogate``."""

    id: str
    request: Any  # ModelRequest
    role: str
    path: Path  # where the zoo keeps it
    needed_by: tuple[str, ...]
    n_test: int | None = None  # the test points its first target is scored on (its sidecar's metrics)

    @property
    def label(self) -> str:
        r = self.request
        return f"{request_name(r)} on {r.dataset} at {r.image_size}px, seed {r.train.seed}{_adversarial(r)}"

    @property
    def in_zoo(self) -> bool:
        return self.path.is_file()


@dataclass(frozen=True)
class Unit:
    """One attack under one preset on one target, or the target's ``checks`` unit."""

    id: str
    target: str
    attack: str  # the attack's canonical name (pgd-10), or "checks"
    preset: str
    stored_name: str = ""  # its rows' attack column (autoattack[square-500]); empty: ``attack``

    @property
    def is_checks(self) -> bool:
        return self.attack == CHECKS

    @property
    def label(self) -> str:
        """What the plan and the progress lines call it: the name its rows are stored under."""
        if self.is_checks:
            return "probe + masking checks"
        return f"{self.stored_name or self.attack} ({self.preset})"


@dataclass
class Target:
    """One checkpoint to evaluate and its units."""

    id: str
    request: Any  # ModelRequest
    evaluation: Evaluation
    training: str  # Training.id
    surrogate: str | None  # Training.id of the surrogate, when a transfer attack needs one
    randomized: bool  # declared by the model's modules (confirmed at run time)
    tasks: tuple[str, ...]
    block: str = "[grid]"
    units: list[Unit] = field(default_factory=list)

    @property
    def n_test(self) -> int | None:
        return self.evaluation.n_test

    @property
    def label(self) -> str:
        r = self.request
        return f"{request_name(r)} on {r.dataset}, seed {r.train.seed}{_adversarial(r)}"


def request_name(request: Any) -> str:
    """model[options]+defense[options]: what tells two checkpoints of one model apart at a glance."""
    def opts(options: dict[str, Any]) -> str:
        return "[" + ",".join(f"{k}={v}" for k, v in options.items()) + "]" if options else ""

    defense = f"+{request.defense}{opts(request.defense_options)}" if request.defense else ""
    return f"{request.model}{opts(request.model_options)}{defense}"


def _adversarial(request: Any) -> str:
    return ", adversarially trained" if request.train.adversarial else ""


@dataclass
class Plan:
    spec: GridSpec
    zoo: Path
    trainings: list[Training]
    targets: list[Target]

    def training(self, training_id: str) -> Training:
        return next(t for t in self.trainings if t.id == training_id)

    def target(self, target_id: str) -> Target:
        return next(t for t in self.targets if t.id == target_id)

    def unit(self, unit_id: str) -> Unit:
        return next(u for t in self.targets for u in t.units if u.id == unit_id)


def build_plan(spec: GridSpec, zoo: str | Path) -> Plan:
    """The trainings and units of ``spec``; checkpoints are looked up in the zoo folder ``zoo``."""
    from robustbench_med.evaluation.runner import needs_surrogate
    from robustbench_med.models.zoo import Zoo
    from robustbench_med.workflow import surrogate_request

    zoo_store = Zoo(zoo)
    trainings: dict[Path, Training] = {}

    def training_for(request: Any, role: str, target_id: str, n_test: int | None) -> str:
        path = zoo_store.path_for(request.config())
        known = trainings.get(path)
        if known is None:
            known = Training(f"T{len(trainings) + 1}", request, role, path, (), n_test)
        trainings[path] = dataclasses.replace(known, needed_by=(*known.needed_by, target_id))
        return known.id

    targets, built = [], {}
    for index, entry in enumerate(spec.entries, start=1):
        target_id, request, evaluation = f"C{index}", entry.request, entry.evaluation
        paired = "+" in request.dataset
        own = training_for(request, "model", target_id, evaluation.n_test)
        surrogate = (training_for(surrogate_request(request, evaluation.surrogate), "surrogate", target_id,
                                  evaluation.n_test)
                     if needs_surrogate(evaluation.attacks, paired=paired) else None)
        shape = json.dumps([request.model, request.defense, request.dataset, request.image_size,
                            request.model_options, request.defense_options], sort_keys=True, default=str)
        if shape not in built:  # seeds share it: one build per model shape
            built[shape] = declared(request)
        randomized, tasks = built[shape]
        target = Target(target_id, request, evaluation, own, surrogate, randomized, tasks, entry.block)
        target.units = _units(target)
        targets.append(target)
    ordered = sorted(trainings.values(), key=_training_order)  # surrogates first, then the targets'
    ids = {t.id: f"T{i}" for i, t in enumerate(ordered, start=1)}
    for target in targets:
        target.training = ids[target.training]
        target.surrogate = ids[target.surrogate] if target.surrogate else None
    return Plan(spec, Path(zoo), [dataclasses.replace(t, id=ids[t.id]) for t in ordered], targets)


def _training_order(training: Training) -> tuple[int, int]:
    return (0 if training.role == "surrogate" else 1, int(training.id[1:]))


def _units(target: Target) -> list[Unit]:
    """Each attack group's attacks x presets in order (a pair two groups share is one unit), then
    the checks."""
    from robustbench_med.attacks.spec import parse_attack
    from robustbench_med.evaluation.stored_names import stored_attack_name

    ev = target.evaluation
    units: list[Unit] = []
    for attack, preset in dict.fromkeys(pair for group in ev.groups for pair in group_units(target, group)):
        stored = stored_attack_name(parse_attack(attack), ev.surrogate, ev.square_queries)  # as the runner
        units.append(Unit(f"{target.id}.{len(units) + 1}", target.id, attack, preset, stored))
    if target.evaluation.checks:
        units.append(Unit(f"{target.id}.{len(units) + 1}", target.id, CHECKS, "standard"))
    return units


def group_units(target: Target, group: tuple[str, tuple[str, ...]]) -> list[tuple[str, str]]:
    """(attack, preset) of one attack group, as ``medrobust run --attacks A --preset P`` runs them."""
    from robustbench_med.attacks.spec import parse_attacks
    from robustbench_med.evaluation.stored_names import budgeted

    attacks, presets = group
    requests = parse_attacks(attacks, randomized=target.randomized, paired="+" in target.request.dataset)
    requests = [budgeted(request, target.evaluation.square_queries) for request in requests]
    return [(request.name, preset) for request in requests for preset in request.presets_for(list(presets))]


def declared(request: Any) -> tuple[bool, tuple[str, ...]]:
    """Whether ``request``'s model is randomized as built (its modules say so), and its task names as
    the store names them; built once on the dataset cards, random state untouched."""
    import torch

    from robustbench_med.data.loading import dataset_spec
    from robustbench_med.data.spec import DataInfo, TaskInfo
    from robustbench_med.models.builder import build_model
    from robustbench_med.randomness import is_randomized

    specs = [dataset_spec(part) for part in request.dataset.split("+")]
    channels = max(s.channels for s in specs)
    info = DataInfo(dataset=request.dataset, channels=channels, image_size=request.image_size,
                    tasks=tuple(TaskInfo(s.id, s.n_classes or 2) for s in specs),
                    mean=tuple((0.5,) * channels for _ in specs),
                    std=tuple((0.25,) * channels for _ in specs))
    config = request.config()
    with torch.random.fork_rng(devices=[]):
        model = build_model(config.model, info, defense=config.defense, model_options=config.model_options,
                            defense_options=config.defense_options)
    tasks = tuple(s.id if len(specs) == 1 else f"{request.dataset}:{s.id}" for s in specs)
    return is_randomized(model), tasks


def unit_cells(target: Target, unit: Unit, randomized: bool) -> list[Cell]:
    """The rows ``unit`` stores for ``target`` (its clean rows not included)."""
    from robustbench_med.attacks.spec import parse_attack
    from robustbench_med.evaluation.protocols import protocols_for
    from robustbench_med.evaluation.runner import PROBE
    from robustbench_med.evaluation.stored_names import stored_attack_name

    if unit.is_checks:
        probe = parse_attack(PROBE[0])
        return [Cell(task, probe.name, PROBE[1], round(PROBE[2], 10), protocol) for task in target.tasks
                for protocol in protocols_for(probe, randomized)[-1:]]
    request = parse_attack(unit.attack)
    ev = target.evaluation
    name = stored_attack_name(request, ev.surrogate, ev.square_queries)  # as the runner stores it
    eps_list = target.evaluation.eps or (request.spec.settings(unit.preset, None, None).eps,)
    return [Cell(task, name, unit.preset, round(eps, 10), protocol) for task in target.tasks
            for protocol in protocols_for(request, randomized) for eps in sorted(eps_list)]


def cell_of(row: dict[str, Any]) -> Cell:
    """The cell of a stored row."""
    return Cell(row["task"], row["attack"], row["preset"], round(float(row["eps"]), 10), row["protocol"])


def clean_cells(target: Target, randomized: bool) -> list[Cell]:
    return [Cell(task, "clean", "-", 0.0, "randomized" if randomized else "deterministic")
            for task in target.tasks]


def checkpoint_identity(training: Training) -> tuple[str, int | None] | None:
    """(sha256, test points it was scored on) from the zoo's sidecar, None when not trained yet."""
    sidecar = training.path.with_suffix(".json")
    if not training.path.is_file() or not sidecar.is_file():
        return None
    meta = json.loads(sidecar.read_text())
    return meta["sha256"], meta.get("metrics", {}).get("n_test")


def subset_for(n_test: int | None, recorded_n: int | None) -> str:
    """The stored name of the test points: ``test``, or ``test[n]`` with n the subset's size (the
    recorded count of a checkpoint scored on the whole split bounds it)."""
    if n_test is None:
        return "test"
    return f"test[{min(n_test, recorded_n) if recorded_n else n_test}]"


def runner_order(target: Target, randomized: bool) -> dict[Cell, int]:
    """The order in which ``medrobust run``, once per attack group, stores ``target``'s cells (per
    run and task: clean, each attack x preset x protocol x eps, the probe; a cell already stored
    keeps its place). The masking checks read rows in store order and name the first of equals, so
    a unit that runs them gets its rows in this order."""
    by_pair = {(u.attack, u.preset): u for u in target.units if not u.is_checks}
    checks = [u for u in target.units if u.is_checks]
    order: dict[Cell, int] = {}
    for group in target.evaluation.groups:
        units = [by_pair[pair] for pair in dict.fromkeys(group_units(target, group))]
        for task in target.tasks:
            cells = [c for c in clean_cells(target, randomized) if c.task == task]
            for unit in [*units, *checks]:
                cells += [c for c in unit_cells(target, unit, randomized) if c.task == task]
            for cell in cells:
                order.setdefault(cell, len(order))
    return order
