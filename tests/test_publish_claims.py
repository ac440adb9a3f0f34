"""The paper's numbers as data: every claim is checked against the paper's text, and the views that
the rest of medrobust reads (Table 2, sizes) keep their values."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from robustbench_med.report.paper_claims import SIZES, TABLE2, all_claims, claim_documents, claims_for

PAPER = Path(os.environ.get("MEDROBUST_PAPER") or
             Path(__file__).resolve().parents[2] / "shared" / "docs" / "paper" / "mail-robust-mail-kdd26.txt")


@pytest.fixture(scope="module")
def paper() -> str:
    if not PAPER.is_file():
        message = f"the paper's text is missing: {PAPER} (set MEDROBUST_PAPER)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return PAPER.read_text(encoding="utf-8")


def _block(paper: str, caption: str) -> list[str]:
    """The lines of one table: from its caption to the next table's caption."""
    start = paper.index(caption)
    end = paper.find("\nTable ", start + len(caption))
    return paper[start:end].splitlines()


def _numbers(line: str) -> list[float]:
    return [float(x) for x in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", line)]


def _row(lines: list[str], name: str) -> list[float]:
    line = next(line for line in lines if line.startswith(name + "\t"))
    return _numbers(line[len(name):])


def test_table1_and_table2_claims_are_the_papers_numbers(paper):
    tables = (("table1.json", "Table 1:", 3, 1), ("table2.json", "Table 2:", 2, 11))
    for table, caption, per_dataset, first in tables:
        lines = _block(paper, caption)
        metrics = ("ACC", "F1", "AUC") if per_dataset == 3 else ("ACC", "AUC")
        claims = claim_documents()[table]["claims"]
        for claim in claims:
            row = _row(lines, claim["paper_name"])
            if claim["dataset"] is None:  # cost columns: the row's last two numbers
                assert claim["value"] == row[-2 if claim["metric"] == "params_M" else -1], claim
                continue
            index = per_dataset * (int(claim["dataset"][1:]) - first) + metrics.index(claim["metric"])
            assert row[index] == claim["value"], claim
        assert len(claims) >= 30


def test_table5_claims_are_lines_of_the_papers_table(paper):
    lines = _block(paper, "Table 5:")
    claims = claim_documents()["table5.json"]["claims"]
    by_row: dict[tuple[str, int], list[float]] = {}
    for claim in claims:
        by_row.setdefault((claim["metric"], claim["row"]), []).append(claim["value"])
    for (metric, _row_no), values in by_row.items():
        text = [_numbers(line) for line in lines]
        if metric == "ACC":  # the MAIL half: the two accuracies open the line's numbers
            assert any(nums[:2] == values for nums in text), values
        else:  # the Robust-MAIL half: the line's last two numbers
            assert any(nums[-2:] == values for nums in text), values
    full = next(c for c in claims if c["model"] == "robust_mail" and c["dataset"] == "d5")
    assert full["value"] == 63.29


def test_table3_and_fig6_sentences_are_in_the_paper(paper):
    flat = " ".join(paper.split())
    for name in ("table3.json", "fig6.json"):
        for claim in claim_documents()[name]["claims"]:
            assert claim["text"] in flat.replace("$", ""), claim["text"]
            assert f"{claim['value']}%" in flat


def test_every_claim_file_names_its_source_and_budget():
    for name, doc in claim_documents().items():
        assert "KDD'26" in doc["source"] and doc["budget"] and doc["claims"], name
    assert {c["table"] for c in all_claims()} == {"Table 1", "Table 2", "Table 3", "Table 5", "Fig. 6"}


def test_the_views_keep_their_values():
    assert TABLE2["mail_rn18"]["d12"] == (92.49, 98.83) and TABLE2["mail_mnv2"]["d16"] == (96.45, 99.90)
    assert SIZES == {"mail_rn18": (11.7, 1.84), "mail_rn50": (20.8, 2.18)}
    assert [c["metric"] for c in claims_for("mail_rn18", "none", "d12+d14", "d12+d14:d14")] == ["ACC", "AUC"]
    assert claims_for("mail_rn18", "pni", "d12", "d12") == []  # the paper's MAIL is undefended
