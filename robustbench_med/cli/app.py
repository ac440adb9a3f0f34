"""The ``medrobust`` typer app and its entry point; each command lives in its own module.

Every user error ends as one line on stderr and exit code 2 (see ``main``).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from typer.exceptions import Abort, Exit, TyperException

from robustbench_med.cli.common import err
from robustbench_med.cli.grid import grid_app
from robustbench_med.cli.info import info
from robustbench_med.cli.leaderboard import leaderboard_app
from robustbench_med.cli.listing import list_entries
from robustbench_med.cli.run import run
from robustbench_med.cli.sweep import sweep
from robustbench_med.cli.train import train
from robustbench_med.errors import MedrobustError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Adversarial-robustness benchmarking for medical image classifiers.")
app.add_typer(leaderboard_app, name="leaderboard")
app.add_typer(grid_app, name="grid")
app.command("list")(list_entries)
app.command()(train)
app.command()(run)
app.command()(info)
app.command()(sweep)


def _print_version(value: bool) -> None:
    if value:
        from robustbench_med import __version__

        typer.echo(f"medrobust {__version__}")
        raise Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                   help="Print the version and exit.")] = False) -> None:
    pass


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
    """The console script ``medrobust`` (and ``python -m robustbench_med``)."""
    sys.exit(main())
