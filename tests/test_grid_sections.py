"""The grid files of leaderboards/grids/ stand for the ``medrobust run`` and ``sweep`` commands that
reproduce_cpu.sh ran before it became a list of ``grid run`` lines.

The old commands are written out below as the old script expanded them (its defaults; the anchor
as published: D12 at 20 epochs). Each is parsed by the real CLI, whose ``benchmark`` call is caught
before any data or training, so the expected checkpoints (ModelConfig, hence zoo keys) and attack
settings come from ``medrobust run`` itself, not from the grid code. A grid that drops, adds or
changes a checkpoint, an option, a training setting, an attack or a preset fails here. Plans only:
nothing is trained or attacked.
"""

from __future__ import annotations

import json
import re
import shlex
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
GRIDS = ROOT / "leaderboards" / "grids"

# The old script's option groups (reproduce_cpu.sh before the grids).
COMMON = "--image-size 28 --batch-size 32 --no-augment --seed 0"
BUDGET = f"--recipe paper {COMMON}"
FAST = f"--recipe fast {COMMON}"
ATTACKS = "pgd-10,pgd-20,pgd-100,bim-10,mim-10,square-1000,autoattack"
ADV = "--adv-steps 10 --adv-step 1/255"
V2 = ("--recipe medmnist --batch-size 32 --image-size 28 --no-augment --seed 0 --n-train 1600 --epochs 4 "
      "--n-test 100")
ADV2 = "--adversarial --adv-steps 3 --adv-step 2/255"


def table2(datasets: str, extra: str) -> list[str]:
    return [f"run --model {model} --dataset {dataset} --attacks pgd-10 --preset paper --no-checks {FAST} "
            f"{extra}" for dataset in datasets.split() for model in ("resnet18", "mail_rn18")]


def robust_table(dataset: str, extra: str) -> list[str]:
    commands = [
        f"run --model mail_rn18 --dataset {dataset} --attacks {ATTACKS} --preset paper --epochs 10 {FAST} "
        f"{extra}",
        f"run --model robust_mail --dataset {dataset} --adversarial {ADV} --attacks {ATTACKS} --preset paper "
        f"--epochs 10 {FAST} {extra}"]
    return commands + [f"run --model {variant} --dataset {dataset} --adversarial {ADV} --attacks pgd-10 "
                       f"--preset paper --epochs 10 {FAST} {extra}"
                       for variant in ("robust_mail-no-rpan", "robust_mail-rpf-only", "robust_mail-man-only")]


def defense_table(dataset: str, extra: str) -> list[str]:
    return [f"run --model mail_rn18 --defense {defense} --dataset {dataset} --attacks {ATTACKS} "
            f"--preset paper {ADV} --epochs 10 {FAST} {extra}"
            for defense in "pni dbn learn2perturb rpf cap ctrw".split()]


def robust_full() -> list[str]:
    full = ATTACKS
    commands = []
    for dataset in ("d12", "d14"):
        subset = "--n-test 40" + (" --n-train 1000" if dataset == "d12" else "")
        commands += [f"run --model robust_mail --dataset {dataset} {ADV2} --attacks {full},autoattack-rand "
                     f"--preset paper --epochs 6 {FAST} {subset}",
                     f"run --model mail_rn18 --dataset {dataset} --attacks {full} --preset paper --epochs 6 "
                     f"{FAST} {subset}"]
    return commands


def pair(model: str, attacks: str, options: str = "") -> list[str]:
    return [f"run --model {model} --dataset d12 --attacks {attacks} --preset paper {options} {V2}",
            f"run --model {model} --dataset d12 --attacks pgd-20 --preset standard {options} {V2}"]


def defenses_v2() -> list[str]:
    commands = [command for model in ("mail_rn18", "resnet18") for command in pair(model, "pgd-10,mim-10")]
    commands += [command for defense in "pni rpf ctrw learn2perturb dbn cap".split()
                 for command in pair(f"mail_rn18 --defense {defense}", "pgd-10,mim-10",
                                     "--adv-steps 3 --adv-step 2/255")]
    # CAP's remedies (issue 12 item 4), as run by hand
    return commands + [command for option in ("warmup=4", "beta=1")
                       for command in pair("mail_rn18 --defense cap", "pgd-10,mim-10",
                                           f"--adv-steps 3 --adv-step 2/255 --defense-option {option}")]


def robust_v2() -> list[str]:
    commands = pair("robust_mail", "pgd-10,bim-10,mim-10", ADV2)
    commands += pair("robust_mail", "pgd-10,bim-10,mim-10", f"--model-option man=code {ADV2}")
    commands += pair("robust_mail", "pgd-10,mim-10")
    # the white-box set and the surrogate transfers ran as two commands; the grid runs them as one
    full = (f"{ATTACKS},autoattack-rand,aa-surrogate,square-surrogate-1000 --preset paper "
            f"{V2.replace('--n-test 100', '--n-test 40')}")
    commands += [f"run --model robust_mail --dataset d12 {ADV2} --attacks {full}",
                 f"run --model robust_mail --dataset d12 --attacks {full}"]
    for variant in ("no-rpan", "rpf-only", "man-only", "rpf-man"):
        commands += pair(f"robust_mail-{variant}", "pgd-10,mim-10", ADV2)
    for variant in ("man-only", "rpf-man"):
        commands += pair(f"robust_mail-{variant}", "pgd-10,mim-10", f"--model-option man=code {ADV2}")
    return commands


def anchor(datasets: str, epochs: int, models: str = "resnet18 mail_rn18", seed: int = 0) -> list[str]:
    return [f"run --model {model} --dataset {dataset} --attacks pgd-10 --preset standard --recipe medmnist "
            f"--epochs {epochs} --batch-size 128 --image-size 28 --no-augment --seed {seed}"
            for dataset in datasets.split() for model in models.split()]


OLD = {  # section of reproduce_cpu.sh -> the commands it ran (EPOCHS=20, ROBUST_EPOCHS=10, no TEST)
    "resnet18-grid": [
        "run --model resnet18 --dataset d12 --attacks all --preset paper,standard --epochs 20 --n-test 200 "
        f"{BUDGET}",
        "sweep --model resnet18 --dataset d12 --attack pgd-100 --eps 0.01:0.1:10 --preset paper --epochs 20 "
        f"--n-test 200 {BUDGET}"],
    "resnet18-grid-small": [
        "run --model resnet18 --dataset d12 --attacks pgd-10,pgd-20,pgd-50,pgd-100,bim-10,mim-10,autoattack,"
        "square-1000,square-surrogate-1000,aa-surrogate --preset paper,standard --epochs 3 --n-train 1000 "
        f"--n-test 40 {BUDGET}"],
    "table2": [*table2("d14 d13 d12", "--epochs 20"),
               "run --model mail_rn18 --dataset d12 --attacks pgd-10 --preset paper --no-checks --epochs 20 "
               f"{BUDGET}"],
    "mail-sweep": [
        "sweep --model mail_rn18 --dataset d12 --attack pgd-100 --eps 0.01:0.1:10 --preset paper --epochs 6 "
        f"--n-train 1000 --n-test 200 {FAST}"],
    "table2-short": table2("d14 d13 d12", "--epochs 6 --n-train 1000"),
    "robust-d14": robust_table("d14", ""),
    "defenses-d14": defense_table("d14", ""),
    "robust-d12": robust_table("d12", "--n-train 1000 --n-test 200"),
    "defenses-d12": defense_table("d12", "--n-train 1000 --n-test 200"),
    "robust-full": robust_full(),
    "defenses-v2": defenses_v2(),
    "robust-v2": robust_v2(),
    # ANCHOR_DATASETS="d14 d13" (100 epochs, the default), then ANCHOR_DATASETS=d12 ANCHOR_EPOCHS=20
    # then the D13 ResNet18 anchor's second seed, by hand
    "anchor": anchor("d14 d13", 100) + anchor("d12", 20) + anchor("d13", 100, "resnet18", seed=1),
}
NOT_SECTIONS = {"small"}  # grid files that no section of reproduce_cpu.sh runs


class Captured(Exception):
    def __init__(self, config: Any) -> None:
        super().__init__("captured")
        self.config = config


def old_configs(commands: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The RunConfig each old command handed to ``benchmark`` (caught there: nothing runs)."""
    import robustbench_med.pipeline as pipeline
    from robustbench_med.cli import main

    def catch(config: Any, events: Any = None) -> None:
        raise Captured(config)

    monkeypatch.setattr(pipeline, "benchmark", catch)
    configs = []
    for command in commands:
        args = [*shlex.split(command), "--results-dir", str(tmp_path / "r"), "--quiet"]
        with pytest.raises(Captured) as caught:
            main(args)
        configs.append(caught.value.config)
    return configs


def expected_units(config: Any) -> list[tuple[Any, ...]]:
    """(checkpoint, test settings, attack, preset) of every unit ``medrobust run`` computes for
    ``config``, with ``parse_attacks`` as the runner calls it (``all`` appears on ResNet18 only,
    which is deterministic); and one ``checks`` unit when the run checks."""
    from robustbench_med.attacks.spec import parse_attacks

    base = (config.request.config().to_json(), config.n_test, tuple(round(e, 10) for e in config.eps),
            config.draws, config.batch_size, config.surrogate)
    units = [(*base, request.name, preset) for request in parse_attacks(config.attacks)
             for preset in request.presets_for(list(config.presets))]
    return units + ([(*base, "checks", "standard")] if config.checks else [])


def plan_units(plan: Any) -> list[tuple[Any, ...]]:
    out = []
    for target in plan.targets:
        ev = target.evaluation
        base = (target.request.config().to_json(), ev.n_test, tuple(round(e, 10) for e in ev.eps), ev.draws,
                ev.attack_batch_size, ev.surrogate)
        out += [(*base, unit.attack, unit.preset) for unit in target.units]
    return out


def config_view(config: Any) -> tuple[Any, ...]:
    """What of a RunConfig decides its rows (not where the data, the store or the device are)."""
    return (config.request.config().to_json(), config.attacks, tuple(config.presets), config.eps,
            config.n_test, config.batch_size, config.draws, config.seed, config.surrogate, config.checks)


def test_every_grid_file_is_a_section_and_every_section_a_grid_run_line():
    files = {path.stem for path in GRIDS.glob("*.toml")}
    assert files == set(OLD) | NOT_SECTIONS
    script = (ROOT / "leaderboards" / "reproduce_cpu.sh").read_text()
    lines = re.findall(r"^if on ([\w.-]+); then run grid run leaderboards/grids/([\w.-]+)\.toml ", script,
                       re.M)
    assert [section for section, _ in lines] == [stem for _, stem in lines]
    assert sorted(stem for _, stem in lines) == sorted(OLD)


@pytest.mark.parametrize("section", sorted(OLD))
def test_grid_file_plans_exactly_the_old_sections_units(section, tmp_path, monkeypatch):
    """Same checkpoints (ModelConfig JSON, hence zoo key), test points, attacks and presets as the
    old commands; and the local executor hands ``benchmark`` the old commands' configurations."""
    from robustbench_med.grid.local import run_configs
    from robustbench_med.grid.plan import build_plan
    from robustbench_med.grid.run import RunOptions
    from robustbench_med.grid.spec import load_spec

    configs = old_configs(OLD[section], tmp_path, monkeypatch)
    expected = {unit for config in configs for unit in expected_units(config)}
    plan = build_plan(load_spec(GRIDS / f"{section}.toml"), tmp_path / "zoo")
    got = plan_units(plan)
    assert len(got) == len(set(got)), "a unit is planned twice"
    missing, extra = expected - set(got), set(got) - expected
    assert not missing and not extra, (
        f"missing {[(json.loads(u[0])['model'], *u[-2:]) for u in missing]}, "
        f"extra {[(json.loads(u[0])['model'], *u[-2:]) for u in extra]}")
    options = RunOptions(results_dir=tmp_path / "r")
    grid_configs = [config_view(c) for t in plan.targets for c in run_configs(t, options, plan.spec)]
    assert Counter(grid_configs) == Counter(config_view(c) for c in configs)


@pytest.mark.parametrize(("section", "command"), [
    ("defenses-v2", pair("mail_rn18 --defense pni", "pgd-10,mim-10", "--adv-steps 3 --adv-step 2/255")[0]),
    ("robust-v2", pair("robust_mail", "pgd-10,bim-10,mim-10", f"--model-option man=code {ADV2}")[0]),
])
def test_grid_checkpoint_has_the_zoo_key_of_the_run_command(section, command, tmp_path, monkeypatch):
    """A checkpoint trained by ``medrobust run`` is the one ``grid run`` finds in the zoo."""
    from robustbench_med.grid.plan import build_plan
    from robustbench_med.grid.spec import load_spec
    from robustbench_med.models.zoo import Zoo

    (config,) = old_configs([command], tmp_path, monkeypatch)
    run_key = config.request.config().key
    plan = build_plan(load_spec(GRIDS / f"{section}.toml"), tmp_path / "zoo")
    keys = {t.request.config().key: t for t in plan.targets}
    assert run_key in keys, f"no grid checkpoint has the run command's key {run_key}"
    training = plan.training(keys[run_key].training)
    assert training.path == Zoo(tmp_path / "zoo").path_for(config.request.config())
