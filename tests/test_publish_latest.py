"""One board row per checkpoint: a re-measured checkpoint shows its newest entry, the long CSV keeps all.

A checkpoint measured again after a change to the result-deciding code used to appear on the board
once per code version, side by side, so a reader could not tell which number to quote.
"""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from robustbench_med.cli import main
from robustbench_med.report.entries import read_entries
from robustbench_med.report.latest import latest_entries, superseded
from tests.test_publish_fixtures import PAPER_EPS, SHA_A, _put, add_entry, external_entry, make_store

OLD_CODE = "0.1.0+000000000000"


@pytest.fixture(scope="module")
def remeasured(tmp_path_factory):
    """The hand-made store plus an older-code measurement of the same ResNet18 checkpoint, published."""
    folder = tmp_path_factory.mktemp("remeasured")
    store = make_store(folder)
    _put(store, model="resnet18", sha=SHA_A, attack="clean", preset="-", eps=0.0, protocol="deterministic",
         correct=30, auc=0.8, code=OLD_CODE)
    _put(store, model="resnet18", sha=SHA_A, attack="pgd-10", preset="paper", eps=PAPER_EPS,
         protocol="deterministic", correct=25, code=OLD_CODE)
    out = folder / "board"
    assert main(["leaderboard", "publish", "--results-dir", str(folder), "--out", str(out)]) == 0
    return out


def test_the_board_shows_the_newest_measurement_and_the_long_csv_keeps_both(remeasured):
    entries = read_entries(remeasured / "entries")
    assert sorted(e["code_version"] == OLD_CODE for e in entries) == [False, False, True]  # both files kept
    assert all(e["measured"].startswith("20") for e in entries)  # when the newest cell was stored
    md = (remeasured / "leaderboard.md").read_text()
    assert "1 older measurement of the same checkpoints" in md and "left out" in md
    resnet_lines = [line for line in md.splitlines() if line.startswith("| resnet18 ")]
    assert len(resnet_lines) == 2 and all("| current |" in line for line in resnet_lines)  # paper, standard
    assert "62.5" not in md  # the old PGD-10 (25 of 40) is not on the board
    html = (remeasured / "index.html").read_text()
    assert html.count("<tr data-dataset=") == 3 and "1 older measurement" in html
    long = pd.read_csv(remeasured / "leaderboard.csv")
    old = long[long["code_version"] == OLD_CODE]
    assert len(old) == 2 and old["superseded"].all() and not long.loc[long["code_version"] != OLD_CODE,
                                                                        "superseded"].any()
    wide = pd.read_csv(remeasured / "leaderboard_wide.csv")
    assert OLD_CODE not in set(wide["code_version"])


def _entry(code: str, measured: str | None, **changes) -> dict:
    entry = {**copy.deepcopy(external_entry()), "code_version": code, **changes}
    if measured:
        entry["measured"] = measured
    return entry


def test_older_code_versions_are_ordered_by_when_they_were_measured():
    early = _entry("0.1.0+aaaaaaaaaaaa", "2026-11-20T10:00:00+0000")
    late = _entry("0.1.0+bbbbbbbbbbbb", "2026-11-21T09:00:00+0100")
    assert superseded([late, early], current="0.1.0+cccccccccccc") == [False, True]
    # this checkout's code wins even when an older version was stored later
    assert superseded([late, early], current="0.1.0+aaaaaaaaaaaa") == [True, False]
    # by the instant, not the text: 09:00+0100 (08:00 UTC) is before 08:30+0000
    before = _entry("0.1.0+aaaaaaaaaaaa", "2026-11-22T09:00:00+0100")
    after = _entry("0.1.0+bbbbbbbbbbbb", "2026-11-22T08:30:00+00:00")
    assert superseded([before, after], current="0.1.0+cccccccccccc") == [True, False]


def test_a_partial_remeasurement_hides_nothing():
    """A newer entry that re-measured only some of an older entry's cells leaves the older on the board."""
    old = _entry("0.1.0+aaaaaaaaaaaa", "2026-11-20T10:00:00+0000")
    partial = _entry("0.1.0+bbbbbbbbbbbb", "2026-11-21T10:00:00+0000")
    partial["cells"] = partial["cells"][:1]  # the clean cell only
    assert superseded([old, partial], current="0.1.0+cccccccccccc") == [False, False]
    # the other way round, a newer entry that holds every cell of an older partial one replaces it
    earlier_partial = {**partial, "code_version": "0.1.0+dddddddddddd",
                       "measured": "2026-11-19T10:00:00+0000"}
    assert superseded([earlier_partial, old], current="0.1.0+cccccccccccc") == [True, False]


def test_entries_that_cannot_be_ordered_or_differ_are_all_kept():
    current = "0.1.0+cccccccccccc"
    undated = [_entry("0.1.0+aaaaaaaaaaaa", None), _entry("0.1.0+bbbbbbbbbbbb", "2026-11-21T09:00:00+0000")]
    assert latest_entries(undated, current) == undated  # no guess: both stay
    other_subset = [_entry("0.1.0+aaaaaaaaaaaa", "2026-11-20T10:00:00+0000", subset="test[100]"),
                    _entry("0.1.0+bbbbbbbbbbbb", "2026-11-21T10:00:00+0000")]
    other_source = [_entry("0.1.0+aaaaaaaaaaaa", "2026-11-20T10:00:00+0000", source="lab Y"),
                    _entry("0.1.0+bbbbbbbbbbbb", "2026-11-21T10:00:00+0000")]
    assert superseded(other_subset, current) == superseded(other_source, current) == [False, False]


def test_a_measured_time_that_is_not_iso_with_an_offset_is_refused(capsys, tmp_path):
    path = add_entry(tmp_path / "entries", _entry("0.1.0+aaaaaaaaaaaa", "2026-11-20 10:00"))
    code = main(["leaderboard", "render", str(tmp_path / "entries"), "--out", str(tmp_path / "site")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{path}: measured: must be an ISO 8601 time with its UTC offset" in err
    assert not (tmp_path / "site").exists()
