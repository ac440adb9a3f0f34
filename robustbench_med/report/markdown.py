"""The Markdown board: one narrow table per dataset, readable on a screen and in a pull request.

The per-cell provenance (settings, versions, wall time) is in the entry files and on the HTML
board; this page keeps what a reader compares: clean, worst case, each attack, the paper, the checks.
"""

from __future__ import annotations

from robustbench_med.report.board import Row, Slot, columns, entry_budget_text, superseded_text


def _slot(slot: Slot | None) -> str:
    if slot is None or not slot.cells():
        return ""
    text = " / ".join(f"{c.pct:.1f}" for c in slot.cells())
    drop = slot.drop()
    return text + (f" ({-drop:+.1f})" if drop else "")


def _claim(row: Row) -> str:
    clean = {c["metric"]: c["value"] for c in row.claims() if c.get("attack") == "clean"}
    return f"{clean['ACC']:.2f} / {clean.get('AUC', float('nan')):.2f}" if "ACC" in clean else ""


def _line(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render_markdown(rows: list[Row], superseded: int = 0) -> str:
    """The board; ``superseded`` older entries of the same checkpoints were left out (said at the top)."""
    out = ["# medrobust leaderboard", "",
           "Written by `medrobust leaderboard render` from `entries/`. Accuracy % at eps 4/255 over all n "
           "test points; `a / b (-d)` is single draw / EOT (drop); worst = lowest over the row's attacks; "
           "paper = the paper's clean ACC / AUC at its own budget; masking lists the checks that failed. "
           "Intervals, settings and versions: the HTML board and the entry files.", ""]
    if superseded:
        out += [superseded_text(superseded), ""]
    for dataset in sorted({r.dataset for r in rows}):
        page = [r for r in rows if r.dataset == dataset]
        attacks, probes = columns(page)
        out += [f"## {dataset}", ""]
        head = ["model", "defense", "subset", "preset", "budget", "code", "clean", "paper", "worst",
                "masking", *attacks, *probes]
        out += [_line(head), _line(["---"] * len(head))]
        for r in page:
            worst = r.worst()
            worst_text = f"{worst.pct:.1f} ({worst.attack}{' EOT' if worst.protocol == 'eot' else ''})" \
                if worst else ""
            flag = (" (collapsed)" if r.collapsed() else "") + (f" [from {r.source()}]" if r.source() else "")
            out.append(_line([
                r.entry["model"] + flag, r.entry["defense"], r.entry["subset"], r.preset,
                entry_budget_text(r.entry), r.code(),
                f"{r.clean.pct:.1f}" if r.clean else "", _claim(r),
                worst_text, r.verdict_text(), *(_slot(r.slots.get(a)) for a in attacks),
                *(_slot(r.probes.get(p)) for p in probes),
            ]))
        out.append("")
    return "\n".join(out)
