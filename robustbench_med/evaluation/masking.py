"""Gradient-masking checks: the symptoms of Athalye et al. (2018) and Carlini et al. (2019).

Each check reads the stored rows of one evaluated model (one checkpoint on one
task) and returns pass, fail, or n/a (the rows it needs are not there):

- ``black-box-beats-white-box``: a black-box or transfer attack must not find
  more adversarial examples than the strongest white-box attack;
- ``accuracy-rises-with-eps``: a larger ball must not leave more points
  correct, for one attack across eps, and for the large-eps probe against
  every white-box attack at a smaller eps (independent cells only: nested
  sweep cells are monotone by construction, as they only attack the
  survivors of the smaller eps);
- ``large-eps-above-chance``: at eps >= 0.3 a working white-box attack drives
  accuracy far below chance; staying above half of chance means the gradient
  is not usable;
- ``more-steps-raise-accuracy``: more iterations of the same attack must not
  raise accuracy;
- ``eot-lowers-accuracy``: for a randomized model, EOT gradients lowering
  accuracy by more than 10 points means the single-draw number (the paper's
  protocol) overstates robustness;
- ``clean-right-on-several-classes``: a model right on the clean images of
  one class only is a constant predictor (a collapsed training run); no
  attack can flip a constant, so its "robust accuracy" is that class's share
  of the test subset, not robustness. Not gradient masking, but it reads
  exactly like robustness in a table, so it is checked the same way.

A difference counts only beyond ``tolerance(n)`` = max(2 points, 2/n), so one
point of noise on a small medical test set does not fail a check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

LARGE_EPS = 0.3
EOT_DROP = 0.10
WHITE = "white-box"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # "pass", "fail" or "n/a"
    detail: str


def tolerance(n: int) -> float:
    return max(0.02, 2.0 / max(n, 1))


def _settings(rows: pd.DataFrame) -> list[dict]:
    return [json.loads(s) if isinstance(s, str) and s else {} for s in rows["settings"]]


def _with_meta(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows[rows["attack"] != "clean"].copy()
    meta = _settings(rows)
    rows["box"] = [m.get("box", WHITE) for m in meta]
    rows["nested"] = [bool(m.get("nested_from")) for m in meta]
    rows["steps"] = [m.get("steps") for m in meta]
    rows["family"] = [a.rsplit("-", 1)[0] if a.rsplit("-", 1)[-1].isdigit() else a
                      for a in rows["attack"]]
    return rows


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def check_black_box(rows: pd.DataFrame) -> CheckResult:
    name = "black-box-beats-white-box"
    found = []
    for eps, group in rows.groupby("eps"):
        white, black = group[group["box"] == WHITE], group[group["box"] != WHITE]
        if white.empty or black.empty:
            continue
        best_white = white.loc[white["accuracy"].idxmin()]
        best_black = black.loc[black["accuracy"].idxmin()]
        if best_black["accuracy"] < best_white["accuracy"] - tolerance(int(best_white["n"])):
            found.append(f"{best_black['attack']} {_pct(best_black['accuracy'])} < "
                         f"{best_white['attack']} {_pct(best_white['accuracy'])} at eps {eps:.4f}")
    if not found and not ((rows["box"] == WHITE).any() and (rows["box"] != WHITE).any()):
        return CheckResult(name, "n/a", "needs white-box and black-box rows at one eps")
    return CheckResult(name, "fail" if found else "pass",
                       "; ".join(found) or "every black-box attack is weaker than the best white-box one")


def first_rise(group: pd.DataFrame, axis: str) -> tuple[pd.Series, float] | None:
    """The first row, along ``axis``, whose accuracy beats the best one before it by more than noise."""
    group = group.sort_values(axis)
    accuracy = group["accuracy"].tolist()
    for i in range(1, len(accuracy)):
        if accuracy[i] > min(accuracy[:i]) + tolerance(int(group["n"].iloc[i])):
            return group.iloc[i], min(accuracy[:i])
    return None


def check_eps_monotone(rows: pd.DataFrame) -> CheckResult:
    name = "accuracy-rises-with-eps"
    independent = rows[~rows["nested"] & (rows["box"] == WHITE)]
    found, compared = [], 0
    for (attack, preset, protocol), group in independent.groupby(["attack", "preset", "protocol"]):
        if group["eps"].nunique() < 2:
            continue
        compared += 1
        rise = first_rise(group, "eps")
        if rise is not None:
            row, before = rise
            found.append(f"{attack} ({preset}, {protocol}) {_pct(row['accuracy'])} at eps "
                         f"{row['eps']:.4f} > {_pct(before)} at a smaller eps")
    # The large-eps probe must also beat every white-box attack run at a smaller eps.
    for _protocol, group in independent.groupby("protocol"):
        for _, probe in group[group["eps"] >= LARGE_EPS - 1e-9].iterrows():
            smaller = group[group["eps"] < probe["eps"]]
            if smaller.empty:
                continue
            compared += 1
            best = smaller.loc[smaller["accuracy"].idxmin()]
            if probe["accuracy"] > best["accuracy"] + tolerance(int(probe["n"])):
                found.append(f"{probe['attack']} {_pct(probe['accuracy'])} at eps {probe['eps']:.2f} > "
                             f"{best['attack']} {_pct(best['accuracy'])} at eps {best['eps']:.4f}")
    if not compared:
        return CheckResult(name, "n/a", "needs white-box rows at two or more eps (independent cells)")
    return CheckResult(name, "fail" if found else "pass",
                       "; ".join(found) or "accuracy never rises with eps")


def check_large_eps(rows: pd.DataFrame, n_classes: int) -> CheckResult:
    name = "large-eps-above-chance"
    large = rows[(rows["eps"] >= LARGE_EPS - 1e-9) & (rows["box"] == WHITE)]
    if large.empty:
        return CheckResult(name, "n/a", f"needs a white-box row at eps >= {LARGE_EPS}")
    chance = 1.0 / max(n_classes, 2)
    limit = max(0.05, chance / 2)
    best = large.loc[large["accuracy"].idxmin()]
    status = "fail" if best["accuracy"] > limit else "pass"
    return CheckResult(name, status, f"{best['attack']} at eps {best['eps']:.2f}: "
                       f"{_pct(best['accuracy'])} (limit {_pct(limit)}, chance {_pct(chance)})")


def check_more_steps(rows: pd.DataFrame) -> CheckResult:
    name = "more-steps-raise-accuracy"
    iterative = rows[rows["steps"].notna() & (rows["box"] == WHITE)]
    found, compared = [], 0
    for key, group in iterative.groupby(["family", "preset", "protocol", "eps"]):
        if group["steps"].nunique() < 2:
            continue
        compared += 1
        rise = first_rise(group, "steps")
        if rise is not None:
            row, before = rise
            found.append(f"{key[0]}-{int(row['steps'])} ({key[1]}, {key[2]}) "
                         f"{_pct(row['accuracy'])} > {_pct(before)} with fewer steps")
    if not compared:
        return CheckResult(name, "n/a", "needs one attack at two or more iteration counts")
    return CheckResult(name, "fail" if found else "pass",
                       "; ".join(found) or "more iterations never raise accuracy")


def check_eot(rows: pd.DataFrame, randomized: bool) -> CheckResult:
    name = "eot-lowers-accuracy"
    if not randomized:
        return CheckResult(name, "n/a", "deterministic model")
    paper, eot = rows[rows["protocol"] == "paper"], rows[rows["protocol"] == "eot"]
    pairs = paper.merge(eot, on=["attack", "preset", "eps"], suffixes=("_paper", "_eot"))
    if pairs.empty:
        return CheckResult(name, "n/a", "needs one attack under both the paper and the EOT protocol")
    pairs["drop"] = pairs["accuracy_paper"] - pairs["accuracy_eot"]
    worst = pairs.loc[pairs["drop"].idxmax()]
    status = "fail" if worst["drop"] > EOT_DROP else "pass"
    return CheckResult(name, status, f"{worst['attack']} ({worst['preset']}): paper protocol "
                       f"{_pct(worst['accuracy_paper'])}, EOT {_pct(worst['accuracy_eot'])}")


def check_one_class(clean: tuple[np.ndarray, np.ndarray] | None) -> CheckResult:
    """``clean``: the per-point clean flags and the labels of the same test points."""
    name = "clean-right-on-several-classes"
    if clean is None:
        return CheckResult(name, "n/a", "needs the clean predictions and labels")
    flags, labels = (np.asarray(a) for a in clean)
    classes = np.unique(labels)
    if len(classes) < 2:
        return CheckResult(name, "n/a", "the test subset holds a single class")
    recall = {int(c): float(flags[labels == c].mean()) for c in classes}
    right = [c for c, r in recall.items() if r > tolerance(len(flags))]
    detail = "clean recall per class: " + ", ".join(f"{c}: {_pct(r)}" for c, r in recall.items())
    if len(right) > 1:
        return CheckResult(name, "pass", detail)
    return CheckResult(name, "fail", f"{detail} (a constant predictor: its robust accuracy is the share "
                                     "of one class, not robustness)")


def run_checks(rows: pd.DataFrame, *, n_classes: int, randomized: bool,
               clean: tuple[np.ndarray, np.ndarray] | None = None) -> list[CheckResult]:
    """All checks on the rows of one evaluated model (one checkpoint on one task); ``clean`` is
    (clean flags, labels) of the same test points, for the one-class check."""
    attacked = _with_meta(rows)
    return [check_black_box(attacked), check_eps_monotone(attacked),
            check_large_eps(attacked, n_classes), check_more_steps(attacked),
            check_eot(attacked, randomized), check_one_class(clean)]
