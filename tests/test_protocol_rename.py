"""The protocol rename ``paper`` -> ``single-draw``: old stores, entry files and CSVs read under the new
name, with every number as it was. The old data are the published D12 Robust-MAIL entry, written back
as the code before the rename wrote it."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from robustbench_med.errors import StoreError
from robustbench_med.report.entries import entries_from_store, read_entries, rewrite_entries
from robustbench_med.report.render import render
from robustbench_med.store import KEY_COLUMNS, ResultStore, current_detail

ENTRIES = Path(__file__).resolve().parents[1] / "leaderboards" / "entries"
ROBUST = "d12/robust_mail-d12-d71b1b451c6c-test100-code2e94a0d20582.json"
# The schema of a store written before the check evidence columns and before the rename.
OLD_SCHEMA = (
    "CREATE TABLE results (id INTEGER PRIMARY KEY, model TEXT NOT NULL, defense TEXT NOT NULL, "
    "dataset TEXT NOT NULL, task TEXT NOT NULL, attack TEXT NOT NULL, preset TEXT NOT NULL, "
    "eps REAL NOT NULL, protocol TEXT NOT NULL, seed INTEGER NOT NULL, subset TEXT NOT NULL, "
    "checkpoint_sha TEXT NOT NULL, code_version TEXT NOT NULL, n INTEGER NOT NULL, n_attacked INTEGER, "
    "accuracy REAL NOT NULL, ci_low REAL, ci_high REAL, auc REAL, image_size INTEGER, device TEXT, "
    "wall_s REAL, settings TEXT, versions TEXT, notes TEXT, flags BLOB, created TEXT, "
    "UNIQUE (" + ", ".join(KEY_COLUMNS) + "));"
    "CREATE TABLE checks (id INTEGER PRIMARY KEY, model TEXT NOT NULL, defense TEXT NOT NULL, "
    "dataset TEXT NOT NULL, task TEXT NOT NULL, protocol TEXT NOT NULL, seed INTEGER NOT NULL, "
    "subset TEXT NOT NULL, checkpoint_sha TEXT NOT NULL, code_version TEXT NOT NULL, "
    "check_name TEXT NOT NULL, status TEXT NOT NULL, detail TEXT, created TEXT, UNIQUE (model, defense, "
    "dataset, task, protocol, seed, subset, checkpoint_sha, code_version, check_name));")


def _old_text(text: str) -> str:
    """An entry's text as the code before the rename wrote it."""
    return (text.replace('"protocol": "single-draw"', '"protocol": "paper"')
            .replace("): single-draw protocol ", "): paper protocol ")
            .replace(", single-draw) ", ", paper) "))


@pytest.fixture
def new_entry() -> dict:
    return json.loads((ENTRIES / ROBUST).read_text())


@pytest.fixture
def old_folder(tmp_path) -> Path:
    folder = tmp_path / "entries"
    for path in ENTRIES.glob("d12/robust_mail-*.json"):
        (folder / "d12").mkdir(parents=True, exist_ok=True)
        (folder / "d12" / path.name).write_text(_old_text(path.read_text()))
    assert '"protocol": "paper"' in (folder / ROBUST).read_text()  # the fixture really is old
    return folder


def _old_store(path: Path, entry: dict) -> None:
    """A store made by the old schema holding ``entry``'s cells and checks under the old names."""
    old = json.loads(_old_text(json.dumps(entry)))
    key = {"model": old["model"], "defense": "", "dataset": old["dataset"], "task": old["task"],
           "seed": old["seed"], "subset": old["subset"], "checkpoint_sha": old["checkpoint_sha256"],
           "code_version": old["code_version"]}
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript(OLD_SCHEMA)
        for c in old["cells"]:
            row = {**key, **{k: c[k] for k in ("attack", "preset", "eps", "protocol", "n", "n_attacked",
                                              "accuracy", "ci_low", "ci_high", "device", "wall_s", "notes")},
                   "settings": json.dumps(c["settings"]), "versions": json.dumps(c["versions"])}
            db.execute(f"INSERT INTO results ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                       tuple(row.values()))
        for c in old["checks"]:
            row = {**key, "protocol": c["protocol"], "check_name": c["name"], "status": c["status"],
                   "detail": c["detail"]}
            db.execute(f"INSERT INTO checks ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                       tuple(row.values()))


def _cells(entry: dict) -> list[tuple]:
    return sorted((c["attack"], c["preset"], c["protocol"], c["eps"], c["n"], c["accuracy"], c["ci_low"],
                   c["ci_high"]) for c in entry["cells"])


def test_an_old_store_is_migrated_when_opened(tmp_path, new_entry):
    path = tmp_path / "results.sqlite"
    _old_store(path, new_entry)
    with closing(sqlite3.connect(path)) as db:
        before = db.execute("SELECT protocol, COUNT(*) FROM results GROUP BY protocol").fetchall()
    assert ("paper", 3) in before
    store = ResultStore(path)
    frame = store.frame()
    assert set(frame.protocol) == {"randomized", "single-draw", "eot"}
    assert set(frame.code_version) == {new_entry["code_version"]}  # the rows stay the old code's rows
    (entry,) = entries_from_store(store)
    assert _cells(entry) == _cells(new_entry)  # every number as published, under the new name
    details = {c["name"]: c["detail"] for c in entry["checks"]}
    assert details == {c["name"]: c["detail"] for c in new_entry["checks"]}
    assert "single-draw protocol" in details["eot-lowers-accuracy"]
    assert len(store.frame(protocol="single-draw")) == 3 and store.frame(protocol="paper").empty


def test_a_migrated_store_is_only_read_when_opened_again(tmp_path, new_entry):
    path = tmp_path / "results.sqlite"
    _old_store(path, new_entry)
    ResultStore(path)
    with closing(sqlite3.connect(path)) as db:
        changes = db.execute("PRAGMA data_version").fetchone()[0]
        ResultStore(path)
        assert db.execute("PRAGMA data_version").fetchone()[0] == changes  # the second open wrote nothing


def test_a_store_holding_one_cell_under_both_names_is_refused(tmp_path, new_entry):
    path = tmp_path / "results.sqlite"
    _old_store(path, new_entry)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("INSERT INTO results (model, defense, dataset, task, attack, preset, eps, protocol, seed, "
                   "subset, checkpoint_sha, code_version, n, accuracy) SELECT model, defense, dataset, task, "
                   "attack, preset, eps, 'single-draw', seed, subset, checkpoint_sha, code_version, n, "
                   "accuracy FROM results WHERE protocol = 'paper' LIMIT 1")
    with pytest.raises(StoreError, match=r"cannot rename protocol 'paper' to 'single-draw'.*both names"):
        ResultStore(path)
    with closing(sqlite3.connect(path)) as db:  # the transaction rolled back: nothing half-renamed
        assert db.execute("SELECT COUNT(*) FROM results WHERE protocol = 'paper'").fetchone()[0] == 3


def test_old_entry_files_read_and_render_as_the_migrated_ones(tmp_path, old_folder):
    new_folder = tmp_path / "new"
    shutil.copytree(old_folder, new_folder)
    old = {e["_file"]: e for e in read_entries(old_folder)}
    assert all(c["protocol"] != "paper" for e in old.values() for c in e["cells"])
    changed = rewrite_entries(new_folder)
    old_names = {p.name for p in old_folder.glob("d12/*.json")
                 if '"protocol": "paper"' in p.read_text() or "paper protocol" in p.read_text()}
    assert {p.name for p in changed} == old_names
    assert (new_folder / ROBUST).read_text() == (ENTRIES / ROBUST).read_text()
    assert rewrite_entries(new_folder) == []  # a second run finds nothing left to migrate
    render(old_folder, tmp_path / "site-old")
    render(new_folder, tmp_path / "site-new")
    for path in sorted((tmp_path / "site-new").rglob("*.*")):
        twin = tmp_path / "site-old" / path.relative_to(tmp_path / "site-new")
        assert twin.read_bytes() == path.read_bytes(), path.name


def test_check_details_name_the_new_protocol():
    old = ("EOT never lowers accuracy (closest: pgd-10 (paper): paper protocol 54.0%, EOT 53.0%); "
           "pgd-100 (paper, paper) 61.0% > 60.0% with fewer steps; pgd-10 (paper, eot) 50.0%")
    assert current_detail(old) == (
        "EOT never lowers accuracy (closest: pgd-10 (paper): single-draw protocol 54.0%, EOT 53.0%); "
        "pgd-100 (paper, single-draw) 61.0% > 60.0% with fewer steps; pgd-10 (paper, eot) 50.0%")
    assert current_detail(None) is None
