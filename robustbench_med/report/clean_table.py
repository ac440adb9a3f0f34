"""Clean accuracy and AUC per model and dataset, with the training budget and the paper's claim.

This is the table behind the paper's Table 2 comparison: our numbers come from
the store's clean rows (n, 95% interval), the budget from the checkpoint
(recorded in the row), and the paper's number is shown beside ours, never
instead of it.
"""

from __future__ import annotations

import json

import pandas as pd

from robustbench_med.report.paper_claims import table2_claim


def _budget(settings: str) -> str:
    train = json.loads(settings or "{}").get("train", {})
    if not train:
        return ""
    parts = [f"{train.get('epochs')} ep", str(train.get("recipe", "")),
             f"{train.get('image_size')}px", "aug 4x" if train.get("augment") else "no aug"]
    if train.get("n_train"):
        parts.append(f"n_train {train['n_train']}")
    if train.get("adversarial"):
        parts.append("PGD-AT")
    if train.get("device"):
        parts.append(str(train["device"]))
    return ", ".join(parts)


def clean_frame(df: pd.DataFrame) -> pd.DataFrame:
    """One line per evaluated checkpoint and task: ACC [CI], AUC, budget, the paper's ACC/AUC."""
    clean = df[df["attack"] == "clean"].copy()
    if clean.empty:
        return clean
    lines = []
    for _, row in clean.iterrows():
        claim = table2_claim(row["model"], row["dataset"])
        lines.append({
            "model": row["model"], "defense": row["defense"], "dataset": row["dataset"],
            "task": row["task"], "n": row["n"],
            "ACC %": f"{100 * row['accuracy']:.2f} [{100 * row['ci_low']:.1f}, {100 * row['ci_high']:.1f}]",
            "AUC %": "" if pd.isna(row["auc"]) else f"{100 * row['auc']:.2f}",
            "paper ACC / AUC %": f"{claim[0]:.2f} / {claim[1]:.2f}" if claim else "",
            "budget": _budget(row.get("settings", "")), "seed": row["seed"],
            "checkpoint": str(row["checkpoint_sha"])[:12],
        })
    return pd.DataFrame(lines).sort_values(["dataset", "task", "model", "defense"])
