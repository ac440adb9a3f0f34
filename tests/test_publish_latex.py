"""LaTeX tables for papers (issue 15, item 4): booktabs, models x attacks, intervals, flags as marks.

One table is compiled with pdflatex when it is installed; otherwise its text is checked.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from robustbench_med.report.latex import tex
from robustbench_med.report.render import render
from tests.test_publish_fixtures import (
    add_entry,
    external_entry,
    import_real_board,
    single_draw_tables,
    snapshot,
)


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("latex")
    entries = import_real_board(root / "entries")
    add_entry(entries, external_entry(source="lab_X & co"))
    render(entries, root / "out", fmt="latex")
    return root / "out" / "latex"


def test_one_table_per_dataset_preset_and_protocol(tables):
    names = sorted(p.name for p in tables.glob("*.tex"))
    singles = {n for n in names if n.endswith("-single.tex")}
    eots = {n for n in names if n.endswith("-eot.tex")}
    assert singles == single_draw_tables() and {"d12-paper-single.tex", "d13-paper-single.tex"} <= singles
    assert {"d12-paper-eot.tex", "d14-paper-eot.tex"} <= eots  # the randomized defenses' EOT rows
    assert set(names) == singles | eots | {"tables.tex"}


def test_the_text_is_a_booktabs_table_with_escaped_names_and_footnote_marks(tables):
    for path in tables.glob("d*.tex"):
        text = path.read_text()
        for env in ("table", "tabular"):
            assert text.count(f"\\begin{{{env}}}") == text.count(f"\\end{{{env}}}") > 0, path
        assert [line for line in text.splitlines() if line in ("\\toprule", "\\midrule", "\\bottomrule")] == [
            "\\toprule", "\\midrule", "\\bottomrule"], path
        assert not re.search(r"(?<!\\)[_%&#](?![^$]*\$)", text.replace(" & ", " ").replace("\\\\", "")), path
        assert text.count("{") == text.count("}"), path
    single = (tables / "d12-paper-single.tex").read_text()
    cap = next(line for line in single.splitlines() if line.startswith("\\texttt{mail\\_rn18} + cap"))
    mark = re.search(r"\$\^\{([a-z,]+)\}\$", cap).group(1).split(",")
    notes = single.split("\\footnotesize", 1)[1]
    assert any(f"$^{{{m}}}$ failed masking checks: clean-right-on-several-classes" in notes for m in mark)
    assert "53.0\\\\{\\scriptsize[43.0, 63.0]}" in cap  # accuracy with its interval
    assert "entry from elsewhere: lab\\_X \\& co" in single
    assert "measured by older code (0.1.0)" in single


def test_latex_escapes_special_characters():
    assert tex("mail_rn18 & 100% #1 {x} ~ ^ \\") == (
        "mail\\_rn18 \\& 100\\% \\#1 \\{x\\} \\textasciitilde{} \\textasciicircum{} \\textbackslash{}")


def test_a_table_compiles(tables, tmp_path):
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        print("pdflatex not installed: checked the text only")
        pytest.skip("pdflatex not installed (the text checks above still ran)")
    for path in tables.glob("*.tex"):
        shutil.copy(path, tmp_path)
    done = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "tables.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "tables.pdf").read_bytes()[:5] == b"%PDF-"
    assert "Overfull \\hbox" not in done.stdout


def test_latex_is_byte_stable(tables, tmp_path):
    entries = tables.parent.parent / "entries"
    render(entries, tmp_path, fmt="latex")
    assert snapshot(tmp_path / "latex") == snapshot(tables)
