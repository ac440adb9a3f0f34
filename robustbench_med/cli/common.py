"""What every command shares: the consoles, the option types, folder checks, event rendering.

Imports only typer, rich and the standard library at module level, so that
``medrobust list`` never pays for torch.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from robustbench_med.errors import BadInputError, MedrobustError

# Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns; give them room.
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

DEFAULT_RESULTS = Path("medrobust-results")

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
Amp = Annotated[str, typer.Option(help="Mixed precision in training: off, or bf16 (autocast; fp32 weights; attacks stay fp32; recorded in the checkpoint).")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]
Surrogate = Annotated[str, typer.Option(help="Surrogate model of the transfer attacks (paper: resnet101).")]
Checks = Annotated[bool, typer.Option("--checks/--no-checks", help="Run the large-eps probe and the gradient-masking checks.")]
AttackBatch = Annotated[int, typer.Option(help="Batch size for attacks (halves on GPU OOM).")]
Draws = Annotated[int, typer.Option(help="Fresh draws scoring a randomized model.")]
SquareQueries = Annotated[int, typer.Option(help="Square's query budget: square, square-surrogate, and Square inside autoattack and aa-surrogate (default AutoAttack's 5000; another value names the cells, e.g. square-500, autoattack\\[square-500]).")]


def check_square_queries(value: int) -> None:
    """Refuse a Square budget outside 1..10000 before any data is read or a model trained."""
    from robustbench_med.evaluation.stored_names import check_square_queries as check

    check(value, "--square-queries")


def check_folder(flag: str, folder: Path, *, inner: str = "") -> None:
    """Refuse a folder option at or under a file (or whose ``inner`` folder is a file) before any
    data is read or a model trained: the same mistake found after training would waste the run."""
    from robustbench_med.store import folder_problem

    problem = folder_problem(folder / inner if inner else folder)
    if problem is not None:
        raise BadInputError(f"{flag} {folder} cannot be used: {problem} (pass a folder, new or existing)")


def open_store(results_dir: Path) -> Any:
    """The results store of ``--results-dir``; a missing one is an error that says what to run."""
    from robustbench_med.store import STORE_NAME, ResultStore

    check_folder("--results-dir", results_dir)
    path = results_dir / STORE_NAME
    if not path.exists():  # a folder or a foreign file there is refused by ResultStore
        raise MedrobustError(f"no results store at {path} (run medrobust run first, or pass --results-dir)")
    return ResultStore(path)


STATUS_COLOURS = {"pass": "green", "fail": "red", "inconclusive": "yellow"}
SHORTEN_TRAINING = ("to shorten it: fewer epochs (--epochs N), fewer training images (--n-train N) or "
                    "--recipe fast; medrobust run --checkpoint FILE evaluates a model trained before")


def render_event(event: Any) -> None:
    """Show one library event on stderr: details dim, warnings yellow, checks by their verdict; a
    training estimate with the flags that shorten the run."""
    style = {"detail": "dim", "warning": "yellow"}.get(event.level)
    if event.kind == "check" and event.data is not None:
        style = STATUS_COLOURS.get(event.data.status, "dim")
    err.print(event.message, style=style, markup=False, highlight=False)
    if event.kind == "training-estimate":
        err.print(SHORTEN_TRAINING, style="dim", markup=False, highlight=False)


def fmt(value: float | None) -> str:
    """A metric to 4 decimals, or n/a when it could not be computed."""
    return "n/a" if value is None else f"{value:.4f}"


def cell(value: Any) -> str:
    """One table cell: lists joined, booleans read yes/no, null reads -."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "-" if value is None else str(value)
