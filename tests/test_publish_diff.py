"""`medrobust leaderboard diff` (issue 15, item 4 of the tooling): what moved between two boards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from robustbench_med.cli import main
from robustbench_med.report.entries import dump_entry
from tests.test_publish_fixtures import add_entry, board_counts, external_entry, import_real_board, make_store


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> Path:
    return import_real_board(tmp_path_factory.mktemp("diff") / "entries")


def edit(path: Path, change) -> None:
    entry = json.loads(path.read_text())
    change(entry)
    path.write_text(dump_entry(entry))


def cell(entry: dict, attack: str, preset: str = "paper") -> dict:
    return next(c for c in entry["cells"] if c["attack"] == attack and c["preset"] == preset)


def test_the_same_board_has_no_change(board, capsys):
    code, out, _ = run_cli(capsys, "leaderboard", "diff", str(board), str(board))
    rows = board_counts()["rows"]
    assert code == 0 and f"0 cells moved beyond both intervals ({rows} compared)" in out


def test_added_removed_and_moved_are_listed_and_exit_1(board, tmp_path, capsys):
    new = shutil.copytree(board, tmp_path / "new")
    resnet = new / "d12" / "resnet18-d12-eb3f535b64b6-test200-code0.1.0.json"
    # PGD-10 (paper) 26.0 [20.5, 32.0] -> 45.0 [38.0, 52.0]: beyond both intervals
    edit(resnet, lambda e: cell(e, "pgd-10").update(accuracy=0.45, ci_low=0.38, ci_high=0.52))
    # PGD-20 (paper) 25.0 -> 27.0, inside the intervals: not a move
    edit(resnet, lambda e: cell(e, "pgd-20").update(accuracy=0.27))
    (new / "d13" / "resnet18-d13-0ffb0d78b73e-test-code0.1.0.json").unlink()
    add_entry(new, external_entry())
    code, out, _ = run_cli(capsys, "leaderboard", "diff", str(board), str(new))
    assert code == 1
    assert "moved" in out and "pgd-10" in out and "26.0 [20.5, 32.0]" in out and "45.0 [38.0, 52.0]" in out
    assert "d13/resnet18-d13-0ffb0d78b73e-test-code0.1.0.json" in out and "d12/external.json" in out
    assert "1 cells moved beyond both intervals" in out and "1 entries added, 1 removed" in out
    code, out, _ = run_cli(capsys, "leaderboard", "diff", str(board), str(new), "--json")
    assert code == 1
    result = json.loads(out)
    assert result["added"] == ["d12/external.json"]
    assert result["removed"] == ["d13/resnet18-d13-0ffb0d78b73e-test-code0.1.0.json"]
    [moved] = result["moved"]
    assert (moved["attack"], moved["preset"], moved["old"]["accuracy"], moved["new"]["accuracy"]) == (
        "pgd-10", "paper", 0.26, 0.45)


def test_added_entries_alone_exit_0(board, tmp_path, capsys):
    new = shutil.copytree(board, tmp_path / "new")
    add_entry(new, external_entry())
    code, out, _ = run_cli(capsys, "leaderboard", "diff", str(board), str(new))
    assert code == 0 and "1 entries added, 0 removed" in out


def test_a_re_measured_entry_is_paired_by_its_model_subset_and_budget(board, tmp_path, capsys):
    new = shutil.copytree(board, tmp_path / "new")
    old = new / "d12" / "resnet18-d12-eb3f535b64b6-test200-code0.1.0.json"
    entry = json.loads(old.read_text())
    entry.update(checkpoint_sha256="d" * 64, code_version="0.1.0+abcdefabcdef")
    cell(entry, "mim-10").update(accuracy=0.3, ci_low=0.24, ci_high=0.37)  # 5.5 [2.5, 9.0] before
    old.unlink()
    add_entry(new, entry, "resnet18-rerun.json")
    code, out, _ = run_cli(capsys, "leaderboard", "diff", str(board), str(new), "--json")
    result = json.loads(out)
    assert code == 1 and result["added"] == result["removed"] == []
    assert result["remeasured"] == [{"old": "d12/resnet18-d12-eb3f535b64b6-test200-code0.1.0.json",
                                     "new": "d12/resnet18-rerun.json"}]
    assert [m["attack"] for m in result["moved"]] == ["mim-10"]


def test_two_stores_and_a_store_against_its_published_entries(tmp_path, capsys):
    make_store(tmp_path / "a")
    make_store(tmp_path / "b", shift=12)  # ResNet18's PGD-10 (paper) 20% -> 50%
    a, b = str(tmp_path / "a"), str(tmp_path / "b" / "results.sqlite")
    code, out, _ = run_cli(capsys, "leaderboard", "diff", a, b)
    assert code == 1 and "pgd-10" in out and "20.0 [10.0, 30.0]" in out and "50.0 [40.0, 60.0]" in out
    assert main(["leaderboard", "publish", "--results-dir", a, "--out", str(tmp_path / "pub")]) == 0
    capsys.readouterr()
    code, out, _ = run_cli(capsys, "leaderboard", "diff", a, str(tmp_path / "pub" / "entries"))
    assert code == 0 and "0 entries added, 0 removed" in out


@pytest.mark.parametrize("make, words", [
    (lambda p: p / "missing", "no such folder of entries"),
    (lambda p: (p / "x.txt").write_text("x") and p / "x.txt",
     "neither a folder of entries nor a results store"),
])
def test_bad_input_is_one_line_and_exit_2(board, tmp_path, capsys, make, words):
    code, _out, err = run_cli(capsys, "leaderboard", "diff", str(board), str(make(tmp_path)))
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
