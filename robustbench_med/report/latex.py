"""LaTeX tables for papers: booktabs, models x attacks, robust accuracy with its 95% interval.

One table per dataset, preset and protocol (single draw; EOT where a model is randomized), in the
layout of the paper's robustness tables. Flags are footnote marks explained under the table: the
masking checks that failed, older code, an entry from elsewhere. Each table is a fragment for
``\\input`` (it needs ``booktabs`` and ``graphicx``); ``tables.tex`` wraps them all into a document that
compiles as written.
"""

from __future__ import annotations

from pathlib import Path

from robustbench_med.report.board import Cell, Row, columns

SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
           "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
MARKS = "abcdefghijklmnopqrstuvwxyz"
PROTOCOLS = {"single": "single draw", "eot": "EOT (gradient averaged over 20 draws per step)"}


def tex(text: str) -> str:
    """Escape LaTeX's special characters in plain text."""
    return "".join(SPECIAL.get(ch, ch) for ch in str(text))


def _number(cell: Cell | None) -> str:
    if cell is None:
        return "--"
    if cell.ci_low is None or cell.ci_high is None:
        return f"{cell.pct:.1f}"
    # the interval under the number: half the width, so a table of a dozen attacks still fits a page
    return (f"\\begin{{tabular}}[t]{{@{{}}r@{{}}}}{cell.pct:.1f}\\\\"
            f"{{\\scriptsize[{100 * cell.ci_low:.1f}, {100 * cell.ci_high:.1f}]}}\\end{{tabular}}")


def _name(row: Row, duplicates: bool) -> str:
    e = row.entry
    name = f"\\texttt{{{tex(e['model'])}}}" + ("" if e["defense"] == "none" else f" + {tex(e['defense'])}")
    if duplicates:
        name += f" {{\\scriptsize({tex(e['subset'])}, {e['checkpoint_sha256'][:8]})}}"
    return name


def _notes(row: Row) -> list[str]:
    """What a row's footnote marks say: failed checks, older code, an entry from elsewhere."""
    notes = []
    if row.fired():
        notes.append("failed masking checks: " + ", ".join(row.fired()))
    if row.code() != "current":
        notes.append(f"measured by older code ({row.entry['code_version']})")
    if row.source():
        notes.append(f"entry from elsewhere: {row.source()}")
    return notes


def table(rows: list[Row], dataset: str, preset: str, protocol: str) -> str:
    """One booktabs table (a ``table`` environment) of ``rows``' cells under ``protocol``."""
    attacks, _probes = columns(rows)
    pick = (lambda slot: slot.eot) if protocol == "eot" else (lambda slot: slot.single)
    attacks = [a for a in attacks if any(r.slots.get(a) and pick(r.slots[a]) for r in rows)]
    names = [(r.entry["model"], r.entry["defense"]) for r in rows]
    marks: dict[str, str] = {}
    lines = []
    for row in rows:
        tags = []
        for note in _notes(row):
            marks.setdefault(note, MARKS[len(marks) % len(MARKS)])
            tags.append(marks[note])
        sup = f"$^{{{','.join(sorted(tags))}}}$" if tags else ""
        slots = [pick(row.slots[a]) if a in row.slots else None for a in attacks]
        worst = min((c for c in slots if c is not None), key=lambda c: c.accuracy, default=None)
        name = _name(row, names.count((row.entry["model"], row.entry["defense"])) > 1) + sup
        cells = [name, str(row.clean.n) if row.clean else "--", _number(row.clean), *map(_number, slots),
                 _number(worst)]
        lines.append(" & ".join(cells) + r" \\")
    head = ["Model", "$n$", "Clean", *(tex(a) for a in attacks), "Worst"]
    notes = "; ".join(f"$^{{{mark}}}$ {tex(note)}" for note, mark in marks.items())
    caption = (f"Robust accuracy (\\%, 95\\% bootstrap interval) on {tex(dataset)}, {tex(preset)} preset, "
               f"{tex(PROTOCOLS[protocol])}, $\\epsilon = 4/255$. Worst: lowest over the attacks.")
    return "\n".join([
        r"\begin{table}[t]", r"\centering", r"\small", r"\setlength{\tabcolsep}{3pt}",
        f"\\caption{{{caption}}}", f"\\label{{tab:medrobust-{tex(dataset)}-{tex(preset)}-{protocol}}}",
        # shrunk to the text width only when wider (graphicx's \width is the natural width)
        r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
        r"\begin{tabular}{l" + "r" * (len(head) - 1) + "}", r"\toprule", " & ".join(head) + r" \\",
        r"\midrule", *lines, r"\bottomrule", r"\end{tabular}}",
        *([f"\\par\\smallskip{{\\footnotesize {notes}}}"] if notes else []), r"\end{table}", ""])


def write_latex(rows: list[Row], folder: Path) -> list[Path]:
    """``<dataset>-<preset>-<protocol>.tex`` per table, and ``tables.tex`` that compiles them all."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for dataset in sorted({r.dataset for r in rows}):
        for preset in sorted({r.preset for r in rows if r.dataset == dataset}):
            group = [r for r in rows if r.dataset == dataset and r.preset == preset and r.slots]
            for protocol in ("single", "eot"):
                chosen = [r for r in group if any((s.eot if protocol == "eot" else s.single)
                                                  for s in r.slots.values())]
                if not chosen:
                    continue
                path = folder / f"{dataset}-{preset}-{protocol}.tex"
                path.write_text(table(chosen, dataset, preset, protocol), encoding="utf-8")
                paths.append(path)
    body = "\n".join(f"\\input{{{p.stem}}}\n\\clearpage" for p in paths)
    wrapper = folder / "tables.tex"
    wrapper.write_text("\\documentclass{article}\n\\usepackage[landscape,margin=1.5cm]{geometry}\n"
                       "\\usepackage{booktabs}\n\\usepackage{graphicx}\n"
                       "\\begin{document}\n" + body + "\n\\end{document}\n", encoding="utf-8")
    return [*paths, wrapper]
