"""The paper's reported numbers, kept beside ours so every published table shows both.

Claims to test, not targets. They live as data (``report/claims/*.json``, one file per table or
figure of the KDD'26 paper, each with its source, budget and what the extracted text left
illegible), so a correction is a reviewable data change; this module only reads them.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

CLAIM_FILES = ("table1.json", "table2.json", "table3.json", "table5.json", "fig6.json")


@lru_cache(maxsize=1)
def claim_documents() -> dict[str, dict[str, Any]]:
    """Every claims file by name, as stored (source, budget, notes, claims)."""
    folder = resources.files("robustbench_med.report") / "claims"
    return {name: json.loads((folder / name).read_text(encoding="utf-8")) for name in CLAIM_FILES}


def all_claims() -> list[dict[str, Any]]:
    """Every claim record, each with the budget of its table."""
    return [{**claim, "budget": doc["budget"]} for doc in claim_documents().values()
            for claim in doc["claims"]]


def _task_dataset(dataset: str, task: str) -> str:
    """The dataset a task is scored on: ``d12+d14:d12`` -> ``d12``."""
    return task.split(":", 1)[1] if ":" in task else dataset


def claims_for(model: str, defense: str, dataset: str, task: str) -> list[dict[str, Any]]:
    """The claims the paper makes for one evaluated model on one task's dataset (may be empty)."""
    own = _task_dataset(dataset, task)
    return [claim for claim in all_claims()
            if claim["model"] == model and claim["defense"] == (defense or "none")
            and claim["dataset"] == own]


def _table2() -> dict[str, dict[str, tuple[float, float]]]:
    found: dict[str, dict[str, dict[str, float]]] = {}
    for claim in claim_documents()["table2.json"]["claims"]:
        if claim["model"]:
            per = found.setdefault(claim["model"], {}).setdefault(claim["dataset"], {})
            per[claim["metric"]] = claim["value"]
    return {m: {d: (v["ACC"], v["AUC"]) for d, v in per.items()} for m, per in found.items()}


def _sizes() -> dict[str, tuple[float, float]]:
    claims = [c for c in claim_documents()["table1.json"]["claims"] if c["dataset"] is None]
    values = {(c["model"], c["metric"]): c["value"] for c in claims}
    return {m: (values[(m, "params_M")], values[(m, "gflops")]) for m, _ in values}


def _table5() -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for claim in claim_documents()["table5.json"]["claims"]:
        if claim["metric"] == "robust_ACC" and claim["model"]:
            found.setdefault(claim["paper_name"], {})[claim["dataset"]] = claim["value"]
    return found


# The views the rest of medrobust reads (Table 2's ACC/AUC, Table 1's sizes and MAIL-RN18 ACC,
# Table 5's robust ablation), built from the data files.
TABLE2 = _table2()
SIZES = _sizes()
TABLE1_MAIL_RN18_ACC = {c["dataset"]: c["value"] for c in claim_documents()["table1.json"]["claims"]
                        if c["model"] == "mail_rn18" and c["metric"] == "ACC"}
TABLE5_ROBUST = _table5()


def table2_claim(model: str, dataset: str) -> tuple[float, float] | None:
    return TABLE2.get(model, {}).get(dataset)
