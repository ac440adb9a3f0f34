"""What ``medrobust list`` shows, read without importing torch: a static catalog of the built-ins.

``catalog.json`` (beside this file) holds one plain record per built-in dataset, model, defense
and attack: names, aliases, metadata, whether it is randomized, and each factory's options with
their types and defaults. It is written from the live registry by::

    python -m robustbench_med.catalog --write

and ``tests/test_catalog.py`` checks that it equals what the live registry reports, so it cannot
go stale (``--check`` says the same from the shell). ``list`` reads the file in milliseconds; it
reads the live registry (which imports torch) only for what the file cannot know: installed
plugins, found through their entry points (a cheap lookup), and entries added in this process.
"""

from __future__ import annotations

import argparse
import fnmatch
import inspect
import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from robustbench_med.errors import BadInputError, MedrobustError, UnknownNameError
from robustbench_med.factory_options import option_parameters
from robustbench_med.registry import (
    ATTACKS,
    DATASETS,
    DEFENSES,
    MODELS,
    Entry,
    Registry,
    natural_key,
    nearest,
)

PATH = Path(__file__).with_name("catalog.json")
KINDS: dict[str, Registry[Any]] = {"datasets": DATASETS, "models": MODELS, "defenses": DEFENSES,
                                   "attacks": ATTACKS}
BUILTIN_ORIGINS = ("medrobust", "robustbench_med")  # what the built-in modules register under
RANDOMIZED_KINDS = ("models", "defenses")
WRITE_COMMAND = "python -m robustbench_med.catalog --write"
Catalog = dict[str, list[dict[str, Any]]]  # kind -> records


# -- records, from the live registry (imports torch) --------------------------------
def _plain(value: Any) -> Any:
    """``value`` as JSON data; anything else as its repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return repr(value)


def _type_word(param: inspect.Parameter) -> str:
    annotation = param.annotation
    if isinstance(annotation, str):  # PEP 563: the annotation as written ("int | None")
        return annotation
    if annotation is inspect.Parameter.empty:
        empty = param.default is inspect.Parameter.empty or param.default is None
        return "any" if empty else type(param.default).__name__
    return inspect.formatannotation(annotation)


def options_of(factory: Callable[..., Any], n_args: int) -> list[dict[str, Any]]:
    """The factory's keyword options: name, type, default, required (as --*-option checks them)."""
    found = []
    for param in option_parameters(factory, n_args):
        required = param.default is inspect.Parameter.empty
        found.append({"name": param.name, "type": _type_word(param),
                      "default": None if required else _plain(param.default), "required": required})
    return found


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0].strip() if lines else ""


def _builds_randomized(name: str) -> bool | None:
    """Whether the model, built with its defaults, declares randomness (None: it cannot be built
    on a probe input: one 32 px RGB image, then a pair)."""
    import torch

    from robustbench_med.data.spec import DataInfo, TaskInfo
    from robustbench_med.models.builder import build_model
    from robustbench_med.randomness import is_randomized

    for m in (1, 2):
        info = DataInfo(dataset="catalog-probe", channels=3, image_size=32,
                        tasks=tuple(TaskInfo(f"task{i}", 2) for i in range(m)),
                        mean=((0.5,) * 3,) * m, std=((0.25,) * 3,) * m)
        try:
            with torch.random.fork_rng(devices=[]):
                return is_randomized(build_model(name, info))
        except Exception:  # a factory that refuses the probe (say, one that needs a pair): next probe
            continue
    return None


def _from(entry: Entry[Any]) -> str:
    return "medrobust" if entry.origin in BUILTIN_ORIGINS else entry.origin


def _model(entry: Entry[Any]) -> dict[str, Any]:
    randomized = entry.meta.get("randomized")
    return {"name": entry.name, "aliases": list(entry.aliases), "family": str(entry.meta.get("family", "")),
            "randomized": _builds_randomized(entry.name) if randomized is None else bool(randomized),
            "reference": str(entry.meta.get("reference", "")), "from": _from(entry),
            "summary": _first_line(getattr(entry.obj, "__doc__", None)), "options": options_of(entry.obj, 1)}


def _defense(entry: Entry[Any]) -> dict[str, Any]:
    defense = entry.obj
    return {"name": entry.name, "aliases": list(entry.aliases),
            "randomized": bool(getattr(defense, "randomized", False)),
            "reference": str(getattr(defense, "reference", "")), "from": _from(entry),
            "summary": str(getattr(defense, "summary", "")),
            "evaluation": str(getattr(defense, "evaluation", "")), "options": options_of(defense.build, 2)}


def _attack(entry: Entry[Any]) -> dict[str, Any]:
    spec = entry.obj
    return {"name": entry.name, "aliases": list(entry.aliases), "names": spec.listed_names(),
            "box": spec.box, "threat": spec.threat, "presets": list(spec.presets), "cost": spec.cost,
            "library": spec.library, "description": spec.description, "adaptive": spec.adaptive,
            "default_steps": spec.default_steps, "random_start": spec.random_start,
            "eot_iter": spec.eot_iter, "from": _from(entry)}


def _dataset(entry: Entry[Any]) -> dict[str, Any]:
    spec = entry.obj
    return {"name": entry.name, "aliases": list(entry.aliases), "title": spec.name,
            "modality": spec.modality, "task": spec.task, "classes": spec.n_classes,
            "samples": spec.n_samples, "split": spec.split, "loader": spec.source,
            "channels": spec.channels, "class_names": list(spec.class_names), "licence": spec.licence,
            "url": spec.source_url, "layout": spec.layout, "from": _from(entry)}


RECORD = {"datasets": _dataset, "models": _model, "defenses": _defense, "attacks": _attack}


def describe(kind: str, entries: Iterable[Entry[Any]]) -> list[dict[str, Any]]:
    """Live registry entries as catalog records (plain JSON data, as the file holds them)."""
    return [json.loads(json.dumps(_plain(RECORD[kind](entry)))) for entry in entries]


def live_catalog() -> Catalog:
    """The built-ins' records from the live registry: what ``catalog.json`` must equal."""
    return {kind: describe(kind, (e for e in registry if e.origin in BUILTIN_ORIGINS))
            for kind, registry in KINDS.items()}


# -- reading, without torch ------------------------------------------------------------
@lru_cache(maxsize=1)
def static_catalog() -> Catalog:
    """The built-ins as ``catalog.json`` holds them."""
    if not PATH.is_file():
        raise MedrobustError(f"{PATH} is missing (a broken install?); run {WRITE_COMMAND}")
    data = json.loads(PATH.read_text(encoding="utf-8"))
    return {kind: data[kind] for kind in KINDS}


def kind_of(text: str) -> str:
    """``models`` (or ``model``, any case) -> ``models``; a one-line error otherwise."""
    key = text.strip().lower()
    if key not in KINDS and f"{key}s" in KINDS:
        key = f"{key}s"
    if key not in KINDS:
        near = nearest(key, list(KINDS))
        raise BadInputError(f"cannot list '{text}'" + (f"; did you mean '{near}'?" if near else "")
                            + f" (allowed: {', '.join(KINDS)})")
    return key


@dataclass(frozen=True)
class Listing:
    """Records of one kind, and where those beyond the static catalog came from ('' if none)."""

    kind: str
    rows: list[dict[str, Any]]
    note: str = ""


def records(kind: str) -> Listing:
    """Every record of ``kind``: the static catalog, plus live entries it cannot know (installed
    plugins, entries added in this process). The live registry is read only when there may be
    such entries: an installed plugin of this kind, or a registry this process already loaded."""
    kind = kind_of(kind)
    static = static_catalog()[kind]
    registry = KINDS[kind]
    if not registry.loaded and not list(entry_points(group=registry.group)):
        return Listing(kind, static)
    known = {row["name"] for row in static}
    extra = [entry for entry in registry if entry.name not in known]
    if not extra:
        return Listing(kind, static)
    rows = sorted(static + describe(kind, extra), key=lambda row: natural_key(row["name"]))
    packages = ", ".join(sorted({entry.origin for entry in extra}))
    return Listing(kind, rows, f"{len(extra)} {kind} from plugins or this session ({packages}) were "
                               f"read from the live registry; the built-ins from {PATH.name}")


def names_of(row: dict[str, Any]) -> list[str]:
    """Every name that picks this record: its name, aliases and, for attacks, listed names."""
    return [row["name"], *row.get("aliases", []), *row.get("names", [])]


def _text(row: dict[str, Any]) -> str:
    words = [v for v in row.values() if isinstance(v, str)]
    words += [w for v in row.values() if isinstance(v, list) for w in v if isinstance(w, str)]
    return " ".join(words).lower()


def select(kind: str, pattern: str | None = None, *, family: str | None = None,
           randomized: bool | None = None, grep: str | None = None) -> Listing:
    """Records of ``kind`` whose name or alias matches the shell ``pattern`` (``mail*``), of model
    ``family``, randomized or not, holding the substring ``grep`` in any field (any case)."""
    listing = records(kind)
    kind, rows = listing.kind, listing.rows
    if family is not None:
        families = sorted({row["family"] for row in static_catalog()["models"] + rows
                           if row.get("family")})
        if kind != "models":
            raise BadInputError(f"--family filters models only, not {kind} (model families: "
                                f"{', '.join(families)})")
        if family.lower() not in families:
            near = nearest(family.lower(), families)
            raise BadInputError(f"unknown model family '{family}'" + (f"; did you mean '{near}'?" if near
                                else "") + f" (allowed: {', '.join(families)})")
        rows = [row for row in rows if row["family"] == family.lower()]
    if randomized is not None:
        if kind not in RANDOMIZED_KINDS:
            raise BadInputError(f"--randomized/--deterministic filter models and defenses only, not {kind} "
                                "(use --grep to search other fields)")
        rows = [row for row in rows if row["randomized"] is randomized]
    if pattern:
        rows = [row for row in rows if any(fnmatch.fnmatchcase(name, pattern.lower())
                                           for name in names_of(row))]
    if grep:
        rows = [row for row in rows if grep.lower() in _text(row)]
    return Listing(kind, rows, listing.note)


def nearest_name(kind: str, name: str) -> str | None:
    """The name or alias of ``kind`` closest to ``name`` (None when nothing is close)."""
    return nearest(name.strip().lower(), [n for row in records(kind).rows for n in names_of(row)])


def detail(kind: str, name: str) -> dict[str, Any]:
    """One record by name or alias (an attack also by ``<family>-K``, such as ``pgd-37``)."""
    listing = records(kind)
    key = name.strip().lower()
    wanted = [key, re.sub(r"-\d+$", "", key)] if listing.kind == "attacks" else [key]
    for candidate in wanted:
        for row in listing.rows:
            if candidate in names_of(row):
                return row
    near = nearest_name(listing.kind, key)
    raise UnknownNameError(f"unknown {listing.kind[:-1]} '{name}'" + (f"; did you mean '{near}'?" if near
                           else "") + f" (known {listing.kind}: "
                           f"{', '.join(row['name'] for row in listing.rows)})")


# -- python -m robustbench_med.catalog --write | --check ----------------------------------
def render(catalog: Catalog) -> str:
    header = {"generated_by": WRITE_COMMAND,
              "note": "the built-in registry entries, read by `medrobust list` without importing torch"}
    return json.dumps({**header, **catalog}, indent=1, ensure_ascii=False) + "\n"


def stale_names(found: Catalog, expected: Catalog) -> list[str]:
    """``kind/name`` of every record that differs between two catalogs (added, removed, changed)."""
    differ = []
    for kind in KINDS:
        old = {row["name"]: row for row in found.get(kind, [])}
        new = {row["name"]: row for row in expected.get(kind, [])}
        differ += [f"{kind}/{name}" for name in sorted(old.keys() | new.keys(), key=natural_key)
                   if old.get(name) != new.get(name)]
    return differ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m robustbench_med.catalog",
                                     description=__doc__.split("\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help=f"rewrite {PATH.name} from the live registry")
    action.add_argument("--check", action="store_true", help=f"exit 1 when {PATH.name} is stale")
    args = parser.parse_args(argv)
    live = live_catalog()
    if args.write:
        PATH.write_text(render(live), encoding="utf-8")
        print(f"wrote {PATH} ({', '.join(f'{len(rows)} {kind}' for kind, rows in live.items())})")
        return 0
    stale = stale_names(json.loads(PATH.read_text(encoding="utf-8")) if PATH.is_file() else {}, live)
    if stale:
        print(f"{PATH.name} is stale ({', '.join(stale)}); run {WRITE_COMMAND}", file=sys.stderr)
        return 1
    print(f"{PATH.name} matches the live registry")
    return 0


if __name__ == "__main__":
    sys.exit(main())
