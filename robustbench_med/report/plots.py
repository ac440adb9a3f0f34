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
# One line of a sweep plot: one evaluated model (checkpoint) on one test subset, per protocol.
LINE_KEYS = ["model", "defense", "protocol", "checkpoint_sha", "subset"]


def sweep_groups(df: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(task, attack, preset) combinations with at least MIN_POINTS eps values for some model."""
    attacked = df[df["attack"] != "clean"]
    counts = attacked.groupby(["task", "attack", "preset", *LINE_KEYS])["eps"].nunique()
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


def sweep_lines(rows: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One line per evaluated model (checkpoint and test subset): cells of other runs, such as one
    grid cell at the sweep's attack and eps, or a sweep on another subset, never join a line."""
    rows = rows.assign(defense=rows["defense"].replace("", "none"))
    found = [(key, line.sort_values("eps")) for key, line in rows.groupby(LINE_KEYS)
             if line["eps"].nunique() >= MIN_POINTS]
    names = []
    for (model, defense, protocol, _sha, _subset), _line in found:
        name = model if defense == "none" else f"{model}+{defense}"
        names.append(name if protocol == "deterministic" else f"{name} ({protocol})")
    lines = []
    for name, (key, line) in zip(names, found, strict=True):
        if names.count(name) > 1:  # the same model twice: say which checkpoint and subset
            name += f" [{key[3][:8]}, n={int(line['n'].iloc[0])}]"
        lines.append((name, line))
    return lines


# Byte-stable files: a fixed SVG id salt and no creation date or software stamp.
STABLE_RC = {"svg.hashsalt": "medrobust", "svg.fonttype": "path"}
STABLE_METADATA = {"svg": {"Date": None}, "png": {"Software": None}}


def plot_sweep(df: pd.DataFrame, task: str, attack: str, preset: str, out_dir: str | Path,
               formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Draw one sweep figure (PNG and SVG by default); return the paths. The same rows give the same
    bytes (no date, fixed SVG ids), so a re-render changes no file."""
    with plt.rc_context(STABLE_RC):
        return _plot_sweep(df, task, attack, preset, Path(out_dir), formats)


def _plot_sweep(df: pd.DataFrame, task: str, attack: str, preset: str, out: Path,
                formats: tuple[str, ...]) -> list[Path]:
    rows = df[(df["task"] == task) & (df["attack"] == attack) & (df["preset"] == preset)]
    lines = sweep_lines(rows)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for label, line in lines:
        ax.plot(line["eps"], 100 * line["accuracy"], marker="o", ms=3, label=label)
        ax.fill_between(line["eps"], 100 * line["ci_low"], 100 * line["ci_high"], alpha=0.2)
    ax.set_xlabel("eps (L-inf, pixel scale [0, 1])")
    ax.set_ylabel("robust accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(f"{attack} ({preset} preset) on {task}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.text(0.01, 0.01, _footnote(pd.concat([line for _, line in lines])), fontsize=6, va="bottom")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{sweep_stem(task, attack, preset)}.{fmt}" for fmt in formats]
    for path in paths:
        fig.savefig(path, dpi=150, metadata=STABLE_METADATA.get(path.suffix[1:]))
    plt.close(fig)
    return paths


def sweep_stem(task: str, attack: str, preset: str) -> str:
    return f"sweep-{task.replace(':', '_')}-{attack}-{preset}"


def plot_all_sweeps(df: pd.DataFrame, out_dir: str | Path,
                    formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    paths: list[Path] = []
    for task, attack, preset in sweep_groups(df):
        paths += plot_sweep(df, task, attack, preset, out_dir, formats)
    return paths
