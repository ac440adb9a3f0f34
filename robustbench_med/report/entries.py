"""Leaderboard entries as data: one JSON file per evaluated model, the source of every published file.

An entry is one checkpoint of one model (and defense) evaluated on one task's test subset with one
seed by one version of the result-deciding code: its cells (every attack, preset, protocol and
eps, each with n, accuracy, 95% interval, settings, versions, device and wall time), its masking
checks with their evidence, and the paper's claims for it. Files are written stably (sorted keys,
floats to 6 significant digits, sorted cells, a fixed name), so publishing an unchanged store
changes no byte and a changed number reads as one line in ``git diff``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from robustbench_med.report.entry_schema import ENTRY_SCHEMA, EntryError, parse_time, validate_entry
from robustbench_med.report.paper_claims import claims_for
from robustbench_med.store import current_detail, current_protocol

ENTRY_KEY = ("model", "defense", "dataset", "task", "seed", "subset", "checkpoint_sha", "code_version")
SIGNIFICANT = 6


def clean_float(value: float) -> float | None:
    """Round to SIGNIFICANT digits (stable text across runs and platforms); NaN becomes None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(f"{float(value):.{SIGNIFICANT}g}")


def normalize(value: Any) -> Any:
    """Floats rounded, NaN as null, containers walked (tuples become lists)."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return clean_float(value)
    if isinstance(value, dict):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return normalize(value.item())
    return value


def _order(entry: dict[str, Any]) -> dict[str, Any]:
    """Cells, checks and claims in a fixed order, so the same content always gives the same file."""
    entry = dict(entry)
    entry["cells"] = sorted(entry["cells"], key=lambda c: (c["attack"] != "clean", c["attack"], c["preset"],
                                                           c["protocol"], c["eps"]))
    entry["checks"] = sorted(entry["checks"], key=lambda c: (c["name"], c["protocol"]))
    entry["claims"] = sorted(entry["claims"], key=lambda c: json.dumps(c, sort_keys=True))
    return entry


def dump_entry(entry: dict[str, Any]) -> str:
    """The exact text of an entry file."""
    return json.dumps(_order(normalize(entry)), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _slug(text: str) -> str:
    text = text.replace("[", "").replace("]", "")
    return "".join(ch if ch.isalnum() or ch in "._+-" else "_" for ch in text)


def entry_name(entry: dict[str, Any]) -> str:
    """``model[+defense]-<task>-<sha12>-<subset>[-seed<k>]-<code>.json``: one name per entry key."""
    name = entry["model"] + ("" if entry["defense"] == "none" else f"+{entry['defense']}")
    code = entry["code_version"].split("+", 1)
    seed = "" if entry["seed"] == 0 else f"-seed{entry['seed']}"
    parts = [name, entry["task"], entry["checkpoint_sha256"][:12], entry["subset"]]
    return "-".join(_slug(p) for p in parts) + seed + f"-code{_slug(code[-1][:12])}.json"


def entry_path(folder: Path, entry: dict[str, Any]) -> Path:
    return folder / _slug(entry["dataset"]) / entry_name(entry)


def write_entries(entries: Iterable[dict[str, Any]], folder: str | Path) -> list[Path]:
    """Write each entry under ``folder/<dataset>/``; a file whose text is unchanged is not touched."""
    paths = []
    for entry in entries:
        path = entry_path(Path(folder), entry)
        text = dump_entry(entry)
        validate_entry(json.loads(text), str(path))
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def rewrite_entries(folder: str | Path) -> list[Path]:
    """The migration of entry files after a rename: rewrite every entry under ``folder`` with today's
    names (:func:`current_names`), in place; only the renamed names change, byte for byte. Reading
    already maps old names, so an unmigrated file still renders; this makes the files say it too."""
    changed = []
    for entry in read_entries(folder):
        path = Path(folder) / entry.pop("_file")
        if path.read_text(encoding="utf-8") != dump_entry(entry):
            path.write_text(dump_entry(entry), encoding="utf-8")
            changed.append(path)
    return changed


def read_entry(path: Path) -> dict[str, Any]:
    """One entry file, validated; a file that breaks the schema is refused with the field and reason."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise EntryError(f"{path}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise EntryError(f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    validate_entry(doc, str(path))
    doc = current_names(doc)
    if path.parent.name != _slug(doc["dataset"]):
        raise EntryError(f"{path}: dataset: {doc['dataset']!r}, but the file is in the folder "
                         f"{path.parent.name!r} (entries live under entries/<dataset>/)")
    return _order(normalize(doc))


def current_names(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry with renamed protocols under today's names (``store.PROTOCOL_RENAMES``): an entry
    file written before a rename reads as one written after it; nothing else changes."""
    cells = [{**c, "protocol": current_protocol(c["protocol"])} for c in entry["cells"]]
    checks = [{**c, "protocol": current_protocol(c["protocol"]), "detail": current_detail(c["detail"])}
              for c in entry["checks"]]
    return {**entry, "cells": cells, "checks": checks}


def read_entries(folder: str | Path) -> list[dict[str, Any]]:
    """Every ``*.json`` under ``folder/<dataset>/``, validated, in file-name order (each with ``_file``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EntryError(f"{folder}: no such folder of entries (expected <folder>/<dataset>/*.json)")
    paths = sorted(folder.glob("*/*.json"))
    if not paths:
        raise EntryError(f"{folder}: holds no entry files (expected <folder>/<dataset>/*.json)")
    entries, names = [], {}
    for path in paths:
        entry = read_entry(path)
        key = entry_key(entry)
        if key in names:
            raise EntryError(f"{path}: the same entry as {names[key]} (model, defense, task, checkpoint, "
                             "subset, seed and code version all equal)")
        names[key] = path
        entries.append({**entry, "_file": path.relative_to(folder).as_posix()})
    return entries


def entry_key(entry: dict[str, Any]) -> tuple:
    return tuple(entry[k if k != "checkpoint_sha" else "checkpoint_sha256"] for k in ENTRY_KEY)


# -- from a store (or its CSV export) ---------------------------------------------------------------
def _json(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    if text is None or (isinstance(text, float) and math.isnan(text)) or text == "":
        return {}
    return json.loads(text)


def _none(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _cell(row: pd.Series) -> dict[str, Any]:
    cell = {"attack": row["attack"], "preset": row["preset"], "protocol": row["protocol"],
            "eps": float(row["eps"]), "n": int(row["n"]),
            "n_attacked": None if _none(row.get("n_attacked")) is None else int(row["n_attacked"]),
            "accuracy": float(row["accuracy"]), "ci_low": _none(row.get("ci_low")),
            "ci_high": _none(row.get("ci_high")), "auc": _none(row.get("auc")),
            "settings": _json(row.get("settings")), "versions": _json(row.get("versions")),
            "device": _none(row.get("device")), "wall_s": _none(row.get("wall_s")),
            "notes": _none(row.get("notes")) or None}
    flags = _none(row.get("flags"))
    if isinstance(flags, bytes | bytearray | memoryview):
        cell["flags_hex"] = bytes(flags).hex()
    return cell


def _check(row: pd.Series) -> dict[str, Any]:
    return {"name": row["check_name"], "protocol": row["protocol"], "status": row["status"],
            "detail": _none(row.get("detail")) or None, "statistic": _none(row.get("statistic")),
            "p_value": _none(row.get("p_value"))}


def _no_defense(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(defense=frame["defense"].fillna("").replace("", "none"))


def _measured(group: pd.DataFrame) -> dict[str, str]:
    """``measured``: when the entry's newest cell was stored (what the board orders re-measurements
    of one checkpoint by); absent where the rows do not say (a CSV export)."""
    times = group["created"].dropna() if "created" in group else pd.Series(dtype=object)
    return {"measured": max(times, key=parse_time)} if len(times) else {}


def entries_from_frames(results: pd.DataFrame, checks: pd.DataFrame) -> list[dict[str, Any]]:
    """Group a store's rows (``ResultStore.frame``, or the published long CSV) into entries."""
    if results.empty:
        return []
    results = _no_defense(results).assign(protocol=lambda f: f["protocol"].map(current_protocol))
    if not checks.empty:  # a CSV exported before a protocol rename says the old names
        checks = _no_defense(checks).assign(protocol=lambda f: f["protocol"].map(current_protocol),
                                            detail=lambda f: f["detail"].map(current_detail))
    by_key = {key: group for key, group in checks.groupby(list(ENTRY_KEY))} if not checks.empty else {}
    entries = []
    for key, group in results.groupby(list(ENTRY_KEY)):
        first = dict(zip(ENTRY_KEY, key, strict=True))
        clean = group[group["attack"] == "clean"]
        base = clean.iloc[0] if not clean.empty else group.iloc[0]
        budgets = [_json(s).get("train") for s in (clean if not clean.empty else group)["settings"]]
        entries.append({
            "schema": ENTRY_SCHEMA, "model": first["model"], "defense": first["defense"],
            "dataset": first["dataset"], "task": first["task"], "seed": int(first["seed"]),
            "subset": first["subset"], "checkpoint_sha256": first["checkpoint_sha"],
            "code_version": first["code_version"],
            "image_size": None if _none(base.get("image_size")) is None else int(base["image_size"]),
            "training_budget": next((b for b in budgets if b), None),
            "randomized": bool(group["protocol"].isin(["randomized", "single-draw", "eot"]).any()),
            "cells": [_cell(row) for _, row in group.iterrows()],
            "checks": [_check(row) for _, row in by_key.get(key, pd.DataFrame()).iterrows()],
            "claims": claims_for(first["model"], first["defense"], first["dataset"], first["task"]),
            **_measured(group),
        })
    return entries


def _with_source(entries: list[dict[str, Any]], source: str | None) -> list[dict[str, Any]]:
    return [{**e, "source": source} for e in entries] if source else entries


def entries_from_store(store, source: str | None = None) -> list[dict[str, Any]]:
    """Every entry of a :class:`~robustbench_med.store.ResultStore`, per-point flags included;
    ``source`` marks a store from elsewhere (another machine, another lab)."""
    return _with_source(entries_from_frames(store.frame(with_flags=True), store.checks_frame()), source)


def checkpoint_facts(zoo: str | Path) -> dict[str, dict[str, Any]]:
    """Checkpoint sha256 -> what its zoo sidecar says about how it was built: its non-empty model and
    defense options (``options``) and the attack it was trained against (``training_attack``).

    Result rows name a checkpoint by its identity only; two checkpoints of one model that differ by an
    option (CAP with ``beta=1``, Robust-MAIL with ``man=code``) would look alike on the board without
    this, and a defense's own adversarial training (every built-in defense trains against the
    benchmark's PGD, ``--adv-steps``/``--adv-step``) would not show in its budget, so publishing
    copies both into each entry."""
    found: dict[str, dict[str, Any]] = {}
    for sidecar in sorted(Path(zoo).glob("*/*.json")) if Path(zoo).is_dir() else []:
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            config = meta["config"]
            options = {kind: config.get(f"{kind}_options") or {} for kind in ("model", "defense")}
            facts: dict[str, Any] = {}
            if any(options.values()):
                facts["options"] = {kind: value for kind, value in options.items() if value}
            attack = training_attack(config)
            if attack:
                facts["training_attack"] = attack
            found[meta["sha256"]] = facts
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def training_attack(config: dict[str, Any]) -> str | None:
    """'PGD-3 (eps 4/255, step 2/255), defense recipe'-style words for the attack a checkpoint was
    trained against; None for standard training. A plugin defense's recipe is not known here."""
    from robustbench_med.attacks.eps import format_eps
    from robustbench_med.catalog import static_catalog

    train, defense = config.get("train") or {}, config.get("defense")
    if not defense and not train.get("adversarial"):
        return None
    builtin = {row["name"] for row in static_catalog()["defenses"]}
    if defense and defense not in builtin:
        return "the defense's own training recipe"
    pgd = (f"PGD-{train['adv_steps']} (eps {format_eps(float(train['adv_eps']))}, "
           f"step {format_eps(float(train['adv_step']))})")
    return f"{pgd}, {'defense recipe' if defense else 'adversarial training'}"


def with_checkpoint_facts(entries: list[dict[str, Any]], zoo: str | Path) -> list[dict[str, Any]]:
    """``entries`` with ``options`` and ``training_attack`` set wherever the zoo knows them."""
    known = checkpoint_facts(zoo)
    return [{**e, **known.get(e["checkpoint_sha256"], {})} for e in entries]


def options_text(entry: dict[str, Any]) -> str:
    """``[beta=1]``-style suffix naming an entry's model and defense options ('' when none)."""
    pairs = [f"{k}={v}" for kind in ("model", "defense") for k, v in sorted((entry.get("options") or {})
                                                                             .get(kind, {}).items())]
    return f" [{', '.join(pairs)}]" if pairs else ""


def entries_from_report(report, source: str) -> list[dict[str, Any]]:
    """Entries of an ``evaluate(...)`` result, without a store: the cells with their flags, this
    process's library versions, the model's checks on each of its tasks, and where it came from."""
    from robustbench_med.versions import library_versions

    results = report.to_frame(with_flags=True).assign(versions=json.dumps(library_versions(), sort_keys=True))
    keys = results[list(ENTRY_KEY)].drop_duplicates().to_dict("records")
    checks = pd.DataFrame([{**key, "protocol": "all", "check_name": c.name, "status": c.status,
                            "detail": c.detail, "statistic": c.statistic, "p_value": c.p_value}
                           for key in keys for c in report.checks])
    return _with_source(entries_from_frames(results, checks), source)
