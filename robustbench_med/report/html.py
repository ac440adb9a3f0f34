"""The static HTML board: ``index.html`` and one page per dataset, self-contained and offline.

CSS and script ship in ``report/static`` and are inlined into every page (no CDN, no network).
Each number carries its n, interval, settings and versions in its ``title`` (shown on hover);
rows of models that a masking check flagged are marked with the check that fired. The text is a
pure function of the entries: no dates, no random ids.
"""

from __future__ import annotations

import json
from collections import Counter
from html import escape
from importlib import resources
from pathlib import Path

from robustbench_med.report.board import Cell, Row, Slot, columns, entry_budget_text, superseded_text
from robustbench_med.report.entries import options_text
from robustbench_med.versions import code_version

PAPER_BUDGET = "200 epochs, 128x128x3, 4x augmentation, GPU (TensorFlow)"
FILTERS = ("dataset", "model", "defense", "verdict")


def _static(name: str) -> str:
    return (resources.files("robustbench_med.report") / "static" / name).read_text(encoding="utf-8")


def _attr(text: str) -> str:
    return escape(text, quote=True)


def _td(content: str, value: float | str | None = None, title: str = "", cls: str = "") -> str:
    attrs = f' data-v="{_attr("" if value is None else str(value))}"'
    attrs += f' title="{_attr(title)}"' if title else ""
    attrs += f' class="{cls}"' if cls else ""
    return f"<td{attrs}>{content}</td>"


def _cell_html(cell: Cell, cls: str = "") -> str:
    inner = f"{cell.pct:.1f}"
    return f'<span class="{cls}">{inner}</span>' if cls else inner


def _slot_td(slot: Slot | None) -> str:
    if slot is None or not slot.cells():
        return _td("", None)
    parts, titles = [], []
    if slot.single:
        parts.append(_cell_html(slot.single))
        titles.append(slot.single.title)
    if slot.eot:
        parts.append(_cell_html(slot.eot, "eot"))
        titles.append("EOT (20 draws per gradient):\n" + slot.eot.title)
    content = " / ".join(parts)
    drop = slot.drop()
    if drop is not None:
        content += f' <span class="drop">(&minus;{drop:.1f})</span>' if drop > 0 else \
            f' <span class="drop">(+{-drop:.1f})</span>' if drop < 0 else ' <span class="drop">(0)</span>'
    value = (slot.single or slot.eot).pct
    return _td(content, f"{value:.4f}", "\n\n".join(titles))


def _claim_td(row: Row) -> str:
    clean = {c["metric"]: c for c in row.claims() if c.get("attack") == "clean"}
    robust = [c for c in row.claims() if c.get("attack") not in (None, "clean")]
    parts = []
    if "ACC" in clean:
        auc = f" / {clean['AUC']['value']:.2f}" if "AUC" in clean else ""
        parts.append(f"{clean['ACC']['value']:.2f}{auc}")
    parts += [f"{c['metric']} {c['value']:.2f}" for c in robust]
    title = "\n".join(f"{c['table']}, {c.get('paper_name', '')}: {c['metric']} {c['value']} "
                      f"({c.get('budget', 'paper budget')})" for c in row.claims())
    value = clean["ACC"]["value"] if "ACC" in clean else None
    return _td("; ".join(parts), value, title, "claim")


def _verdict_td(row: Row) -> str:
    verdict = row.verdict()
    cls = {"fail": "fail", "ok": "ok", "inconclusive": "inconclusive", "not run": "notrun"}[verdict]
    label = {"fail": "FAIL", "ok": "ok", "inconclusive": "inconclusive", "not run": "not run"}[verdict]
    fired = ", ".join(row.fired())
    title = "\n".join(f"{c['name']}: {c['status']}" + (f" - {c['detail']}" if c["detail"] else "")
                      + (f" (statistic {c['statistic']:.4g})" if c["statistic"] is not None else "")
                      + (f" (p = {c['p_value']:.3g})" if c["p_value"] is not None else "")
                      for c in row.checks()) or "no masking checks were run for this entry"
    content = f'<span class="badge {cls}">{label}</span>' + (f" {escape(fired)}" if fired else "")
    return _td(content, verdict, title, "l")


def _model_td(row: Row) -> str:
    e = row.entry
    name = e["model"] + options_text(e)  # checkpoints that differ by an option stay apart
    content = escape(name)
    if row.collapsed():
        content += ' <span class="badge collapsed">collapsed: one class</span>'
    if row.source():
        content += ' <span class="badge external">external</span>'
    title = (f"checkpoint sha256 {e['checkpoint_sha256']}\ntask {e['task']}, seed {e['seed']}, "
             f"subset {e['subset']}\nfile entries/{e.get('_file', '')}")
    if row.source():
        title += f"\nadded from elsewhere: {row.source()}"
    return _td(content, name, title, "l")


def _row_html(row: Row, attacks: list[str], probes: list[str]) -> str:
    e = row.entry
    classes = [c for c, on in (("flagged", row.verdict() == "fail"), ("collapsed", row.collapsed()),
                               ("external", bool(row.source()))) if on]
    data = {"dataset": row.dataset, "model": e["model"], "defense": e["defense"], "verdict": row.verdict()}
    attrs = "".join(f' data-{k}="{_attr(v)}"' for k, v in data.items())
    attrs += f' class="{" ".join(classes)}"' if classes else ""
    worst = row.worst()
    budget = entry_budget_text(e)
    clean = row.clean
    code = row.code()
    cells = [
        _td(escape(row.dataset), row.dataset, f"task {e['task']}", "l"),
        _model_td(row),
        _td(escape(e["defense"]), e["defense"], "", "l"),
        _td(escape(e["subset"]), clean.n if clean else None, f"n = {clean.n}" if clean else ""),
        _td(escape(row.preset), row.preset, "attack preset (step rule); attacks without a step run once",
            "l"),
        _td(escape(budget), budget, json.dumps(e["training_budget"], sort_keys=True), "l"),
        _td(f'<span class="badge {"ok" if code == "current" else "older"}">{code}</span>', code,
            f"code {e['code_version']} (this checkout: {code_version()})", "l"),
        _td(f"{clean.pct:.1f} <span class=\"ci\">{clean.interval()}</span>" if clean else "",
            f"{clean.pct:.4f}" if clean else None, clean.title if clean else ""),
        _td(f"{100 * row.auc:.1f}" if row.auc is not None else "",
            f"{100 * row.auc:.4f}" if row.auc is not None else None, "clean ROC AUC (%)"),
        _claim_td(row),
        _td(f"{worst.pct:.1f} <span class=\"ci\">{escape(worst.attack)}"
            f"{' EOT' if worst.protocol == 'eot' else ''}</span>" if worst else "",
            f"{worst.pct:.4f}" if worst else None,
            f"worst case over attacks:\n{worst.title}" if worst else "", "worst"),
        _verdict_td(row),
        *(_slot_td(row.slots.get(a)) for a in attacks),
        *(_slot_td(row.probes.get(p)) for p in probes),
    ]
    return f"<tr{attrs}>" + "".join(cells) + "</tr>"


HEADERS = [("dataset", "l", ""), ("model", "l", ""), ("defense", "l", ""), ("subset", "", "test subset (n)"),
           ("preset", "l", ""), ("training budget", "l", ""),
           ("code", "l", "current: made by this checkout's result-deciding code"),
           ("clean ACC", "", "clean accuracy % [95% interval]"), ("AUC", "", "clean ROC AUC %"),
           ("paper", "", "the paper's claim for this entry (ACC / AUC %), at the paper's budget"),
           ("worst case", "", "lowest robust accuracy over the row's attacks at eps 4/255, EOT included"),
           ("masking", "l", "gradient-masking checks: the ones that fired")]


def _filters(rows: list[Row]) -> str:
    parts = []
    for name in FILTERS:
        values = sorted({{"dataset": r.dataset, "model": r.entry["model"], "defense": r.entry["defense"],
                          "verdict": r.verdict()}[name] for r in rows})
        options = "".join(f'<option value="{_attr(v)}">{escape(v)}</option>' for v in values)
        parts.append(f'<label>{name} <select data-filter="{name}" id="filter-{name}">'
                     f'<option value="">all</option>{options}</select></label>')
    return '<div class="filters">' + "".join(parts) + '<span id="shown"></span></div>'


def _budget_box(rows: list[Row]) -> str:
    budgets = Counter(entry_budget_text(r.entry) for r in rows)
    subsets = Counter(r.entry["subset"] for r in rows)
    items = "".join(f"<li>{escape(b)} &mdash; {n} row{'s' * (n != 1)}</li>"
                    for b, n in sorted(budgets.items()))
    subs = ", ".join(f"{escape(s)} ({n})" for s, n in sorted(subsets.items()))
    return ('<div class="budget"><b>Budget these rows were measured with</b> (training budget per '
            f"checkpoint; the paper's: {escape(PAPER_BUDGET)}):<ul>{items}</ul>test subsets: {subs}. "
            "Robust accuracy is over all n test points (a point wrong on clean images counts as broken), "
            "attacks at eps 4/255 unless a column says otherwise.</div>")


LEGEND = ('<p class="legend">Hover a number for its n, 95% bootstrap interval, settings, versions, device '
          'and wall time. Attack cells read <i>single draw</i> / <span class="eot">EOT</span> '
          '<span class="drop">(&minus;drop)</span> for randomized models. Red rows: a gradient-masking '
          "check failed (named in the masking column); purple edge: the model is right on one class only, so "
          "its 'robust accuracy' is that class's share; blue edge: an entry added from elsewhere (its source "
          "on hover over the model). <i>older code</i>: measured by result-deciding code other than this "
          "checkout's. Click a column header to sort.</p>")


def render_page(title: str, rows: list[Row], nav: list[tuple[str, str]], plots: list[str],
                superseded: int = 0) -> str:
    """One page: header, budget, filters, the sortable table, the sweep plots."""
    attacks, probes = columns(rows)
    head = "".join(f'<th class="{cls}" title="{_attr(tip)}">{escape(name)}</th>' if tip else
                   f'<th class="{cls}">{escape(name)}</th>' for name, cls, tip in HEADERS)
    head += "".join(f"<th>{escape(a)}</th>" for a in attacks)
    head += "".join(f'<th title="a probe off the paper\'s eps">{escape(p)}</th>' for p in probes)
    body = "\n".join(_row_html(r, attacks, probes) for r in rows)
    links = " ".join(f'<a href="{_attr(href)}">{escape(text)}</a>' for text, href in nav)
    figures = "".join(f'<img src="{_attr(p)}" alt="{_attr(Path(p).stem)}">' for p in plots)
    plots_html = f'<h2>Eps sweeps</h2><div class="plots">{figures}</div>' if plots else ""
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(title)}</title>\n<style>\n{_static('board.css')}</style>\n</head>\n<body>\n"
            f"<nav>{links}</nav>\n<h1>{escape(title)}</h1>\n"
            f'<p class="lead">{len(rows)} rows: one per model, defense, dataset, test subset and attack '
            "preset. "
            "Written by <code>medrobust leaderboard render</code> from the entry files alone.</p>\n"
            + (f'<p class="lead">{escape(superseded_text(superseded))}</p>\n' if superseded else "") +
            f"{_budget_box(rows)}\n{LEGEND}\n{_filters(rows)}\n<div class=\"wrap\"><table class=\"board\">"
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table></div>\n{plots_html}\n"
            f"<script>\n{_static('board.js')}</script>\n</body>\n</html>\n")


def write_site(rows: list[Row], out: Path, plots: dict[str, list[str]],
               superseded: dict[str, int] | None = None) -> list[Path]:
    """``index.html`` (every row) and ``<dataset>.html`` per dataset; ``plots`` maps dataset -> SVG paths
    relative to ``out``; ``superseded`` counts the older entries left out, per dataset."""
    superseded = superseded or {}
    datasets = sorted({r.dataset for r in rows})
    nav = [("all datasets", "index.html"), *((d, f"{d}.html") for d in datasets)]
    pages = {"index.html": ("medrobust leaderboard: all datasets", rows,
                            [p for d in datasets for p in plots.get(d, [])])}
    for dataset in datasets:
        own = [r for r in rows if r.dataset == dataset]
        pages[f"{dataset}.html"] = (f"medrobust leaderboard: {dataset}", own, plots.get(dataset, []))
    paths = []
    for name, (title, page_rows, page_plots) in pages.items():
        path = out / name
        hidden = sum(superseded.values()) if name == "index.html" else superseded.get(name[:-len(".html")], 0)
        path.write_text(render_page(title, page_rows, nav, page_plots, hidden), encoding="utf-8")
        paths.append(path)
    return paths
