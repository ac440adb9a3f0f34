"""Entries as data and the render from entries alone (issue 15, items 1, 2 and 5).

Real data: the published CSV board, imported into entry files. A small hand-made store covers what
the CSV cannot (per-point flags, check evidence, rows of the current code).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from robustbench_med.cli import main
from robustbench_med.report.board import board_rows
from robustbench_med.report.entries import dump_entry, read_entries
from tests.test_publish_fixtures import (
    BOARD_CSV,
    add_entry,
    board_counts,
    external_entry,
    import_real_board,
    make_store,
    snapshot,
)

NAME = re.compile(r"^[a-z0-9_.+-]+-d1[234]-[0-9a-f]{12}-test(\d+)?(-seed\d+)?-code[0-9a-z.]+\.json$")


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def real_entries(tmp_path_factory) -> Path:
    return import_real_board(tmp_path_factory.mktemp("real") / "entries")


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """``medrobust leaderboard publish`` of the hand-made store (entries plus the rendered site)."""
    folder = tmp_path_factory.mktemp("store")
    make_store(folder)
    out = folder / "board"
    assert main(["leaderboard", "publish", "--results-dir", str(folder), "--out", str(out)]) == 0
    return out


# -- item 1: entries ----------------------------------------------------------------------------------
def test_the_real_board_imports_into_one_valid_entry_per_model_and_subset(real_entries):
    entries = read_entries(real_entries)  # validates every file
    counts = board_counts()
    assert len(entries) == counts["entries"] > 30
    assert {p.parent.name for p in real_entries.glob("*/*.json")} == {"d12", "d13", "d14"}
    assert all(NAME.match(p.name) for p in real_entries.glob("*/*.json")), sorted(real_entries.glob("*/*"))
    assert sum(len(e["cells"]) for e in entries) == counts["rows"]  # every row of the CSV, once
    old = [e for e in entries if e["code_version"] == "0.1.0"]  # the first CPU board, fixed in time
    pni = next(e for e in old if e["defense"] == "pni" and e["dataset"] == "d12")
    assert pni["randomized"] and pni["training_budget"]["epochs"] == 6 and pni["code_version"] == "0.1.0"
    assert {c["protocol"] for c in pni["cells"]} == {"randomized", "single-draw", "eot"}
    cap = next(e for e in old if e["defense"] == "cap" and e["dataset"] == "d12")
    status = {c["name"]: c["status"] for c in cap["checks"]}
    assert status["clean-right-on-several-classes"] == "fail" and "n/a" in status.values()
    mail = next(e for e in old if (e["model"], e["defense"], e["dataset"]) == ("mail_rn18", "none", "d12"))
    assert {(c["table"], c["metric"], c["value"]) for c in mail["claims"]} == {("Table 2", "ACC", 92.49),
                                                                               ("Table 2", "AUC", 98.83)}


def test_entry_files_are_stable_text(real_entries, tmp_path, capsys):
    before = snapshot(real_entries)
    mtimes = {p: p.stat().st_mtime_ns for p in real_entries.rglob("*.json")}
    code, out, _ = run_cli(capsys, "leaderboard", "import-csv", str(BOARD_CSV), "--out", str(real_entries))
    assert code == 0 and f"wrote {board_counts()['entries']} entries" in out
    assert snapshot(real_entries) == before  # a re-run that changes nothing changes no byte
    assert {p: p.stat().st_mtime_ns for p in real_entries.rglob("*.json")} == mtimes  # nor touches a file
    for path in real_entries.glob("*/*.json"):
        text = path.read_text()
        doc = json.loads(text)
        assert dump_entry(doc) == text  # sorted keys, rounded floats, fixed order
        assert list(doc) == sorted(doc)
    floats = re.findall(r"\d+\.\d+(?:e-?\d+)?", "".join(p.read_text() for p in real_entries.glob("*/*.json")))
    assert max(len(f.split("e")[0].replace(".", "").lstrip("0")) for f in floats) <= 6


def test_publish_writes_entries_with_flags_evidence_and_versions(published):
    files = sorted((published / "entries").glob("*/*.json"))
    assert [f.parent.name for f in files] == ["d12", "d12"]
    entries = {e["model"]: e for e in read_entries(published / "entries")}
    robust = entries["robust_mail"]
    assert robust["checkpoint_sha256"] == "b" * 64 and robust["randomized"]
    check = next(c for c in robust["checks"] if c["name"] == "large-eps-above-chance")
    assert (check["status"], check["statistic"], check["p_value"]) == ("fail", 21.0, 0.00123457)
    cell = next(c for c in robust["cells"] if c["protocol"] == "eot" and c["attack"] == "pgd-10")
    assert cell["n"] == 40 and cell["accuracy"] == 0.45 and cell["flags_hex"] == "ffffc00000"
    assert cell["versions"]["torch"] == "2.14.1" and cell["device"] == "cpu" and cell["wall_s"] == 1.5
    assert cell["settings"]["preset"] == "paper" and "created" not in cell
    assert entries["resnet18"]["training_budget"]["epochs"] == 3


def test_publish_twice_changes_no_byte(published, tmp_path):
    folder = published.parent
    before = snapshot(published)
    assert main(["leaderboard", "publish", "--results-dir", str(folder), "--out", str(published)]) == 0
    assert snapshot(published) == before


BAD = {  # mutation of a valid entry -> words the one-line refusal must hold
    "missing field": (lambda e: e.pop("subset"), "subset: missing (required)"),
    "accuracy above 1": (lambda e: e["cells"][1].update(accuracy=1.5),
                         "cells[1].accuracy: must be a number in [0, 1]"),
    "bad checkpoint hash": (lambda e: e.update(checkpoint_sha256="xyz"), "checkpoint_sha256: must be 64"),
    "unknown field": (lambda e: e.update(acuracy=0.5), "acuracy: unknown field"),
    "bad check status": (lambda e: e["checks"].append({"name": "x", "protocol": "all", "status": "maybe",
                                                       "detail": None, "statistic": None, "p_value": None}),
                         "checks[0].status: must be one of pass, fail, inconclusive, n/a"),
    "interval misses accuracy": (lambda e: e["cells"][1].update(ci_low=0.5, ci_high=0.6),
                                 "cells[1].accuracy: 0.31 lies outside its interval"),
    "twice the same cell": (lambda e: e["cells"].append(dict(e["cells"][1])), "cells[2]: a second cell"),
    "no clean cell": (lambda e: e["cells"].pop(0), "cells: no clean cell"),
    "wrong schema": (lambda e: e.update(schema="robustbench/2"), "schema: must be 'medrobust-entry/1'"),
    "empty source": (lambda e: e.update(source=""), "source: must be a non-empty string"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_an_entry_that_breaks_the_schema_is_refused_with_field_and_reason(capsys, tmp_path, case):
    mutate, words = BAD[case]
    entry = external_entry()
    mutate(entry)
    path = add_entry(tmp_path / "entries", entry)
    code, _out, err = run_cli(capsys, "leaderboard", "render", str(tmp_path / "entries"), "--out",
                              str(tmp_path / "site"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {path}: ") and words in err, err
    assert not (tmp_path / "site").exists()  # nothing rendered from a bad board


@pytest.mark.parametrize("text, words", [("{", "not JSON (line 1"), ("[]", "(top level): must be an object")])
def test_a_file_that_is_not_an_entry_is_refused(capsys, tmp_path, text, words):
    (tmp_path / "entries" / "d12").mkdir(parents=True)
    (tmp_path / "entries" / "d12" / "x.json").write_text(text)
    code, _out, err = run_cli(capsys, "leaderboard", "render", str(tmp_path / "entries"), "--out",
                              str(tmp_path))
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1


def test_an_entry_in_another_datasets_folder_or_an_empty_folder_is_refused(capsys, tmp_path):
    add_entry(tmp_path / "entries", {**external_entry(), "dataset": "d14", "task": "d14"}).rename(
        tmp_path / "entries" / "d14" / "x.json")
    (tmp_path / "entries" / "d14").rename(tmp_path / "entries" / "d12")
    code, _out, err = run_cli(capsys, "leaderboard", "render", str(tmp_path / "entries"), "--out",
                              str(tmp_path))
    assert code == 2 and "dataset: 'd14', but the file is in the folder 'd12'" in err
    code, _out, err = run_cli(capsys, "leaderboard", "render", str(tmp_path / "none"), "--out",
                              str(tmp_path))
    assert code == 2 and "no such folder of entries" in err


# -- item 5: results from elsewhere -------------------------------------------------------------------------
def test_an_entry_from_elsewhere_is_rendered_and_marked(real_entries, tmp_path, capsys):
    entries = tmp_path / "entries"
    import shutil

    shutil.copytree(real_entries, entries)
    add_entry(entries, external_entry(source="Dr. X's lab <GPU>"))
    code, _out, _err = run_cli(capsys, "leaderboard", "render", str(entries), "--out", str(tmp_path / "site"))
    assert code == 0
    html = (tmp_path / "site" / "d12.html").read_text()
    row = next(r for r in html.split("<tr") if "external" in r.split(">")[0])
    assert 'class="external"' in row and "Dr. X&#x27;s lab &lt;GPU&gt;" in row and "older code" in row
    assert "[from Dr. X's lab <GPU>]" in (tmp_path / "site" / "leaderboard.md").read_text()
    csv = (tmp_path / "site" / "leaderboard.csv").read_text()
    assert "Dr. X's lab <GPU>" in csv


# -- item 2: render from entries alone -----------------------------------------------------------------------
def test_render_rebuilds_every_file_byte_for_byte(real_entries, tmp_path, capsys):
    for name in ("a", "b"):
        code, _out, _ = run_cli(capsys, "leaderboard", "render", str(real_entries), "--out",
                                str(tmp_path / name))
        assert code == 0
    a, b = snapshot(tmp_path / "a"), snapshot(tmp_path / "b")
    assert a == b
    assert {"leaderboard.csv", "leaderboard_wide.csv", "leaderboard_checks.csv", "leaderboard.md",
            "leaderboard_clean.md", "index.html", "d12.html", "d13.html", "d14.html",
            "plots/sweep-d12-pgd-100-paper.svg"} <= set(a)
    svg = a["plots/sweep-d12-pgd-100-paper.svg"].decode()
    assert "<dc:date>" not in svg and "2026-" not in svg
    assert not any(re.search(rb"20\d\d-\d\d-\d\dT", data) for data in a.values())  # no timestamps anywhere


def test_render_keeps_every_cell_and_check_of_the_entries(real_entries, tmp_path):
    from robustbench_med.report.render import render

    render(real_entries, tmp_path)
    import pandas as pd

    long = pd.read_csv(tmp_path / "leaderboard.csv", keep_default_na=False)
    old = pd.read_csv(BOARD_CSV)
    assert len(long) == len(old) == board_counts()["rows"]
    assert sorted(long["accuracy"].astype(float).round(4)) == sorted(old["accuracy"].round(4))
    # a row is "current" exactly when this checkout's code digest made it; the 0.1.0 rows never are
    from robustbench_med.versions import code_version

    assert ((long["code"] == "current") == (long["code_version"] == code_version())).all()
    assert set(long.loc[long["code_version"] == "0.1.0", "code"]) == {"older code"}
    checks = pd.read_csv(tmp_path / "leaderboard_checks.csv", keep_default_na=False)
    assert len(checks) == board_counts()["checks"] > 100
    md = (tmp_path / "leaderboard.md").read_text()
    assert "## d12" in md and "FAIL: clean-right-on-several-classes" in md
    assert "| mail_rn18 | none | test[200] | paper |" in md


def test_publish_renders_the_site_and_marks_current_code(published):
    html = (published / "index.html").read_text()
    rows = board_rows(read_entries(published / "entries"))
    assert html.count("<tr data-dataset=") == len(rows) == 3  # resnet18 paper + standard, robust_mail
    assert ">current<" in html and "older code" not in html.split("<tbody>")[1]
    assert (published / "plots" / "sweep-d12-pgd-100-paper.svg").is_file()
    assert 'src="plots/sweep-d12-pgd-100-paper.svg"' in html


def test_a_store_from_elsewhere_is_published_with_its_source(tmp_path, capsys):
    make_store(tmp_path)
    out = tmp_path / "board"
    args = ["leaderboard", "publish", "--results-dir", str(tmp_path), "--out", str(out), "--source"]
    code, _out, _err = run_cli(capsys, *args, "lab Y, A100")
    assert code == 0
    assert {e["source"] for e in read_entries(out / "entries")} == {"lab Y, A100"}
    rows = re.findall(r'<tr data-dataset="[^>]*>', (out / "index.html").read_text())
    assert len(rows) == 3 and all(re.search(r'class="[^"]*external', row) for row in rows)
    code, _out, err = run_cli(capsys, *args, " ")
    assert code == 2 and "--source must name" in err


def test_an_evaluate_result_becomes_an_entry_file(tmp_path):
    import numpy as np

    from robustbench_med.evaluation.masking import CheckResult
    from robustbench_med.evaluation.report import CellResult, Report
    from robustbench_med.report.entries import entries_from_report, write_entries
    from robustbench_med.store import ResultKey

    def key(attack: str, preset: str, eps: float) -> ResultKey:
        return ResultKey(model="MyNet", defense="", dataset="d12", task="d12", attack=attack, preset=preset,
                         eps=eps, protocol="deterministic", seed=0, subset="test[8]", checkpoint_sha="e" * 64,
                         code_version="0.1.0+0123456789ab")

    flags = np.array([1, 1, 1, 1, 1, 1, 0, 0], dtype=bool)
    report = Report(model="MyNet", cells=[
        CellResult(key("clean", "-", 0.0), 0.75, 0.5, 1.0, 8, 0, 0.1, False, flags=flags, auc=0.8,
                   image_size=28, device="cpu"),
        CellResult(key("pgd-10", "paper", 4 / 255), 0.25, 0.0, 0.5, 8, 6, 0.4, False, flags=flags & False,
                   settings={"alpha": 10 / 255, "steps": 10}, image_size=28, device="cpu")],
        checks=[CheckResult("large-eps-above-chance", "pass", "0.0% at eps 0.3", 0.0, 1.0)])
    [entry] = entries_from_report(report, source="my notebook")
    [path] = write_entries([entry], tmp_path / "entries")
    [back] = read_entries(tmp_path / "entries")
    assert path.name == "MyNet-d12-eeeeeeeeeeee-test8-code0123456789ab.json"
    assert back["source"] == "my notebook" and back["defense"] == "none"
    assert back["checks"][0]["name"] == "large-eps-above-chance" and back["checks"][0]["p_value"] == 1.0
    assert back["cells"][0]["flags_hex"] == "fc" and back["cells"][1]["versions"]["torch"]


def test_publish_names_the_options_that_built_a_checkpoint(tmp_path):
    """Two checkpoints of one model that differ by an option (Robust-MAIL's ``man=code``) must not
    look alike on the board: publish copies the options from the zoo's sidecar into the entry."""
    folder = tmp_path / "store"
    make_store(folder)
    sidecar = folder / "zoo" / "robust_mail" / "d12-28px-bbbbbbbbbbbb.json"
    sidecar.parent.mkdir(parents=True)
    sidecar.write_text(json.dumps({"sha256": "b" * 64, "config": {"model_options": {"man": "code"},
                                                                  "defense_options": {}}}))
    out = folder / "board"
    assert main(["leaderboard", "publish", "--results-dir", str(folder), "--out", str(out)]) == 0
    entries = {e["model"]: e for e in read_entries(out / "entries")}
    assert entries["robust_mail"]["options"] == {"model": {"man": "code"}}
    assert "options" not in entries["resnet18"]  # no sidecar, no options: nothing is guessed
    names = {row.name for row in board_rows(read_entries(out / "entries"))}
    assert "robust_mail [man=code]" in names and "resnet18" in names
    assert "robust_mail [man=code]" in (out / "index.html").read_text()


def test_a_defense_and_adversarial_training_show_their_training_attack_in_the_budget(tmp_path):
    """A built-in defense trains against the benchmark's PGD through its own recipe even without
    ``--adversarial``: its budget names that attack, read from the checkpoint's sidecar; a plugin
    defense's recipe is not known and says so; standard training names none."""
    from robustbench_med.report.board import budget_text
    from robustbench_med.report.entries import training_attack

    train = {"adversarial": False, "adv_steps": 3, "adv_eps": 4 / 255, "adv_step": 2 / 255}
    assert training_attack({"defense": "pni", "train": train}) == (
        "PGD-3 (eps 4/255, step 2/255), defense recipe")
    assert training_attack({"defense": None, "train": {**train, "adversarial": True}}) == (
        "PGD-3 (eps 4/255, step 2/255), adversarial training")
    assert training_attack({"defense": "my_plugin_defense", "train": train}) == (
        "the defense's own training recipe")
    assert training_attack({"defense": None, "train": train}) is None
    budget = {"epochs": 4, "recipe": "medmnist", "image_size": 28, "augment": False, "n_train": 1600,
              "adversarial": False}
    assert budget_text(budget, 28, "PGD-3 (eps 4/255, step 2/255), defense recipe").endswith(
        "n_train 1600, PGD-3 (eps 4/255, step 2/255), defense recipe")
    assert "PGD" not in budget_text(budget, 28) and "adversarial" not in budget_text(budget, 28)

    folder = tmp_path / "store"
    make_store(folder)
    sidecar = folder / "zoo" / "robust_mail" / "d12-28px-bbbbbbbbbbbb.json"
    sidecar.parent.mkdir(parents=True)
    sidecar.write_text(json.dumps({"sha256": "b" * 64, "config": {
        "model_options": {}, "defense_options": {}, "defense": None,
        "train": {**train, "adversarial": True}}}))
    out = folder / "board"
    assert main(["leaderboard", "publish", "--results-dir", str(folder), "--out", str(out)]) == 0
    entries = {e["model"]: e for e in read_entries(out / "entries")}
    assert entries["robust_mail"]["training_attack"] == "PGD-3 (eps 4/255, step 2/255), adversarial training"
    assert "options" not in entries["robust_mail"] and "training_attack" not in entries["resnet18"]
    assert "PGD-3 (eps 4/255, step 2/255), adversarial training" in (out / "index.html").read_text()


def test_the_wide_csv_has_each_attack_at_the_papers_eps(published):
    """Entry files keep eps to 6 digits (4/255 -> 0.0156863): the wide table must still find the
    paper's eps (it once kept the clean column alone)."""
    import pandas as pd

    wide = pd.read_csv(published / "leaderboard_wide.csv")
    resnet = wide[wide["model"] == "resnet18"].set_index("preset")
    assert resnet.loc["paper", "pgd-10"] == 20.0 and resnet.loc["standard", "pgd-10"] == 5.0
    assert resnet.loc["standard", "autoattack"] == 2.5
