"""``medrobust sweep``: accuracy against eps for one attack, stored and plotted."""

from __future__ import annotations

from typing import Annotated

import typer

from robustbench_med.cli.common import (
    DEFAULT_RESULTS,
    AdvEps,
    Adversarial,
    AdvStep,
    AdvSteps,
    AttackBatch,
    Augment,
    BatchSize,
    BnSettle,
    Checks,
    DataRoot,
    Dataset,
    DefenseOptions,
    Device,
    Download,
    Draws,
    Epochs,
    ImageSize,
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
    check_square_queries,
    out,
)
from robustbench_med.cli.run import run_and_report


def sweep(model: Annotated[str, typer.Option("--model", "-m", help="Model, or a comma-separated list (one line each).")],
          dataset: Dataset = None,
          attack: Annotated[str, typer.Option(help="The attack swept over eps (paper Fig. 6: pgd-100).")] = "pgd-100",
          eps: Annotated[str, typer.Option(help="Range start:stop:count or a list (paper: 0.01:0.1:10).")] = "0.01:0.1:10",
          preset: Annotated[str, typer.Option(help="Preset of the swept attack: paper, standard or code.")] = "paper",
          defense: Annotated[str | None, typer.Option(help="Defense, or a comma-separated list; 'none' for the plain model.")] = None,
          image_size: ImageSize = 128, epochs: Epochs = 200, batch_size: BatchSize = 32,
          recipe: Recipe = "paper", augment: Augment = True, n_train: NTrain = None,
          n_val: NVal = None, n_test: NTest = None, seed: Seed = 0, data_root: DataRoot = None,
          download: Download = False, results_dir: ResultsDir = DEFAULT_RESULTS, device: Device = None,
          attack_batch_size: AttackBatch = 128, draws: Draws = 10,
          adversarial: Adversarial = False, adv_eps: AdvEps = "4/255", adv_steps: AdvSteps = 10,
          adv_step: AdvStep = "1/255", bn_settle: BnSettle = "recalibrate", model_option: Options = None,
          defense_option: DefenseOptions = None, surrogate: Surrogate = "resnet101", checks: Checks = True,
          square_queries: SquareQueries = 5000, quiet: Quiet = False) -> None:
    """Accuracy against eps for one attack (eps ascending; survivors only), stored and plotted.

    Model and defense options apply to every model and defense of the sweep (each one checks them)."""
    from robustbench_med.attacks.eps import parse_eps_list
    from robustbench_med.attacks.spec import parse_attack
    from robustbench_med.evaluation.stored_names import stored_attack_name
    from robustbench_med.model_request import model_request
    from robustbench_med.registry import MODELS
    from robustbench_med.report.leaderboard import long_frame
    from robustbench_med.report.plots import plot_sweep
    from robustbench_med.report.sweep import sweep_rows
    from robustbench_med.store import ResultStore

    check_square_queries(square_queries)
    eps_values = tuple(parse_eps_list(eps))
    request_attack = parse_attack(attack)
    defenses = [d.strip() for d in (defense or "none").split(",") if d.strip()]
    reports = []
    for model_name in [m.strip() for m in model.split(",") if m.strip()]:
        for defense_name in defenses:
            request = model_request(model_name, dataset, defense=None if defense_name == "none" else defense_name,
                                    image_size=image_size, epochs=epochs, batch_size=batch_size,
                                    recipe=recipe, augment=augment, n_train=n_train, n_val=n_val,
                                    seed=seed, model_option=model_option,
                                    defense_option=defense_option if defense_name != "none" else None,
                                    adversarial=adversarial, adv_eps=adv_eps, adv_steps=adv_steps,
                                    adv_step=adv_step, bn_settle=bn_settle)
            reports.append(run_and_report(
                request, attacks=request_attack.name, presets=preset, eps=eps_values, n_test=n_test,
                data_root=data_root, download=download, results_dir=results_dir, checkpoint=None,
                device=device, attack_batch_size=attack_batch_size, draws=draws, seed=seed,
                quiet=quiet, surrogate=surrogate, checks=checks, square_queries=square_queries))
    frame = sweep_rows(long_frame(ResultStore(reports[0].store_path)),
                       {r.checkpoint.sha256 for r in reports}, eps_values)
    stored = stored_attack_name(request_attack, MODELS.resolve(surrogate), square_queries)
    for task in sorted({c.key.task for r in reports for c in r.cells}):
        for path in plot_sweep(frame, task, stored, preset, results_dir / "plots"):
            out.print(f"plot {path}")
