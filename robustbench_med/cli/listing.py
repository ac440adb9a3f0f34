"""``medrobust list``: the catalog as a table or JSON, read without importing torch."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from robustbench_med.cli.common import cell, err, out
from robustbench_med.errors import BadInputError

# Each kind's table: (header, catalog field).
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
            print_details(catalog.kind_of(kind), record)
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
        table.add_row(*(cell(row.get(field)) for _, field in LIST_COLUMNS[listing.kind]))
    out.print(table)


def print_details(kind: str, record: dict[str, Any]) -> None:
    """One entry's fields, then (models and defenses) its options with types and defaults."""
    table = Table(title=f"{kind[:-1]} {record['name']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for field, value in record.items():
        if field != "options":
            table.add_row(field, cell(value))
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
