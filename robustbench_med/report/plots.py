"""Eps-sweep plots (the paper's Fig. 6): accuracy against eps, one line per model/defense.

Each line carries its 95% bootstrap band, and the figure's footnote carries n,
seed, checkpoint hashes and library versions, so a plot can be traced back to
the rows that made it.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

MIN_POINTS = 3  # an attack/preset needs this many eps values to count as a sweep


def sweep_groups(df: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(task, attack, preset) combinations with at least MIN_POINTS eps values for some model."""
    attacked = df[df["attack"] != "clean"]
    counts = attacked.groupby(["task", "attack", "preset", "model", "defense", "protocol"])["eps"].nunique()
    found = counts[counts >= MIN_POINTS].reset_index()
    return sorted({(r.task, r.attack, r.preset) for r in found.itertuples()})


def _footnote(rows: pd.DataFrame) -> str:
    versions = json.loads(rows["versions"].iloc[0]) if rows["versions"].iloc[0] else {}
    libs = ", ".join(f"{k} {versions[k]}" for k in ("medrobust", "torch", "torchattacks") if k in versions)
    checkpoints = ", ".join(sorted({f"{m}{'+' + d if d not in ('', 'none') else ''} {c[:8]}"
                                    for m, d, c in zip(rows["model"], rows["defense"],
                                                       rows["checkpoint_sha"], strict=True)}))
    return (f"n = {', '.join(str(n) for n in sorted(rows['n'].unique()))}; seed "
            f"{', '.join(str(s) for s in sorted(rows['seed'].unique()))}; {libs}\ncheckpoints: {checkpoints}")


def plot_sweep(df: pd.DataFrame, task: str, attack: str, preset: str, out_dir: str | Path) -> list[Path]:
    """Draw one sweep figure as PNG and SVG; return the two paths."""
    rows = df[(df["task"] == task) & (df["attack"] == attack) & (df["preset"] == preset)].copy()
    rows["defense"] = rows["defense"].replace("", "none")
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for (model, defense, protocol), line in rows.groupby(["model", "defense", "protocol"]):
        if line["eps"].nunique() < 2:
            continue
        line = line.sort_values("eps")
        label = model if defense == "none" else f"{model}+{defense}"
        if protocol not in ("deterministic",):
            label += f" ({protocol})"
        ax.plot(line["eps"], 100 * line["accuracy"], marker="o", ms=3, label=label)
        ax.fill_between(line["eps"], 100 * line["ci_low"], 100 * line["ci_high"], alpha=0.2)
    ax.set_xlabel("eps (L-inf, pixel scale [0, 1])")
    ax.set_ylabel("robust accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(f"{attack} ({preset} preset) on {task}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.text(0.01, 0.01, _footnote(rows), fontsize=6, va="bottom")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"sweep-{task.replace(':', '_')}-{attack}-{preset}"
    paths = [out / f"{stem}.png", out / f"{stem}.svg"]
    for path in paths:
        fig.savefig(path, dpi=150)
    plt.close(fig)
    return paths


def plot_all_sweeps(df: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    paths: list[Path] = []
    for task, attack, preset in sweep_groups(df):
        paths += plot_sweep(df, task, attack, preset, out_dir)
    return paths
