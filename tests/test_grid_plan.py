"""Grid files: every mistake is one line and exit 2 (with the place, what is allowed, the nearest
name); ``grid plan`` prints trainings (surrogates included) before the units grouped by checkpoint,
the counts, what the store holds, and estimates from stored timings of similar cells. No data and
no training: these tests read grid files and stores only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robustbench_med.cli import main

G = 'models = ["resnet18"]\ndatasets = ["d12"]\n'  # a valid [grid] to add one key to
BASE = {
    "grid": G + 'attacks = ["pgd-10"]',
    "training": 'recipe = "fast"\nepochs = 2\nimage_size = 28\nn_train = 100',
    "evaluation": "n_test = 20",
}


def write(folder: Path, extra: str = "", **sections: str) -> Path:
    text = "".join(f"[{name}]\n{body}\n\n" for name, body in {**BASE, **sections}.items()) + extra
    path = folder / "grid.toml"
    path.write_text(text)
    return path


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


BAD = [
    ({"grid": 'models = ["resnt18"]\ndatasets = ["d12"]'}, "",
     "[grid] models: unknown model 'resnt18'; did you mean 'resnet18'?"),
    ({"training": "epoch = 3"}, "", "unknown key in [training]: epoch; did you mean epochs?"),
    ({}, "[trainig]\nepochs = 2\n", "unknown section [trainig]; did you mean [training]?"),
    ({"training": 'epochs = "3"'}, "", "[training] epochs must be an integer"),
    ({"training": "epochs = 0"}, "", "[training] epochs must be at least 1, got 0"),
    ({"evaluation": "n_test = -4"}, "", "[evaluation] n_test must be at least 1, got -4"),
    ({"grid": G + 'attacks = ["pgd-1O"]'}, "", "unknown attack 'pgd-1O'"),
    ({"grid": G + 'presets = ["papr"]'}, "", "did you mean 'paper'?"),
    ({"grid": G + 'eps = ["4/0"]'}, "", "[grid] eps: malformed eps '4/0'"),
    ({"grid": 'datasets = ["d12"]'}, "", "[grid] needs models"),
    ({"grid": 'models = ["resnet18"]\ndatasets = ["d99"]'}, "", "unknown dataset 'd99'"),
    ({"grid": G + 'defenses = ["pnj"]'}, "", "did you mean 'pni'?"),
    ({"grid": 'models = ["resnet18"]\ndatasets = ["d12+d14"]\nattacks = ["aa-surrogate"]'}, "",
     "[grid] attacks on d12+d14: attack 'aa-surrogate' transfers from a surrogate"),
    ({"grid": G + 'seeds = ["0"]'}, "", "[grid] seeds must hold integers"),
    ({}, "[model_options.mobilenetv2]\nwidth = 2\n",
     "[model_options.mobilenetv2] names no model of the grid (the grid's: resnet18)"),
    ({}, "[model_options.resnet18]\nstme = \"cifar\"\n", "has no option stme"),
    ({"evaluation": 'device = "gpu"'}, "", "unknown device in [evaluation]: gpu"),
    ({"evaluation": "square_queries = 0"}, "", "[evaluation] square_queries must be at least 1, got 0"),
    ({"evaluation": "square_queries = -20"}, "", "[evaluation] square_queries must be at least 1, got -20"),
    ({"evaluation": "square_queries = 2.5"}, "", "[evaluation] square_queries must be an integer"),
    ({"evaluation": 'square_queries = "500"'}, "", "[evaluation] square_queries must be an integer"),
    ({"evaluation": "square_queries = 20000"}, "",
     "[evaluation] square_queries must be at most 10000, got 20000"),
    ({}, "[[block]]\n[block.evaluation]\nsquare_queries = 0\n",
     "[block.evaluation] of block 1 square_queries must be at least 1, got 0"),
    ({}, "models = [\n", "is not valid TOML"),
    # several blocks: [[block]] tables, each with its own product, budget and attacks per preset
    ({}, '[[block]]\nname = "b"\nmodles = ["resnet18"]\n',
     "unknown key in block 1 (b): modles; did you mean models?"),
    ({}, "[[block]]\n[block.training]\nepoch = 3\n",
     "unknown key in [block.training] of block 1: epoch; did you mean epochs?"),
    ({}, "[[block]]\n[block.training]\nepochs = 0\n",
     "[block.training] of block 1 epochs must be at least 1"),
    ({}, '[[block]]\nattacks = { papr = ["pgd-10"] }\n',
     "block 1 attacks: unknown preset 'papr'; did you mean"),
    ({}, '[[block]]\nattacks = { paper = ["pgd-1O"] }\n', "block 1 attacks.paper: unknown attack 'pgd-1O'"),
    ({}, '[[block]]\nattacks = { paper = ["pgd-10"] }\npresets = ["paper"]\n',
     "block 1 gives presets twice: as the keys of attacks and as presets"),
    ({}, '[[block]]\n[block.evaluation]\ndevice = "cpu"\n',
     "device cannot be set in [block.evaluation] of block 1 (device is set once for the whole grid"),
    ({}, '[[block]]\n[block.model_options.mobilenetv2]\nwidth = 2\n',
     "[model_options.mobilenetv2] names no model of block 1"),
    ({}, "[blocks]\nmodels = []\n", "unknown section [blocks]; did you mean [block]?"),
    ({}, '[block]\nmodels = ["resnet18"]\n', "[[block]] must be one or more tables"),
]


@pytest.mark.parametrize(("sections", "extra", "message"), BAD)
def test_bad_grid_file_is_one_line_and_exit_2(capsys, tmp_path, sections, extra, message):
    grid = write(tmp_path, extra, **sections)
    code, _out, err = run_cli(capsys, "grid", "plan", str(grid), "--results-dir", str(tmp_path / "r"))
    assert code == 2, err
    assert err.startswith((f"error: grid file {grid}", f"error: {grid} is not valid TOML")), err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists(), "a bad grid file created the results folder"


@pytest.mark.parametrize(("args", "message"), [
    (("--executor", "rey"), "unknown executor 'rey'; did you mean 'ray'?"),
    (("--workers", "0"), "--workers must be at least 1, got 0"),
    (("--address", "auto"), "--address needs --executor ray"),
])
def test_bad_run_option_is_one_line_and_exit_2(capsys, tmp_path, args, message):
    grid = write(tmp_path)
    code, _out, err = run_cli(capsys, "grid", "run", str(grid), "--results-dir", str(tmp_path / "r"), *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_missing_grid_file(capsys, tmp_path):
    code, _out, err = run_cli(capsys, "grid", "plan", str(tmp_path / "nope.toml"))
    assert code == 2 and f"no grid file at {tmp_path / 'nope.toml'}" in err


def test_plan_puts_trainings_and_surrogates_before_units_grouped_by_checkpoint(capsys, tmp_path):
    grid = write(tmp_path, grid='models = ["resnet18", "mobilenetv2"]\ndatasets = ["d12"]\n'
                              'attacks = ["pgd-10", "aa-surrogate"]\npresets = ["paper", "standard"]')
    code, out, err = run_cli(capsys, "grid", "plan", str(grid), "--results-dir", str(tmp_path / "r"))
    assert code == 0, err
    lines = out.splitlines()
    trainings = [i for i, line in enumerate(lines) if line.strip().startswith("T")]
    units = lines.index(next(line for line in lines if line.startswith("evaluation units")))
    assert len(trainings) == 3 and max(trainings) < units  # one surrogate serves both targets
    assert "T1 surrogate resnet101 on d12 at 28px, seed 1000 (for C1, C2): to train" in out
    assert "C1 resnet18 on d12, seed 0 <- T2, T1 (deterministic; 1 task; subset test[20])" in out
    assert "C2 mobilenetv2 on d12, seed 0 <- T3, T1" in out
    # pgd-10 under two presets, aa-surrogate once (no step: standard only), the checks
    assert [line.split()[1:3] for line in lines if line.strip().startswith("C1.")] == [
        ["pgd-10", "(paper)"], ["pgd-10", "(standard)"], ["aa-surrogate", "(standard)"], ["probe", "+"]]
    assert "total: 3 trainings (3 to run), 10 cells (0 stored, 10 to compute); estimated cost unknown" in out
    assert not (tmp_path / "r").exists(), "plan created the results folder"


def test_randomized_model_plans_both_protocols(capsys, tmp_path):
    grid = write(tmp_path, grid=G + 'defenses = ["none", "pni"]\n'
                              'attacks = ["pgd-10"]\npresets = ["standard"]')
    code, out, _err = run_cli(capsys, "grid", "plan", str(grid), "--results-dir", str(tmp_path / "r"))
    assert code == 0
    assert "C2 resnet18+pni on d12, seed 0 <- T2 (randomized" in out
    c2 = out[out.index("C2 resnet18+pni"):]
    assert "C2.1 pgd-10 (standard)             2 cells" in c2  # single-draw and eot protocols
    assert "C1.1 pgd-10 (standard)             1 cell " in out


def test_plan_reads_stored_cells_and_estimates_from_similar_timings(capsys, tmp_path):
    """A trained checkpoint in the zoo and stored rows: the plan counts what is stored, and prices
    the rest from stored rows of the same model, attack, preset and size (per test point)."""
    from robustbench_med.grid.plan import build_plan
    from robustbench_med.grid.spec import load_spec
    from robustbench_med.store import ResultKey, ResultStore
    from robustbench_med.versions import code_version

    grid = write(tmp_path, grid=G + 'attacks = ["pgd-10", "bim-10"]\n'
                              'presets = ["paper"]')
    results = tmp_path / "r"
    training = build_plan(load_spec(grid), results / "zoo").trainings[0]
    training.path.parent.mkdir(parents=True)
    training.path.write_bytes(b"weights")  # what the plan reads is the sidecar's identity
    training.path.with_suffix(".json").write_text('{"sha256": "abc", "metrics": {"n_test": 20}}')
    store = ResultStore(results / "results.sqlite")

    def put(attack: str, sha: str, n: int, wall: float, dataset: str = "d12") -> None:
        key = ResultKey("resnet18", "", dataset, dataset, attack, "-" if attack == "clean" else "paper",
                        0.0 if attack == "clean" else 4 / 255, "deterministic", 0, f"test[{n}]", sha,
                        code_version())
        store.put(key, flags=np.ones(n, bool), n=n, accuracy=1.0, image_size=28, wall_s=wall)

    put("clean", "abc", 20, 0.5)  # this checkpoint's clean row: stored
    put("pgd-10", "other", 40, 8.0)  # another checkpoint's pgd-10 on 40 points: 0.2 s a point
    put("pgd-10", "older", 10, 3.0, dataset="d14")  # another dataset: not used while d12 has one
    code, out, err = run_cli(capsys, "grid", "plan", str(grid), "--results-dir", str(results))
    assert code == 0, err
    assert "T1 model resnet18 on d12 at 28px, seed 0 (for C1): in the zoo" in out
    assert "clean rows                         1 cell    stored" in out
    assert "C1.1 pgd-10 (paper)                1 cell    est. 4.0 s" in out  # 0.2 s x 20 points
    assert "C1.2 bim-10 (paper)                1 cell    est. unknown" in out
    assert "4 cells (1 stored, 3 to compute); estimated cost 4.0 s + unknown for 2 items" in out


def test_published_grid_files_are_valid():
    """Every grid file under leaderboards/grids/ reads and plans (the README runs small.toml)."""
    from robustbench_med.grid.plan import build_plan
    from robustbench_med.grid.spec import load_spec

    files = sorted((Path(__file__).resolve().parents[1] / "leaderboards" / "grids").glob("*.toml"))
    assert any(f.name == "small.toml" for f in files)
    for path in files:
        plan = build_plan(load_spec(path), Path("/nonexistent-zoo"))
        assert plan.trainings and all(t.units for t in plan.targets), path


def test_tasks_larger_than_the_cluster_are_refused():
    """A task asking for more CPUs or GPUs than the Ray cluster has would wait forever."""
    from robustbench_med.errors import BadInputError
    from robustbench_med.grid.ray_executor import check_feasible
    from robustbench_med.grid.run import RunOptions

    check_feasible({"CPU": 2.0}, RunOptions(results_dir=Path("r"), executor="ray", workers=2))
    with pytest.raises(BadInputError, match="--gpus-per-task 1 asks for more than the Ray cluster's 0 GPUs"):
        check_feasible({"CPU": 2.0}, RunOptions(results_dir=Path("r"), executor="ray", gpus_per_task=1))
    with pytest.raises(BadInputError, match="--cpus-per-task 4 asks for more"):
        check_feasible({"CPU": 2.0}, RunOptions(results_dir=Path("r"), executor="ray", cpus_per_task=4))


def test_blocks_share_checkpoints_and_keep_attacks_per_preset_in_order(capsys, tmp_path):
    """Two blocks naming one checkpoint with the same test settings are one target whose units are
    each block's attacks under each of its presets, in order; other test settings make a second
    target on the same training."""
    from robustbench_med.grid.plan import build_plan, runner_order
    from robustbench_med.grid.spec import load_spec

    grid = write(tmp_path, '[[block]]\nname = "v2"\n'
                 'attacks = { paper = ["pgd-10", "mim-10"], standard = ["pgd-20"] }\n'
                 '\n[[block]]\nattacks = ["bim-10"]\npresets = ["paper"]\n'
                 '\n[[block]]\nname = "fewer points"\nattacks = ["pgd-10"]\npresets = ["code"]\n'
                 "[block.evaluation]\nn_test = 10\n", grid=G)
    code, out, err = run_cli(capsys, "grid", "plan", str(grid), "--results-dir", str(tmp_path / "r"))
    assert code == 0, err
    assert "block 1 (v2): 1 checkpoint to evaluate" in out
    assert "attacks pgd-10,mim-10 (paper); pgd-20 (standard)" in out
    assert "T1 model resnet18 on d12 at 28px, seed 0 (for C1, C2): to train" in out
    assert [line.split()[1:3] for line in out.splitlines() if line.strip().startswith("C1.")] == [
        ["pgd-10", "(paper)"], ["mim-10", "(paper)"], ["pgd-20", "(standard)"], ["bim-10", "(paper)"],
        ["probe", "+"]]
    assert "C2 resnet18 on d12, seed 0 <- T1 (deterministic; 1 task; subset test[10])" in out
    plan = build_plan(load_spec(grid), tmp_path / "zoo")
    assert list(plan.targets[0].evaluation.groups) == [
        ("pgd-10,mim-10", ("paper",)), ("pgd-20", ("standard",)), ("bim-10", ("paper",))]
    # the checks read rows in the order one `medrobust run` per group stores them: the large-eps
    # probe (PGD-20, standard, eps 0.3) after the first group's cells, before the second group's
    order = sorted(runner_order(plan.targets[0], False).items(), key=lambda item: item[1])
    assert [(c.attack, c.preset, round(c.eps * 255)) for c, _ in order] == [
        ("clean", "-", 0), ("pgd-10", "paper", 4), ("mim-10", "paper", 4), ("pgd-20", "standard", 76),
        ("pgd-20", "standard", 4), ("bim-10", "paper", 4)]


def test_plan_names_cells_by_the_square_budget_as_the_runner_stores_them(capsys, tmp_path):
    """square_queries = 500: Square's unit is square-500 and AutoAttack's cells autoattack[square-500]
    (the runner's names), so rows stored under those names count as stored; rows of the default
    budget (square, autoattack) belong to other cells and are not counted."""
    from robustbench_med.grid.plan import build_plan, unit_cells
    from robustbench_med.grid.spec import load_spec
    from robustbench_med.store import ResultKey, ResultStore
    from robustbench_med.versions import code_version

    grid = write(tmp_path, grid=G + 'attacks = ["square", "autoattack"]\npresets = ["standard"]',
                 evaluation="n_test = 20\nsquare_queries = 500\nchecks = false")
    results = tmp_path / "r"
    training = build_plan(load_spec(grid), results / "zoo").trainings[0]
    training.path.parent.mkdir(parents=True)
    training.path.write_bytes(b"weights")
    training.path.with_suffix(".json").write_text('{"sha256": "abc", "metrics": {"n_test": 20}}')
    store = ResultStore(results / "results.sqlite")
    for attack in ("clean", "square-500", "autoattack"):  # autoattack: the default budget's cell
        key = ResultKey("resnet18", "", "d12", "d12", attack, "-" if attack == "clean" else "standard",
                        0.0 if attack == "clean" else 4 / 255, "deterministic", 0, "test[20]", "abc",
                        code_version())
        store.put(key, flags=np.ones(20, bool), n=20, accuracy=1.0, image_size=28, wall_s=1.0)
    code, out, err = run_cli(capsys, "grid", "plan", str(grid), "--results-dir", str(results))
    assert code == 0, err
    units = [line.split() for line in out.splitlines() if line.strip().startswith("C1.")]
    assert [u[1] for u in units] == ["square-500", "autoattack[square-500]"]  # the stored names
    assert units[0][-1] == "stored" and units[1][-1] != "stored"
    assert "3 cells (2 stored, 1 to compute)" in out
    plan = build_plan(load_spec(grid), results / "zoo")
    target = plan.targets[0]
    assert [c.attack for u in target.units for c in unit_cells(target, u, False)] == [
        "square-500", "autoattack[square-500]"]


def test_plan_shows_each_unit_under_the_name_its_rows_are_stored_under(capsys, tmp_path):
    """A Square budget and a surrogate other than the defaults name the cells (autoattack[square-100],
    aa-surrogate[resnet18][square-100]); the plan's unit lines show those stored names, not the
    bare attack, as square-surrogate-100 always did."""
    from robustbench_med.grid.plan import build_plan, unit_cells
    from robustbench_med.grid.spec import load_spec

    grid = write(tmp_path, grid=G + 'attacks = ["autoattack", "aa-surrogate", "square-surrogate"]\n'
                 'presets = ["standard"]',
                 evaluation='n_test = 20\nsquare_queries = 100\nsurrogate = "resnet18"\nchecks = false')
    code, out, err = run_cli(capsys, "grid", "plan", str(grid), "--results-dir", str(tmp_path / "r"))
    assert code == 0, err
    expected = ["autoattack[square-100]", "aa-surrogate[resnet18][square-100]",
                "square-surrogate-100[resnet18]"]
    units = [line.split() for line in out.splitlines() if line.strip().startswith("C1.")]
    assert [u[1] for u in units] == expected, out
    assert all(u[2] == "(standard)" for u in units)
    unit_lines = [line for line in out.splitlines() if line.strip().startswith(("C1.", "clean rows"))]
    assert len({line.index(" cell") for line in unit_lines}) == 1, out  # the cell counts line up
    target = build_plan(load_spec(grid), tmp_path / "r" / "zoo").targets[0]
    assert [u.attack for u in target.units] == ["autoattack", "aa-surrogate", "square-surrogate-100"]
    # the label and the cells the plan counts as stored agree on the name
    assert [{c.attack for c in unit_cells(target, u, False)} for u in target.units] == [{n} for n in expected]


def test_ray_units_share_the_results_folders_transfer_cache(tmp_path):
    """A unit runs against a scratch store, so its transfer cache cannot be the scratch store's
    (it would always miss): every task is told the results folder's, the one ``medrobust run`` and
    the local executor use beside the results store."""
    from robustbench_med.evaluation.transfer_cache import TransferCache
    from robustbench_med.grid.options import RunOptions
    from robustbench_med.grid.spec import load_spec
    from robustbench_med.store import STORE_NAME

    results = tmp_path / "r"
    where = RunOptions(results_dir=results, executor="ray").where(load_spec(write(tmp_path)))
    assert where.transfer_cache is not None
    assert Path(where.transfer_cache) == TransferCache.beside(results.resolve() / STORE_NAME).folder
    assert Path(where.transfer_cache).is_absolute()  # workers run elsewhere
