"""Gradient-masking checks: the symptoms of Athalye et al. (2018) and Carlini et al. (2019).

Each check reads the stored rows of one evaluated model (one checkpoint on one
task) and returns pass, fail, inconclusive (the data point the masking way but
cannot decide at this n) or n/a (the rows it needs are not there):

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
  accuracy means the single-draw number (the paper's protocol) overstates
  robustness;
- ``clean-right-on-several-classes``: a model right on the clean images of
  one class only is a constant predictor (a collapsed training run); no
  attack can flip a constant, so its "robust accuracy" is that class's share
  of the test subset, not robustness. Not gradient masking, but it reads
  exactly like robustness in a table, so it is checked the same way.

How a difference is decided
    All cells of one checkpoint, task and subset score the same test points and
    every row keeps its per-point flags, so two cells are compared point by
    point with the exact McNemar test: a binomial test on the discordant points
    (right in one cell, wrong in the other), one-sided in the masking direction
    because every check asks a one-sided question ("does the larger eps leave
    MORE points correct?"). Points both cells agree on carry no information;
    a 12.5-point gap on 40 points made of 7 discordant points one way and 2 the
    other has p = 0.09 and is not evidence. A check that makes several
    comparisons fails when one of them has p < ALPHA / (number of comparisons)
    (Bonferroni), so an honest model fails a check at most ALPHA of the time.
    The stored p-value is that Bonferroni-adjusted one; the statistic is the
    number of masking-direction discordant points that the test counted.
    The large-eps check is an exact one-sided binomial test of the correct
    points against half of chance; the one-class check an exact one-sided
    binomial test of each class's recall against ``tolerance(n)``.

Randomized models: the noise of scoring itself
    McNemar's null already allows flips that are as likely both ways, but a
    randomized model's need not be: an adversarial example on the decision
    boundary flips back to correct under a fresh draw far more often than one
    deep in a wrong class, so two cells of equal strength can differ one way
    by scoring alone. ``draw_noise`` = d is the measured fraction of points
    whose scored prediction changes between two independent scorings of the
    same inputs. The rule: up to ceil(d x n_attacked) masking-direction
    discordant points (n_attacked: the larger of the two cells' attacked
    counts) are credited to scoring noise and removed before the test, i.e.
    only the excess beyond what scoring alone can produce is tested. The
    large-eps test takes the same credit off the correct points. When d is not
    measured (None) nothing is credited and the detail says so.

Rows without per-point flags (old stores, or a frame read without them) fall
back to the unpaired rule: a difference beyond ``tolerance(n)`` = max(2 points,
2/n) fails (10 points for EOT), and the detail says "unpaired".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binom

from robustbench_med.store import unpack_flags

ALPHA = 0.05
"""Family-wise false-alarm rate of one check on an honest model: the conventional 5%. A false 'fail'
brands a model as masked in a published table, so the rate is fixed per check (Bonferroni over its
comparisons), and what cannot reach it is reported as inconclusive rather than passed silently."""
LARGE_EPS = 0.3
EOT_DROP = 0.10  # the unpaired fallback's EOT line only
WHITE = "white-box"
PASS, FAIL, INCONCLUSIVE, NA = "pass", "fail", "inconclusive", "n/a"


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict; ``statistic`` and ``p_value`` are the test's evidence (None: no test ran)."""

    name: str
    status: str  # "pass", "fail", "inconclusive" or "n/a"
    detail: str
    statistic: float | None = None
    p_value: float | None = None


@dataclass(frozen=True)
class Noise:
    """How far two cells of this model may differ by scoring alone."""

    randomized: bool
    draw_noise: float | None = None

    def credit(self, n_attacked: int) -> int:
        """Discordant points scoring noise can explain; rounded up so noise never tips a verdict."""
        if not self.randomized or not self.draw_noise:
            return 0
        return math.ceil(self.draw_noise * n_attacked - 1e-9)

    def note(self) -> str:
        if not self.randomized:
            return ""
        if self.draw_noise is None:
            return "; randomized model, scoring noise not measured (draw_noise None): nothing credited to it"
        return (f"; randomized model: re-scoring flips {_pct(self.draw_noise)} of points, as many attacked "
                "points credited to scoring noise")


@dataclass(frozen=True)
class Comparison:
    """A suspect cell (higher than it should be if masked) against its reference cell."""

    text: str
    masked: bool  # points the masking way (beyond the credit; unpaired: beyond the tolerance)
    p_value: float | None = None  # one-sided exact p before Bonferroni; None when unpaired
    statistic: float | None = None


def tolerance(n: int) -> float:
    return max(0.02, 2.0 / max(n, 1))


def exact_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): the one-sided exact p-value of k successes."""
    return 1.0 if k <= 0 else float(binom.sf(k - 1, n, p))


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


def _flags(row: pd.Series) -> np.ndarray | None:
    blob = row.get("flags")
    if not isinstance(blob, bytes | bytearray | memoryview):
        return None
    return unpack_flags(bytes(blob), int(row["n"]))


def _attacked(row: pd.Series) -> int:
    value = row.get("n_attacked")
    return int(row["n"]) if value is None or pd.isna(value) else int(value)


def compare(suspect: pd.Series, reference: pd.Series, label: str, noise: Noise,
            margin: float | None = None) -> Comparison:
    """Exact one-sided McNemar on the two cells' flags; the unpaired rule when either lacks them."""
    a, b = _flags(suspect), _flags(reference)
    if a is None or b is None or len(a) != len(b):
        limit = tolerance(int(suspect["n"])) if margin is None else margin
        diff = float(suspect["accuracy"] - reference["accuracy"])
        return Comparison(f"{label}: unpaired (no per-point flags), {100 * diff:+.1f} points against a "
                          f"tolerance of {100 * limit:.1f}", masked=diff > limit)
    up, down = int((a & ~b).sum()), int((~a & b).sum())
    credit = min(up, noise.credit(max(_attacked(suspect), _attacked(reference))))
    excess = up - credit
    p = exact_tail(excess, excess + down, 0.5)
    credited = f" ({credit} credited to scoring noise)" if credit else ""
    return Comparison(f"{label}: exact McNemar (one-sided), {up}{credited} vs {down} discordant, "
                      f"p = {p:.3g}", masked=excess > down, p_value=p, statistic=float(excess))


def decide(name: str, comparisons: list[Comparison], quiet: str, noise: Noise, n: int) -> CheckResult:
    """fail: a comparison is significant after Bonferroni; inconclusive: one points the masking way
    but is not; pass: none points the masking way."""
    paired = [c for c in comparisons if c.p_value is not None]

    def adjusted(c: Comparison) -> float:
        return 0.0 if c.p_value is None else min(1.0, c.p_value * len(paired))

    failed = [c for c in comparisons if c.masked and adjusted(c) < ALPHA]
    unsure = [c for c in comparisons if c.masked and c not in failed]
    best = min(paired, key=lambda c: c.p_value or 0.0, default=None)
    statistic, p = (best.statistic, adjusted(best)) if best else (None, None)
    family = f" (Bonferroni over {len(paired)} comparisons: p x {len(paired)})" if len(paired) > 1 else ""
    if failed:
        return CheckResult(name, FAIL, "; ".join(c.text for c in failed) + family + noise.note(),
                           statistic, p)
    if unsure:
        return CheckResult(name, INCONCLUSIVE, "; ".join(c.text for c in unsure) + family +
                           f"; inconclusive at this n ({n} points)" + noise.note(), statistic, p)
    closest = f" (closest: {best.text})" if best else ""
    return CheckResult(name, PASS, quiet + closest + noise.note(), statistic, p)


def _n(rows: pd.DataFrame) -> int:
    return int(rows["n"].max()) if len(rows) else 0


def check_black_box(rows: pd.DataFrame, noise: Noise) -> CheckResult:
    name = "black-box-beats-white-box"
    comparisons = []
    for eps, group in rows.groupby("eps"):
        white, black = group[group["box"] == WHITE], group[group["box"] != WHITE]
        if white.empty or black.empty:
            continue
        best = white.loc[white["accuracy"].idxmin()]
        for _, other in black.iterrows():
            comparisons.append(compare(best, other, f"{other['attack']} {_pct(other['accuracy'])} vs "
                                       f"{best['attack']} {_pct(best['accuracy'])} at eps {eps:.4f}", noise))
    if not comparisons:
        return CheckResult(name, NA, "needs white-box and black-box rows at one eps")
    return decide(name, comparisons, "no black-box attack beats the best white-box one", noise, _n(rows))


def against_earlier(group: pd.DataFrame, axis: str) -> Iterator[tuple[pd.Series, pd.Series]]:
    """Each row with the lowest-accuracy row at a smaller ``axis``: the cell it must not beat."""
    group = group.sort_values(axis)
    for _, row in group.iterrows():
        earlier = group[group[axis] < row[axis]]
        if not earlier.empty:
            yield row, earlier.loc[earlier["accuracy"].idxmin()]


def check_eps_monotone(rows: pd.DataFrame, noise: Noise) -> CheckResult:
    name = "accuracy-rises-with-eps"
    independent = rows[~rows["nested"] & (rows["box"] == WHITE)]
    comparisons = []
    for (attack, preset, protocol), group in independent.groupby(["attack", "preset", "protocol"]):
        for row, before in against_earlier(group, "eps"):
            comparisons.append(compare(row, before, f"{attack} ({preset}, {protocol}) "
                                       f"{_pct(row['accuracy'])} at eps {row['eps']:.4f} vs "
                                       f"{_pct(before['accuracy'])} at eps {before['eps']:.4f}", noise))
    # The large-eps probe must also beat every white-box attack run at a smaller eps.
    for _protocol, group in independent.groupby("protocol"):
        for _, probe in group[group["eps"] >= LARGE_EPS - 1e-9].iterrows():
            smaller = group[group["eps"] < probe["eps"]]
            if smaller.empty:
                continue
            best = smaller.loc[smaller["accuracy"].idxmin()]
            comparisons.append(compare(probe, best, f"{probe['attack']} {_pct(probe['accuracy'])} at eps "
                                       f"{probe['eps']:.2f} vs {best['attack']} {_pct(best['accuracy'])} "
                                       f"at eps {best['eps']:.4f}", noise))
    if not comparisons:
        return CheckResult(name, NA, "needs white-box rows at two or more eps (independent cells)")
    return decide(name, comparisons, "accuracy never rises with eps", noise, _n(rows))


def check_large_eps(rows: pd.DataFrame, n_classes: int, noise: Noise) -> CheckResult:
    """Exact one-sided binomial test of the best large-eps attack's correct points against half of
    chance: needs no pairing, so it runs on rows without flags too (k = accuracy x n)."""
    name = "large-eps-above-chance"
    large = rows[(rows["eps"] >= LARGE_EPS - 1e-9) & (rows["box"] == WHITE)]
    if large.empty:
        return CheckResult(name, NA, f"needs a white-box row at eps >= {LARGE_EPS}")
    chance = 1.0 / max(n_classes, 2)
    limit = max(0.05, chance / 2)
    best = large.loc[large["accuracy"].idxmin()]
    n = int(best["n"])
    flags = _flags(best)
    correct = int(flags.sum()) if flags is not None else round(float(best["accuracy"]) * n)
    credit = min(correct, noise.credit(_attacked(best)))
    k = correct - credit
    p = exact_tail(k, n, limit)
    credited = f", {credit} credited to scoring noise" if credit else ""
    detail = (f"{best['attack']} at eps {best['eps']:.2f}: {_pct(best['accuracy'])} "
              f"({correct}/{n}{credited}; limit {_pct(limit)}, chance {_pct(chance)}): exact binomial "
              f"test against the limit (one-sided), p = {p:.3g}")
    status = PASS if k <= limit * n else FAIL if p < ALPHA else INCONCLUSIVE
    suffix = f"; inconclusive at this n ({n} points)" if status == INCONCLUSIVE else ""
    return CheckResult(name, status, detail + suffix + noise.note(), float(k), p)


def check_more_steps(rows: pd.DataFrame, noise: Noise) -> CheckResult:
    name = "more-steps-raise-accuracy"
    iterative = rows[rows["steps"].notna() & (rows["box"] == WHITE)]
    comparisons = []
    for (family, preset, protocol, _eps), group in iterative.groupby(["family", "preset", "protocol", "eps"]):
        for row, before in against_earlier(group, "steps"):
            comparisons.append(compare(row, before, f"{family}-{int(row['steps'])} ({preset}, {protocol}) "
                                       f"{_pct(row['accuracy'])} vs {_pct(before['accuracy'])} with "
                                       f"{int(before['steps'])} steps", noise))
    if not comparisons:
        return CheckResult(name, NA, "needs one attack at two or more iteration counts")
    return decide(name, comparisons, "more iterations never raise accuracy", noise, _n(rows))


def check_eot(rows: pd.DataFrame, noise: Noise) -> CheckResult:
    name = "eot-lowers-accuracy"
    if not noise.randomized:
        return CheckResult(name, NA, "deterministic model")
    singles, eot = rows[rows["protocol"] == "single-draw"], rows[rows["protocol"] == "eot"]
    comparisons = []
    for _, single in singles.iterrows():
        match = eot[(eot["attack"] == single["attack"]) & (eot["preset"] == single["preset"]) &
                    (eot["eps"] == single["eps"])]
        for _, averaged in match.iterrows():
            comparisons.append(compare(single, averaged, f"{single['attack']} ({single['preset']}): "
                                       f"single-draw protocol {_pct(single['accuracy'])}, EOT "
                                       f"{_pct(averaged['accuracy'])}", noise, margin=EOT_DROP))
    if not comparisons:
        return CheckResult(name, NA, "needs one attack under both the single-draw and the EOT protocol")
    return decide(name, comparisons, "EOT never lowers accuracy", noise, _n(rows))


def check_one_class(clean: tuple[np.ndarray, np.ndarray] | None) -> CheckResult:
    """``clean``: the per-point clean flags and the labels of the same test points. A class counts
    as learned when an exact one-sided binomial test puts its recall above ``tolerance(n)``."""
    name = "clean-right-on-several-classes"
    if clean is None:
        return CheckResult(name, NA, "needs the clean predictions and labels")
    flags, labels = (np.asarray(a) for a in clean)
    classes = np.unique(labels)
    if len(classes) < 2:
        return CheckResult(name, NA, "the test subset holds a single class")
    floor = tolerance(len(flags))
    recall = {int(c): float(flags[labels == c].mean()) for c in classes}
    p = sorted(min(1.0, len(classes) * exact_tail(int(flags[labels == c].sum()), int((labels == c).sum()),
                                                    floor)) for c in classes)[1]
    detail = ("clean recall per class: " + ", ".join(f"{c}: {_pct(r)}" for c, r in recall.items()) +
              f"; second class above {_pct(floor)}: exact binomial test, p = {p:.3g}")
    second = sorted(recall.values())[-2]
    if second <= floor:
        return CheckResult(name, FAIL, f"{detail} (a constant predictor: its robust accuracy is the share "
                                       "of one class, not robustness)", second, p)
    status = PASS if p < ALPHA else INCONCLUSIVE
    return CheckResult(name, status, detail + ("" if status == PASS else "; inconclusive at this n"),
                       second, p)


def run_checks(rows: pd.DataFrame, *, n_classes: int, randomized: bool,
               clean: tuple[np.ndarray, np.ndarray] | None = None,
               draw_noise: float | None = None) -> list[CheckResult]:
    """All checks on the rows of one evaluated model (one checkpoint on one task). ``rows`` should
    carry the ``flags`` column (``ResultStore.frame(with_flags=True)``) for the paired tests;
    ``clean`` is (clean flags, labels) of the same test points, for the one-class check;
    ``draw_noise`` the measured re-scoring flip rate of a randomized model (see the module doc;
    ignored for a deterministic one)."""
    attacked = _with_meta(rows)
    noise = Noise(randomized, draw_noise)
    return [check_black_box(attacked, noise), check_eps_monotone(attacked, noise),
            check_large_eps(attacked, n_classes, noise), check_more_steps(attacked, noise),
            check_eot(attacked, noise), check_one_class(clean)]
