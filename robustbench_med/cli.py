"""The ``medrobust`` command line: thin; it parses, calls the library, prints with rich.

Every user error ends as one line on stderr and exit code 2 (see ``main``).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.exceptions import Abort, Exit, TyperException

from robustbench_med.cli_grid import grid_app
from robustbench_med.errors import BadInputError, MedrobustError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Adversarial-robustness benchmarking for medical image classifiers.")
leaderboard_app = typer.Typer(no_args_is_help=True, help="Show or publish leaderboard tables.")
app.add_typer(leaderboard_app, name="leaderboard")
app.add_typer(grid_app, name="grid")
# Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns; give them room.
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


def _print_version(value: bool) -> None:
    if value:
        from robustbench_med import __version__

        typer.echo(f"medrobust {__version__}")
        raise Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                   help="Print the version and exit.")] = False) -> None:
    pass

# -- shared options ----------------------------------------------------------
Model = Annotated[str | None, typer.Option("--model", "-m", help="Registered model (medrobust list models).")]
Dataset = Annotated[str | None, typer.Option("--dataset", "-d", help="Dataset id (d12), MedMNIST flag, or a pair d12+d14.")]
Defense = Annotated[str | None, typer.Option(help="Registered defense wrapped around the model.")]
ImageSize = Annotated[int, typer.Option(help="Side of the square input, in pixels (paper: 128).")]
Epochs = Annotated[int, typer.Option(help="Training epochs (paper: 200).")]
BatchSize = Annotated[int, typer.Option(help="Training batch size.")]
Recipe = Annotated[str, typer.Option(help="Training recipe: paper (SGD 1e-3), code (Adam 1e-4), fast (SGD 1e-2, for short CPU budgets) or medmnist (MedMNIST v2's benchmark: Adam 1e-3, x0.1 at 50% and 75% of the epochs; use --batch-size 128).")]
Augment = Annotated[bool, typer.Option("--augment/--no-augment", help="The paper's 4x training augmentation.")]
NTrain = Annotated[int | None, typer.Option(help="Use a fixed subset of this many training images.")]
NVal = Annotated[int | None, typer.Option(help="Use a fixed subset of this many validation images.")]
NTest = Annotated[int | None, typer.Option(help="Evaluate a fixed subset of this many test images.")]
Seed = Annotated[int, typer.Option(help="Training seed (and attack seed).")]
DataRoot = Annotated[Path | None, typer.Option(help="Data root (then $MEDROBUST_DATA, then ~/.cache/medrobust/data).")]
Download = Annotated[bool, typer.Option("--download", help="Download a missing MedMNIST file.")]
ResultsDir = Annotated[Path, typer.Option(help="Folder of the results store, zoo and leaderboard.")]
Device = Annotated[str | None, typer.Option(help="auto (CUDA when present), cpu or cuda.")]
Options = Annotated[list[str] | None, typer.Option(help="key=value option for the model (repeatable).")]
DefenseOptions = Annotated[list[str] | None, typer.Option(help="key=value option for the defense (repeatable).")]
Adversarial = Annotated[bool, typer.Option("--adversarial", help="PGD adversarial training (paper Alg. 2).")]
AdvEps = Annotated[str, typer.Option(help="Adversarial-training eps (4/255 or 0.0157).")]
AdvSteps = Annotated[int, typer.Option(help="Adversarial-training PGD steps.")]
AdvStep = Annotated[str, typer.Option(help="Adversarial-training PGD step size.")]
BnSettle = Annotated[str, typer.Option(help="BatchNorm statistics before each validation pass: recalibrate (re-estimated on 512 training images through the training loss) or none.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]
Surrogate = Annotated[str, typer.Option(help="Surrogate model of the transfer attacks (paper: resnet101).")]
Checks = Annotated[bool, typer.Option("--checks/--no-checks", help="Run the large-eps probe and the gradient-masking checks.")]
AttackBatch = Annotated[int, typer.Option(help="Batch size for attacks (halves on GPU OOM).")]
Draws = Annotated[int, typer.Option(help="Fresh draws scoring a randomized model.")]

DEFAULT_RESULTS = Path("medrobust-results")


def parse_options(items: list[str] | None, what: str) -> dict[str, Any]:
    """``["stem=cifar", "ratio=0.25"]`` -> ``{"stem": "cifar", "ratio": 0.25}``."""
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


def check_folder(flag: str, folder: Path, *, inner: str = "") -> None:
    """Refuse a folder option at or under a file (or whose ``inner`` folder is a file) before any
    data is read or a model trained: the same mistake found after training would waste the run."""
    from robustbench_med.store import folder_problem

    problem = folder_problem(folder / inner if inner else folder)
    if problem is not None:
        raise BadInputError(f"{flag} {folder} cannot be used: {problem} (pass a folder, new or existing)")


def checked_options(model: str, defense: str | None, model_option: list[str] | None,
                    defense_option: list[str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Model and defense options by name and value type, before any data, message or training."""
    from robustbench_med.factory_options import check_options
    from robustbench_med.registry import DEFENSES, MODELS

    model_options = check_options("model", model, MODELS.get(model), 1,
                                  parse_options(model_option, "--model-option"))
    defense_options = parse_options(defense_option, "--defense-option")
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
                  adv_steps: int, adv_step: str, bn_settle: str = "recalibrate"):
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
                        adv_step=parse_eps(adv_step), adv_steps=adv_steps, bn_settle=bn_settle)
    return ModelRequest(model=model, dataset=dataset, image_size=image_size, train=train,
                        defense=defense, model_options=model_options, defense_options=defense_options,
                        augment=augment, n_train=n_train, n_val=n_val)


# -- list ----------------------------------------------------------------------
# Each kind's table: (header, catalog field); lists are joined, booleans read yes/no, null reads -.
LIST_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "datasets": (("id", "name"), ("name", "title"), ("modality", "modality"), ("task", "task"),
                 ("classes", "classes"), ("samples", "samples"), ("split", "split"), ("loader", "loader")),
    "models": (("name", "name"), ("aliases", "aliases"), ("family", "family"), ("randomized", "randomized"),
               ("reference", "reference"), ("from", "from")),
    "defenses": (("name", "name"), ("randomized", "randomized"), ("reference", "reference"),
                 ("from", "from")),
    "attacks": (("names", "names"), ("box", "box"), ("presets", "presets"), ("cost", "cost"),
                ("library", "library"), ("what", "description")),
}
LIST_TITLES = {"datasets": "datasets (paper Table 7)", "attacks": "attacks (L-inf; any <family>-K picks K iterations)"}
OPTION_FLAGS = {"models": "--model-option", "defenses": "--defense-option"}


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "-" if value is None else str(value)


@app.command("list")
def list_entries(kind: Annotated[str | None, typer.Argument(help="datasets, models, defenses or attacks")] = None,
                 pattern: Annotated[str | None, typer.Argument(help="Shell pattern on names and aliases, as timm's: 'mail*', 'd1?'.")] = None,
                 family: Annotated[str | None, typer.Option(help="Models of one family: backbone, mail, robust_mail.")] = None,
                 randomized: Annotated[bool | None, typer.Option("--randomized/--deterministic", help="Only the models or defenses that draw randomness at inference (or only those that do not).")] = None,
                 grep: Annotated[str | None, typer.Option(help="Only entries holding this text in any field (any case).")] = None,
                 details: Annotated[str | None, typer.Option(metavar="NAME", help="Everything about one entry: its options with types and defaults.")] = None,
                 as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False) -> None:
    """List the registered datasets, models, defenses or attacks (read without importing torch)."""
    from robustbench_med import catalog

    if kind is None:
        raise BadInputError(f"medrobust list needs what to list (allowed: {', '.join(catalog.KINDS)}), "
                            "e.g. medrobust list models")
    if details is not None:
        if pattern or family or randomized is not None or grep:
            raise BadInputError("--details shows one entry; drop PATTERN, --family, "
                                "--randomized/--deterministic and --grep")
        record = catalog.detail(kind, details)
        if as_json:
            typer.echo(json.dumps(record, indent=1, ensure_ascii=False))
        else:
            _print_details(catalog.kind_of(kind), record)
        return
    listing = catalog.select(kind, pattern, family=family, randomized=randomized, grep=grep)
    if listing.note:
        err.print(f"note: {listing.note}", markup=False, highlight=False, soft_wrap=True)
    if not listing.rows:
        asked = " and ".join(filter(None, [pattern and f"'{pattern}'", family and f"family {family}",
                                           randomized is not None and ("randomized" if randomized
                                                                       else "deterministic"),
                                           grep and f"--grep {grep}"]))
        near = catalog.nearest_name(listing.kind, pattern) if pattern else None
        err.print(f"no {listing.kind} match {asked}" + (f"; did you mean '{near}'?" if near else "")
                  + " (PATTERN is a shell pattern such as 'mail*'; --grep finds text in any field)",
                  markup=False, highlight=False, soft_wrap=True)
    if as_json:
        typer.echo(json.dumps(listing.rows, indent=1, ensure_ascii=False))
        return
    if not listing.rows:
        return
    table = Table(title=LIST_TITLES.get(listing.kind, listing.kind))
    for header, _ in LIST_COLUMNS[listing.kind]:
        table.add_column(header)
    for row in listing.rows:
        table.add_row(*(_cell(row.get(field)) for _, field in LIST_COLUMNS[listing.kind]))
    out.print(table)


def _print_details(kind: str, record: dict[str, Any]) -> None:
    table = Table(title=f"{kind[:-1]} {record['name']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for field, value in record.items():
        if field != "options":
            table.add_row(field, _cell(value))
    out.print(table)
    if kind not in OPTION_FLAGS:
        return
    options = record.get("options", [])
    if not options:
        out.print("options: none")
        return
    table = Table(title=f"options ({OPTION_FLAGS[kind]} key=value)")
    for header in ("option", "type", "default"):
        table.add_column(header)
    for option in options:
        table.add_row(option["name"], option["type"],
                      "required" if option["required"] else json.dumps(option["default"]))
    out.print(table)


# -- train -------------------------------------------------------------------------
@app.command()
def train(model: Model = None, dataset: Dataset = None, defense: Defense = None,
          image_size: ImageSize = 128, epochs: Epochs = 200, batch_size: BatchSize = 32,
          recipe: Recipe = "paper", augment: Augment = True, n_train: NTrain = None,
          n_val: NVal = None, seed: Seed = 0, data_root: DataRoot = None, download: Download = False,
          results_dir: ResultsDir = DEFAULT_RESULTS, device: Device = None,
          model_option: Options = None, defense_option: DefenseOptions = None,
          adversarial: Adversarial = False, adv_eps: AdvEps = "4/255", adv_steps: AdvSteps = 10,
          adv_step: AdvStep = "1/255", bn_settle: BnSettle = "recalibrate", quiet: Quiet = False) -> None:
    """Train a model (the paper's recipe by default) and store it in the zoo."""
    from robustbench_med.data.loading import load_dataset
    from robustbench_med.device import resolve_device
    from robustbench_med.models.builder import check_buildable
    from robustbench_med.models.zoo import Zoo
    from robustbench_med.workflow import OneClassWarning, strategy_for, train_and_save

    check_folder("--results-dir", results_dir, inner="zoo")
    request = model_request(model, dataset, defense=defense, image_size=image_size, epochs=epochs,
                            batch_size=batch_size, recipe=recipe, augment=augment, n_train=n_train,
                            n_val=n_val, seed=seed, model_option=model_option,
                            defense_option=defense_option, adversarial=adversarial,
                            adv_eps=adv_eps, adv_steps=adv_steps, adv_step=adv_step, bn_settle=bn_settle)
    dev = resolve_device(device)
    data = load_dataset(request.dataset, data_root=data_root, image_size=image_size,
                        augment=augment, n_train=n_train, n_val=n_val, download=download)
    config = request.config()
    check_buildable(config.model, data.info, defense=config.defense, model_options=config.model_options,
                    defense_options=config.defense_options)
    strategy_for(request)  # refuse a defense's recipe options now, not after the training message
    err.print(f"training {config.label} on {request.dataset} ({len(data.train)} images "
              f"at {image_size}px, {epochs} epochs, recipe {recipe}) on {dev}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OneClassWarning)  # said below, in one line
        ckpt = train_and_save(request, data, Zoo(results_dir / "zoo"), dev, progress=not quiet)
    m = ckpt.metrics
    out.print(f"checkpoint {ckpt.path}\nval accuracy {m['val_accuracy']:.4f}, val AUC "
              f"{_fmt(m.get('val_auc'))} (epoch {m['best_epoch']}, kept by {m.get('selection')}), "
              f"test accuracy {m['test_accuracy']:.4f}, test AUC {_fmt(m.get('test_auc'))} "
              f"(n={m['n_test']}), sha256 {ckpt.sha256[:16]}")
    if m.get("one_class"):
        err.print("[yellow]warning: the kept model is right on one validation class only (a constant "
                  "predictor); train longer or with another recipe before reading robustness rows[/]")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


# -- run ---------------------------------------------------------------------------
@app.command()
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
        adv_step: AdvStep = "1/255", bn_settle: BnSettle = "recalibrate", surrogate: Surrogate = "resnet101", checks: Checks = True,
        quiet: Quiet = False) -> None:
    """Attack a model (training it first if the zoo has none) and store one row per cell."""
    from robustbench_med.attacks.eps import parse_eps_list
    from robustbench_med.models.zoo import load_checkpoint

    if checkpoint is not None:
        loaded = load_checkpoint(checkpoint)
        model = model or loaded.config.model
        dataset = dataset or loaded.config.dataset
        image_size = loaded.config.image_size
    request = model_request(model, dataset, defense=defense, image_size=image_size, epochs=epochs,
                            batch_size=batch_size, recipe=recipe, augment=augment, n_train=n_train,
                            n_val=n_val, seed=seed, model_option=model_option,
                            defense_option=defense_option, adversarial=adversarial,
                            adv_eps=adv_eps, adv_steps=adv_steps, adv_step=adv_step, bn_settle=bn_settle)
    _run_and_report(request, attacks=attacks, presets=preset, eps=tuple(parse_eps_list(eps)) if eps else (),
                    n_test=n_test, data_root=data_root, download=download, results_dir=results_dir,
                    checkpoint=checkpoint, device=device, attack_batch_size=attack_batch_size,
                    draws=draws, seed=seed, quiet=quiet, surrogate=surrogate, checks=checks)


def _run_and_report(request: Any, *, attacks: str, presets: str, eps: tuple[float, ...],
                    n_test: int | None, data_root: Path | None, download: bool, results_dir: Path,
                    checkpoint: Path | None, device: str | None, attack_batch_size: int, draws: int,
                    seed: int, quiet: bool, surrogate: str, checks: bool) -> Any:
    """Run one model's grid, print its table, and refresh the leaderboard files of the store."""
    from robustbench_med.attacks.spec import PRESETS
    from robustbench_med.pipeline import RunConfig, benchmark
    from robustbench_med.registry import MODELS
    from robustbench_med.report.leaderboard import write_leaderboard
    from robustbench_med.store import ResultStore

    check_folder("--results-dir", results_dir, inner="zoo")
    check_count("--n-test", n_test)
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
                    seed=seed, progress=not quiet, surrogate=MODELS.resolve(surrogate), checks=checks)
    report = benchmark(cfg, render_event)
    out.print(_cells_table(report))
    paths = write_leaderboard(ResultStore(report.store_path), results_dir)
    out.print(f"store {report.store_path}\nleaderboard {paths[1]}")
    return report


STATUS_COLOURS = {"pass": "green", "fail": "red", "inconclusive": "yellow"}


def render_event(event: Any) -> None:
    """Show one library event on stderr: details dim, warnings yellow, checks by their verdict."""
    style = {"detail": "dim", "warning": "yellow"}.get(event.level)
    if event.kind == "check" and event.data is not None:
        style = STATUS_COLOURS.get(event.data.status, "dim")
    err.print(event.message, style=style, markup=False, highlight=False)


def _cells_table(report: Any) -> Table:
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


# -- info --------------------------------------------------------------------------
MULTIMODAL_FAMILIES = ("mail", "robust_mail")


@app.command()
def info(model: Annotated[str, typer.Argument(help="Registered model name (medrobust list models).")],
         dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="Take channels and classes from this dataset (or pair d12+d14).")] = None,
         classes: Annotated[str | None, typer.Option(help="Classes per modality, e.g. 5,7 (default: the paper's configuration).")] = None,
         channels: Annotated[int, typer.Option(help="Input channels (default 3, as the paper).")] = 3,
         image_size: ImageSize = 128, model_option: Options = None) -> None:
    """Parameters and GFLOPs of a model at an input size (default: the paper's configuration)."""
    from robustbench_med.data.loading import dataset_spec
    from robustbench_med.data.spec import DataInfo, TaskInfo
    from robustbench_med.models.profile import profile
    from robustbench_med.registry import MODELS
    from robustbench_med.report.paper_claims import SIZES

    name = MODELS.resolve(model)
    multimodal = MODELS.entry(name).meta.get("family") in MULTIMODAL_FAMILIES
    if dataset is not None:
        specs = [dataset_spec(part) for part in dataset.split("+")]
        tasks = tuple(TaskInfo(s.id, s.n_classes or 0) for s in specs)
        channels = max(s.channels for s in specs)
        setting = f"{dataset} ({channels} channels)"
    else:
        default = "5,7" if multimodal else "2"  # the official code: SIPaKMeD (5) + HAM10000 (7)
        try:
            counts = [int(c) for c in (classes or default).split(",")]
        except ValueError:
            raise BadInputError(f"malformed --classes '{classes}' (expected integers, e.g. 5,7)") from None
        if any(c < 2 for c in counts):
            raise BadInputError(f"--classes needs at least 2 classes per task, got {classes}")
        tasks = tuple(TaskInfo(f"task{i + 1}", c) for i, c in enumerate(counts))
        setting = ("the paper's configuration: m = 2 modalities, heads 5 and 7 (SIPaKMeD + "
                   "HAM10000, as the official code)" if classes is None and multimodal
                   else f"classes {','.join(map(str, counts))}")
    data_info = DataInfo(dataset="info", channels=channels, image_size=image_size, tasks=tasks,
                         mean=tuple((0.5,) * channels for _ in tasks),
                         std=tuple((0.25,) * channels for _ in tasks))
    facts = profile(name, data_info, **parse_options(model_option, "--model-option"))
    table = Table(title=f"{name} at {image_size}x{image_size}x{channels}; {setting}")
    table.add_column("measure")
    table.add_column("ours", justify="right")
    table.add_column("paper", justify="right")
    claim = SIZES.get(name)
    table.add_row("parameters (M)", f"{facts['params'] / 1e6:.3f}", f"{claim[0]:.1f}" if claim else "")
    table.add_row("  with BN statistics (M, as Keras counts)", f"{facts['params_with_bn_stats'] / 1e6:.3f}", "")
    table.add_row("GFLOPs (1 multiply-add = 2 FLOPs)", f"{facts['gflops']:.3f}", f"{claim[1]:.2f}" if claim else "")
    table.add_row("GMACs", f"{facts['gmacs']:.3f}", "")
    table.add_row("other buffers (normalisation, DCT, random filters)", str(facts["buffers_other"]), "")
    out.print(table)
    out.print(f"[dim]counted: {facts['flop_convention']}[/]")


# -- sweep -------------------------------------------------------------------------
@app.command()
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
          quiet: Quiet = False) -> None:
    """Accuracy against eps for one attack (eps ascending; survivors only), stored and plotted.

    Model and defense options apply to every model and defense of the sweep (each one checks them)."""
    from robustbench_med.attacks.eps import parse_eps_list
    from robustbench_med.attacks.spec import parse_attack
    from robustbench_med.report.leaderboard import long_frame
    from robustbench_med.report.plots import plot_sweep
    from robustbench_med.store import ResultStore

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
            reports.append(_run_and_report(
                request, attacks=request_attack.name, presets=preset, eps=eps_values, n_test=n_test,
                data_root=data_root, download=download, results_dir=results_dir, checkpoint=None,
                device=device, attack_batch_size=attack_batch_size, draws=draws, seed=seed,
                quiet=quiet, surrogate=surrogate, checks=checks))
    frame = long_frame(ResultStore(reports[0].store_path))
    shas = {r.checkpoint.sha256 for r in reports}
    frame = frame[frame["checkpoint_sha"].isin(shas) & frame["eps"].round(10).isin(
        [round(e, 10) for e in eps_values])]
    for task in sorted({c.key.task for r in reports for c in r.cells}):
        for path in plot_sweep(frame, task, request_attack.name, preset, results_dir / "plots"):
            out.print(f"plot {path}")


# -- leaderboard -------------------------------------------------------------------
@leaderboard_app.command("show")
def leaderboard_show(results_dir: ResultsDir = DEFAULT_RESULTS) -> None:
    """Print the leaderboard of a results store."""
    from robustbench_med.report.leaderboard import long_frame, wide_frame

    store = _open_store(results_dir)
    frame = wide_frame(long_frame(store), checks=store.checks_frame())
    if frame.empty:
        raise MedrobustError(f"the store in {results_dir} has no results yet (run medrobust run first)")
    table = Table(title=f"leaderboard ({results_dir}), accuracy % at eps 4/255")
    for col in frame.columns:
        table.add_column(str(col))
    for _, row in frame.iterrows():
        table.add_row(*(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row))
    out.print(table)


@leaderboard_app.command("publish")
def leaderboard_publish(results_dir: ResultsDir = DEFAULT_RESULTS,
                        out_dir: Annotated[Path, typer.Option("--out", help="Where the entries and tables go.")] = Path("leaderboards"),
                        stem: Annotated[str, typer.Option(help="File name stem of the tables.")] = "leaderboard",
                        source: Annotated[str | None, typer.Option(help="Where a store from elsewhere came from (another machine, a lab): marked on the board.")] = None) -> None:
    """Write one entry file per evaluated model (<out>/entries/<dataset>/*.json), then render every other file from the entries."""
    from robustbench_med.report.entries import entries_from_store, write_entries
    from robustbench_med.report.render import render

    check_folder("--out", out_dir)
    store = _open_store(results_dir)
    if store.count() == 0:
        raise MedrobustError(f"the store in {results_dir} has no results yet (run medrobust run first)")
    if source is not None and not source.strip():
        raise BadInputError("--source must name where the results came from (e.g. 'lab X, A100')")
    entries = write_entries(entries_from_store(store, source), out_dir / "entries")
    out.print(f"wrote {len(entries)} entries under {out_dir / 'entries'}")
    for path in render(out_dir / "entries", out_dir, stem=stem):
        out.print(f"wrote {path}")


EntriesDir = Annotated[Path, typer.Argument(help="Folder of entry files (<folder>/<dataset>/*.json), e.g. leaderboards/entries.")]


@leaderboard_app.command("render")
def leaderboard_render(entries_dir: EntriesDir,
                       out_dir: Annotated[Path, typer.Option("--out", help="Where the rendered files go.")],
                       fmt: Annotated[str, typer.Option("--format", help="site (CSV, Markdown, SVG sweeps, HTML), latex (booktabs tables) or all.")] = "site",
                       stem: Annotated[str, typer.Option(help="File name stem of the tables.")] = "leaderboard",
                       screenshot: Annotated[bool, typer.Option("--screenshot", help="Also save <out>/board.png of index.html (headless Chromium).")] = False) -> None:
    """Rebuild the published files from entry files alone (no store): byte for byte the same for the same entries."""
    from robustbench_med.report.render import FORMATS, render

    if fmt not in FORMATS:
        raise BadInputError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    check_folder("--out", out_dir)
    for path in render(entries_dir, out_dir, fmt=fmt, stem=stem, screenshot=screenshot):
        out.print(f"wrote {path}")


@leaderboard_app.command("import-csv")
def leaderboard_import_csv(csv: Annotated[Path, typer.Argument(help="A published long leaderboard CSV (leaderboard.csv).")],
                           checks: Annotated[Path | None, typer.Option(help="Its checks CSV (default: leaderboard_checks.csv beside it, when there).")] = None,
                           out_dir: Annotated[Path, typer.Option("--out", help="Folder of entry files to write.")] = Path("leaderboards/entries")) -> None:
    """Turn a leaderboard CSV published before entry files existed into entry files (no flags, old check evidence)."""
    from robustbench_med.report.csv_import import entries_from_csv
    from robustbench_med.report.entries import write_entries

    if not csv.is_file():
        raise BadInputError(f"no CSV file at {csv}")
    beside = csv.with_name(csv.stem + "_checks.csv")
    checks = checks if checks is not None else beside if beside.is_file() else None
    if checks is not None and not checks.is_file():
        raise BadInputError(f"--checks {checks}: no such file")
    check_folder("--out", out_dir)
    paths = write_entries(entries_from_csv(csv, checks), out_dir)
    out.print(f"wrote {len(paths)} entries under {out_dir}" + (f" (checks from {checks})" if checks else " (no checks)"))


BoardPath = Annotated[Path, typer.Argument(help="A folder of entry files, a results folder or a results.sqlite.")]


@leaderboard_app.command("diff")
def leaderboard_diff(old: BoardPath, new: BoardPath,
                     as_json: Annotated[bool, typer.Option("--json", help="Print the diff as JSON.")] = False) -> None:
    """Entries added and removed, and cells whose accuracy moved beyond both 95% intervals; exit 1 when a cell moved."""
    from robustbench_med.report.diff import diff_boards, diff_lines, load_board

    result = diff_boards(load_board(old), load_board(new))
    if as_json:
        out.print_json(json.dumps(result.as_json(), sort_keys=True))
    else:
        table = Table(title=f"leaderboard diff {old} -> {new}")
        for col in ("change", "entry", "attack", "preset", "protocol", "eps", "old %", "new %"):
            table.add_column(col)
        for line in diff_lines(result):
            table.add_row(*line)
        if table.rows:
            out.print(table)
        out.print(f"{len(result.moved)} cells moved beyond both intervals ({result.cells_compared} compared); "
                  f"{len(result.added)} entries added, {len(result.removed)} removed, "
                  f"{len(result.remeasured)} re-measured")
    if result.moved:
        raise Exit(code=1)


def _open_store(results_dir: Path):
    from robustbench_med.store import STORE_NAME, ResultStore

    check_folder("--results-dir", results_dir)
    path = results_dir / STORE_NAME
    if not path.exists():  # a folder or a foreign file there is refused by ResultStore
        raise MedrobustError(f"no results store at {path} (run medrobust run first, or pass --results-dir)")
    return ResultStore(path)


# -- entry point -------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one line on stderr and exit code 2, never a traceback."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="medrobust", standalone_mode=False)
    except MedrobustError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return exc.exit_code
    except Exit as exc:
        return exc.exit_code
    except Abort:
        err.print("aborted", markup=False)
        return 130
    except TyperException as exc:  # usage errors: unknown option, missing value, bad type
        message = " ".join(exc.format_message().split())
        err.print(f"error: {message} (see medrobust --help)", markup=False, highlight=False,
                  soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted; finished cells are in the store, rerun to resume", markup=False)
        return 130
    # click returns (not raises) a command's Exit code when not standalone: `leaderboard diff` exits 1
    return code if isinstance(code, int) else 0


def entry() -> None:
    sys.exit(main())
