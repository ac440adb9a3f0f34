"""``medrobust run``: attack a model (trained first when the zoo has none), store and print its cells."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from robustbench_med.cli.common import (
    DEFAULT_RESULTS,
    AdvEps,
    Adversarial,
    AdvStep,
    AdvSteps,
    Amp,
    AttackBatch,
    Augment,
    BatchSize,
    BnSettle,
    Checks,
    DataRoot,
    Dataset,
    Defense,
    DefenseOptions,
    Device,
    Download,
    Draws,
    Epochs,
    ImageSize,
    Model,
    NTest,
    NTrain,
    NVal,
    Options,
    Quiet,
    Recipe,
    ResultsDir,
    Seed,
    SquareQueries,
    Surrogate,
    check_folder,
    check_square_queries,
    out,
    render_event,
)
from robustbench_med.errors import BadInputError


def run(model: Model = None, dataset: Dataset = None, defense: Defense = None,
        attacks: Annotated[str, typer.Option("--attacks", "-a", help="Comma-separated attacks, or all.")] = "pgd-10",
        eps: Annotated[str | None, typer.Option(help="eps list (4/255,8/255) or range 0.01:0.1:10; default: the preset's 4/255.")] = None,
        preset: Annotated[str, typer.Option(help="Comma-separated presets: paper, standard, code.")] = "paper,standard",
        checkpoint: Annotated[Path | None, typer.Option(help="Evaluate this checkpoint file instead of the zoo's.")] = None,
        image_size: ImageSize = 128, epochs: Epochs = 200, batch_size: BatchSize = 32,
        recipe: Recipe = "paper", augment: Augment = True, n_train: NTrain = None,
        n_val: NVal = None, n_test: NTest = None, seed: Seed = 0, data_root: DataRoot = None,
        download: Download = False, results_dir: ResultsDir = DEFAULT_RESULTS, device: Device = None,
        attack_batch_size: AttackBatch = 128, draws: Draws = 10,
        model_option: Options = None, defense_option: DefenseOptions = None,
        adversarial: Adversarial = False, adv_eps: AdvEps = "4/255", adv_steps: AdvSteps = 10,
        adv_step: AdvStep = "1/255", bn_settle: BnSettle = "recalibrate", amp: Amp = "off", surrogate: Surrogate = "resnet101", checks: Checks = True,
        square_queries: SquareQueries = 5000, quiet: Quiet = False) -> None:
    """Attack a model (training it first if the zoo has none) and store one row per cell."""
    from robustbench_med.attacks.eps import parse_eps_list
    from robustbench_med.model_request import model_request
    from robustbench_med.models.zoo import load_checkpoint

    check_square_queries(square_queries)
    if checkpoint is not None:
        loaded = load_checkpoint(checkpoint)
        model = model or loaded.config.model
        dataset = dataset or loaded.config.dataset
        image_size = loaded.config.image_size
    request = model_request(model, dataset, defense=defense, image_size=image_size, epochs=epochs,
                            batch_size=batch_size, recipe=recipe, augment=augment, n_train=n_train,
                            n_val=n_val, seed=seed, model_option=model_option,
                            defense_option=defense_option, adversarial=adversarial,
                            adv_eps=adv_eps, adv_steps=adv_steps, adv_step=adv_step, bn_settle=bn_settle,
                            amp=amp)
    run_and_report(request, attacks=attacks, presets=preset, eps=tuple(parse_eps_list(eps)) if eps else (),
                   n_test=n_test, data_root=data_root, download=download, results_dir=results_dir,
                   checkpoint=checkpoint, device=device, attack_batch_size=attack_batch_size,
                   draws=draws, seed=seed, quiet=quiet, surrogate=surrogate, checks=checks,
                   square_queries=square_queries)


def run_and_report(request: Any, *, attacks: str, presets: str, eps: tuple[float, ...],
                   n_test: int | None, data_root: Path | None, download: bool, results_dir: Path,
                   checkpoint: Path | None, device: str | None, attack_batch_size: int, draws: int,
                   seed: int, quiet: bool, surrogate: str, checks: bool,
                   square_queries: int = 5000) -> Any:
    """Run one model's grid, print its table, and refresh the leaderboard files of the store."""
    from robustbench_med.attacks.spec import PRESETS
    from robustbench_med.model_request import check_count
    from robustbench_med.pipeline import RunConfig, benchmark
    from robustbench_med.registry import MODELS
    from robustbench_med.report.leaderboard import write_leaderboard
    from robustbench_med.store import ResultStore

    check_folder("--results-dir", results_dir, inner="zoo")
    check_count("--n-test", n_test)
    check_square_queries(square_queries)
    preset_names = tuple(p.strip() for p in presets.split(",") if p.strip())
    if not preset_names:
        raise BadInputError(f"--preset '{presets}' names no preset (allowed: {', '.join(PRESETS)}; "
                            "several comma-separated)")
    if draws < 1:
        raise BadInputError(f"--draws must be at least 1, got {draws}")
    if attack_batch_size < 1:
        raise BadInputError(f"--attack-batch-size must be at least 1, got {attack_batch_size}")
    cfg = RunConfig(request=request, attacks=attacks, presets=preset_names, eps=eps,
                    n_test=n_test, data_root=data_root, download=download, results_dir=results_dir,
                    checkpoint=checkpoint, device=device, batch_size=attack_batch_size, draws=draws,
                    seed=seed, progress=not quiet, surrogate=MODELS.resolve(surrogate), checks=checks,
                    square_queries=square_queries)
    report = benchmark(cfg, render_event)
    out.print(cells_table(report))
    paths = write_leaderboard(ResultStore(report.store_path), results_dir)
    out.print(f"store {report.store_path}\nleaderboard {paths[1]}")
    return report


def cells_table(report: Any) -> Table:
    """One line per cell of a finished run, with its interval, size, time and whether it is new."""
    from robustbench_med.attacks.eps import format_eps

    ckpt = report.checkpoint
    title = (f"{ckpt.config.label} on {ckpt.config.dataset} "
             f"({'randomized' if report.randomized else 'deterministic'}; checkpoint "
             f"{ckpt.sha256[:12]})")
    table = Table(title=title)
    for col in ("task", "attack", "preset", "eps", "protocol", "accuracy", "95% CI", "n",
                "attacked", "time", "status"):
        table.add_column(col, justify="right" if col in ("accuracy", "n", "attacked", "time") else "left")
    for c in report.cells:
        k = c.key
        table.add_row(k.task, k.attack, k.preset, format_eps(k.eps) if k.eps else "-", k.protocol,
                      f"{100 * c.accuracy:.2f}%", f"{100 * c.ci_low:.1f}-{100 * c.ci_high:.1f}",
                      str(c.n), str(c.n_attacked), f"{c.wall_s:.1f}s",
                      "stored earlier" if c.cached else "new")
    return table
