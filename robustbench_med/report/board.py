"""The board's rows, computed once from the entries for every renderer (HTML, Markdown, LaTeX).

One row per entry and attack preset (the paper's or the standard step rule): attacks at the paper's
eps as columns, each with its single-draw and EOT cell side by side; attacks without a step
(AutoAttack, Square, transfer) and cells off the paper's eps that are not part of a sweep (the
large-eps probe) are shown on every preset row of their entry. The worst case is the lowest
accuracy over the row's attacks at the paper's eps, both protocols included.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from robustbench_med.attacks.spec import PAPER_EPS
from robustbench_med.report.entries import options_text
from robustbench_med.report.leaderboard import EPS_TOLERANCE
from robustbench_med.versions import code_version

ONE_CLASS = "clean-right-on-several-classes"
SWEEP_POINTS = 3  # an attack at this many eps values in one entry is a sweep: plotted, not tabled
SINGLE_PROTOCOLS = ("deterministic", "single-draw", "randomized")
FAMILY_ORDER = ("pgd", "bim", "mim", "autoattack", "square", "aa-surrogate", "square-surrogate")


@dataclass
class Cell:
    """One measured number with what a reader needs to trust it."""

    accuracy: float
    ci_low: float | None
    ci_high: float | None
    n: int
    attack: str
    protocol: str
    title: str

    @property
    def pct(self) -> float:
        return 100 * self.accuracy

    def interval(self) -> str:
        if self.ci_low is None or self.ci_high is None:
            return ""
        return f"[{100 * self.ci_low:.1f}, {100 * self.ci_high:.1f}]"


@dataclass
class Slot:
    """An attack column of a row: the single-draw cell and the EOT cell (either may be missing)."""

    single: Cell | None = None
    eot: Cell | None = None

    def drop(self) -> float | None:
        """Points that EOT takes off the single-draw accuracy (positive: EOT is stronger)."""
        if self.single is None or self.eot is None:
            return None
        return self.single.pct - self.eot.pct

    def cells(self) -> list[Cell]:
        return [c for c in (self.single, self.eot) if c is not None]


@dataclass
class Row:
    entry: dict[str, Any]
    preset: str
    clean: Cell | None
    auc: float | None
    slots: dict[str, Slot] = field(default_factory=dict)
    probes: dict[str, Slot] = field(default_factory=dict)

    # -- identity and filters ------------------------------------------------
    @property
    def dataset(self) -> str:
        return self.entry["dataset"]

    @property
    def name(self) -> str:
        e = self.entry
        return e["model"] + ("" if e["defense"] == "none" else f" + {e['defense']}") + options_text(e)

    def worst(self) -> Cell | None:
        cells = [c for slot in self.slots.values() for c in slot.cells()]
        return min(cells, key=lambda c: (c.accuracy, c.attack)) if cells else None

    def checks(self) -> list[dict[str, Any]]:
        return self.entry["checks"]

    def fired(self) -> list[str]:
        return [c["name"] for c in self.checks() if c["status"] == "fail"]

    def verdict(self) -> str:
        """fail, inconclusive, ok or not run: the value the verdict filter uses."""
        if not self.checks():
            return "not run"
        if self.fired():
            return "fail"
        return "inconclusive" if any(c["status"] == "inconclusive" for c in self.checks()) else "ok"

    def verdict_text(self) -> str:
        fired = self.fired()
        unsure = [c["name"] for c in self.checks() if c["status"] == "inconclusive"]
        ran = sum(c["status"] != "n/a" for c in self.checks())
        tail = f"; inconclusive: {', '.join(unsure)}" if unsure else ""
        if not self.checks():
            return "not run"
        return f"FAIL: {', '.join(fired)}{tail}" if fired else f"ok ({ran} checks{tail})"

    def collapsed(self) -> bool:
        """Right on the clean images of one class only: its 'robust accuracy' is a class share."""
        return ONE_CLASS in self.fired()

    def code(self) -> str:
        return "current" if self.entry["code_version"] == code_version() else "older code"

    def source(self) -> str | None:
        return self.entry.get("source")

    def claims(self) -> list[dict[str, Any]]:
        return self.entry["claims"]


def budget_text(budget: dict[str, Any] | None, image_size: int | None = None,
                training_attack: str | None = None) -> str:
    """A training budget in a few words: '6 ep, fast, 28px, no aug, n_train 1000, PGD-3 (eps 4/255,
    step 2/255), defense recipe' (the attack as the entry's ``training_attack`` names it)."""
    if not budget:
        return f"{image_size}px, budget not recorded" if image_size else "budget not recorded"
    parts = [f"{budget.get('epochs')} ep", str(budget.get("recipe", "")),
             f"{budget.get('image_size', image_size)}px", "aug 4x" if budget.get("augment") else "no aug"]
    parts.append(f"n_train {budget['n_train']}" if budget.get("n_train") else "full train split")
    if training_attack:
        parts.append(training_attack)
    elif budget.get("adversarial"):
        parts.append("adversarial training")
    return ", ".join(p for p in parts if p)


def entry_budget_text(entry: dict[str, Any]) -> str:
    """:func:`budget_text` of a published entry (its budget, image size and training attack)."""
    return budget_text(entry["training_budget"], entry["image_size"], entry.get("training_attack"))


def _settings_text(settings: dict[str, Any]) -> str:
    keep = {k: v for k, v in settings.items() if k != "train"}
    return json.dumps(keep, sort_keys=True)


def make_cell(cell: dict[str, Any], entry: dict[str, Any]) -> Cell:
    """A Cell whose title carries n, interval, settings, versions, device and wall time."""
    c = Cell(cell["accuracy"], cell["ci_low"], cell["ci_high"], cell["n"], cell["attack"],
             cell["protocol"], "")
    versions = cell["versions"]
    libs = ", ".join(f"{k} {versions[k]}" for k in ("medrobust", "torch", "torchattacks", "pyautoattack")
                     if k in versions)
    wall = "?" if cell["wall_s"] is None else cell["wall_s"]
    lines = [f"{cell['attack']} ({cell['preset']} preset, {cell['protocol']} protocol), "
             f"eps {cell['eps']:.6g}",
             f"accuracy {c.pct:.1f}% {c.interval()} (95% bootstrap), n = {cell['n']}"
             + (f", {cell['n_attacked']} attacked" if cell["n_attacked"] is not None else ""),
             f"settings {_settings_text(cell['settings'])}", f"code {entry['code_version']}; {libs}",
             f"device {cell['device'] or '?'}; wall {wall} s"]
    if cell["notes"]:
        lines.append(f"notes: {cell['notes']}")
    c.title = "\n".join(lines)
    return c


def _family(attack: str) -> str:
    match = re.match(r"^(.*?)(-\d+)?$", attack)
    return match.group(1) if match else attack


def attack_order(label: str) -> tuple:
    """pgd, bim, mim, autoattack, square, transfer, then the rest; by iterations within a family;
    probes (off the paper's eps) last."""
    probe = " @ " in label
    attack = label.split(" @ ")[0]
    family = _family(attack)
    steps = re.search(r"-(\d+)$", attack)
    rank = FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER)
    return (probe, rank, family, int(steps.group(1)) if steps else 0, label)


def _column(attack: str, protocol: str) -> str:
    """The column an attack's cell goes to: EOT variants share their base attack's column."""
    if protocol == "eot":
        if attack.startswith("eot-"):
            return attack[len("eot-"):]
        if attack.endswith("-rand"):
            return attack[: -len("-rand")]
    return attack


def _is_paper_eps(eps: float) -> bool:
    return abs(eps - PAPER_EPS) < EPS_TOLERANCE


def _place(slots: dict[str, Slot], label: str, cell: dict[str, Any], entry: dict[str, Any]) -> None:
    """Put a cell into its column's single or EOT slot; an EOT variant whose base column already has
    an EOT cell keeps a column of its own name."""
    which = "eot" if cell["protocol"] == "eot" else "single"
    slot = slots.setdefault(label, Slot())
    if getattr(slot, which) is not None and label != cell["attack"]:
        slot = slots.setdefault(cell["attack"], Slot())
    setattr(slot, which, make_cell(cell, entry))


def rows_for_entry(entry: dict[str, Any]) -> list[Row]:
    """The entry's board rows: one per preset of its stepped attacks at the paper's eps."""
    cells = entry["cells"]
    clean_cells = [c for c in cells if c["attack"] == "clean"]
    attacked = [c for c in cells if c["attack"] != "clean"]
    eps_counts: dict[tuple, set] = {}
    for c in attacked:
        eps_counts.setdefault((c["attack"], c["preset"], c["protocol"]), set()).add(round(c["eps"], 6))
    at_paper = [c for c in attacked if _is_paper_eps(c["eps"])]
    stepped = [c for c in at_paper if c["settings"].get("alpha") is not None]
    shared = [c for c in at_paper if c["settings"].get("alpha") is None]
    probes = [c for c in attacked if not _is_paper_eps(c["eps"])
              and len(eps_counts[(c["attack"], c["preset"], c["protocol"])]) < SWEEP_POINTS]
    presets = sorted({c["preset"] for c in stepped}) or (["standard"] if shared else ["-"])
    clean = make_cell(clean_cells[0], entry) if clean_cells else None
    auc = clean_cells[0]["auc"] if clean_cells else None
    rows = []
    for preset in presets:
        row = Row(entry, preset, clean, auc)
        for c in [*[c for c in stepped if c["preset"] == preset], *shared]:
            _place(row.slots, _column(c["attack"], c["protocol"]), c, entry)
        for c in probes:
            label = f"{_column(c['attack'], c['protocol'])} @ {c['eps']:g} ({c['preset']})"
            _place(row.probes, label, c, entry)
        rows.append(row)
    return rows


def board_rows(entries: list[dict[str, Any]]) -> list[Row]:
    """Every board row, in a fixed order (dataset, task, model, defense, subset, preset)."""
    rows = [row for entry in entries for row in rows_for_entry(entry)]
    return sorted(rows, key=lambda r: (r.dataset, r.entry["task"], r.entry["model"], r.entry["defense"],
                                       r.entry["subset"], r.entry["checkpoint_sha256"],
                                       r.entry["code_version"], r.preset))


def superseded_text(count: int) -> str:
    """What the board says of the entries it leaves out (:mod:`robustbench_med.report.latest`)."""
    return (f"One row per checkpoint and test subset: its newest measurement. {count} older "
            f"measurement{'s' * (count != 1)} of the same checkpoints (re-run after a change to the "
            "result-deciding code) are left out here; they stay in the entry files and in the long CSV "
            "(column \"superseded\").")


def columns(rows: list[Row]) -> tuple[list[str], list[str]]:
    """The attack columns and the probe columns present in ``rows``, in display order."""
    attacks = sorted({label for r in rows for label in r.slots}, key=attack_order)
    probes = sorted({label for r in rows for label in r.probes}, key=attack_order)
    return attacks, probes
