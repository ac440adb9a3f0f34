"""Builders for the publishing tests: entries from the real published CSV, and a small store.

The real board (``leaderboards/leaderboard.csv`` and its checks, as published) is turned into
entries with ``medrobust leaderboard import-csv`` so the renderers meet real data; the counts the
tests expect are read from the CSV with pandas, so republishing the board needs no test edit. The
hand-made store exercises what the CSV cannot carry (per-point flags, check evidence, current code).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from robustbench_med.store import ResultKey, ResultStore
from robustbench_med.versions import code_version

REPO = Path(__file__).resolve().parents[1]
BOARD_CSV = REPO / "leaderboards" / "leaderboard.csv"
CHECKS_CSV = REPO / "leaderboards" / "leaderboard_checks.csv"
# what makes one entry: one model, defense, dataset, task, seed, subset, checkpoint and code version
ENTRY_COLUMNS = ["model", "defense", "dataset", "task", "seed", "subset", "checkpoint_sha", "code_version"]


def board_counts() -> dict[str, int]:
    """Rows, entries, entries on the board (not superseded) and checks of the published CSVs, counted
    with pandas (not with our importer)."""
    import pandas as pd

    board = pd.read_csv(BOARD_CSV)
    newest = board[~board["superseded"]] if "superseded" in board else board
    return {"rows": len(board), "entries": board.groupby(ENTRY_COLUMNS, dropna=False).ngroups,
            "shown": newest.groupby(ENTRY_COLUMNS, dropna=False).ngroups,
            "checks": len(pd.read_csv(CHECKS_CSV))}


def single_draw_tables() -> set[str]:
    """``<dataset>-<preset>-single.tex`` for every dataset and preset with an attacked row."""
    import pandas as pd

    board = pd.read_csv(BOARD_CSV)
    attacked = board[(board.attack != "clean") & (board.protocol != "eot")]
    return {f"{d}-{p}-single.tex" for d, p in zip(attacked.dataset, attacked.preset, strict=True)}
PAPER_EPS = 4 / 255
SHA_A = "a" * 64
SHA_B = "b" * 64
VERSIONS = {"medrobust": "0.1.0", "torch": "2.14.1", "torchattacks": "3.5.1"}


def import_real_board(folder: Path) -> Path:
    """The real published board as entry files under ``folder`` (via the library, as the CLI does)."""
    from robustbench_med.report.csv_import import entries_from_csv
    from robustbench_med.report.entries import write_entries

    write_entries(entries_from_csv(BOARD_CSV, CHECKS_CSV), folder)
    return folder


def _put(store: ResultStore, *, model: str, sha: str, attack: str, preset: str, eps: float, protocol: str,
         correct: int, n: int = 40, alpha: float | None = 0.01, code: str | None = None, **extra) -> None:
    flags = np.zeros(n, dtype=bool)
    flags[:correct] = True
    acc = correct / n
    key = ResultKey(model=model, defense="", dataset="d12", task="d12", attack=attack, preset=preset, eps=eps,
                    protocol=protocol, seed=0, subset=f"test[{n}]", checkpoint_sha=sha,
                    code_version=code or code_version())
    settings = {"alpha": alpha, "eps": eps, "steps": 10, "preset": preset, "draws": 1}
    if attack == "clean":
        settings = {"draws": 1, "train": {"epochs": 3, "recipe": "paper", "image_size": 28, "augment": False,
                                          "n_train": 1000, "adversarial": False}}
    store.put(key, flags=flags, settings=settings, versions=VERSIONS, n=n, n_attacked=correct,
              accuracy=acc, ci_low=max(0.0, acc - 0.1), ci_high=min(1.0, acc + 0.1), image_size=28,
              device="cpu", wall_s=1.5, **extra)


def make_store(folder: Path, *, shift: int = 0) -> ResultStore:
    """A store with a deterministic ResNet18 (a sweep and both presets) and a randomized Robust-MAIL
    flagged as a constant predictor. ``shift`` moves ResNet18's PGD-10 (paper preset) by that many points."""
    store = ResultStore(folder / "results.sqlite")
    put = _put
    put(store, model="resnet18", sha=SHA_A, attack="clean", preset="-", eps=0.0, protocol="deterministic",
        correct=32, auc=0.9)
    put(store, model="resnet18", sha=SHA_A, attack="pgd-10", preset="paper", eps=PAPER_EPS,
        protocol="deterministic", correct=8 + shift)
    put(store, model="resnet18", sha=SHA_A, attack="pgd-10", preset="standard", eps=PAPER_EPS,
        protocol="deterministic", correct=2)
    put(store, model="resnet18", sha=SHA_A, attack="autoattack", preset="standard", eps=PAPER_EPS,
        protocol="deterministic", correct=1, alpha=None, notes="autoattack: apgd-t dropped")
    for i, eps in enumerate((0.01, 0.03, 0.05)):
        put(store, model="resnet18", sha=SHA_A, attack="pgd-100", preset="paper", eps=eps,
            protocol="deterministic", correct=10 - 3 * i)
    put(store, model="robust_mail", sha=SHA_B, attack="clean", preset="-", eps=0.0, protocol="randomized",
        correct=21, auc=0.5)
    for protocol, correct in (("single-draw", 21), ("eot", 18)):
        put(store, model="robust_mail", sha=SHA_B, attack="pgd-10", preset="paper", eps=PAPER_EPS,
            protocol=protocol, correct=correct)
    put(store, model="robust_mail", sha=SHA_B, attack="pgd-20", preset="standard", eps=0.3, protocol="eot",
        correct=21)
    key = {"model": "robust_mail", "defense": "", "dataset": "d12", "task": "d12", "protocol": "all",
           "seed": 0, "subset": "test[40]", "checkpoint_sha": SHA_B, "code_version": code_version()}
    store.put_check(key, "clean-right-on-several-classes", "fail",
                    "clean recall per class: 0: 0.0%, 1: 95.5%", statistic=21.0, p_value=1e-6)
    store.put_check(key, "large-eps-above-chance", "fail", "pgd-20 at eps 0.30: 52.5%", statistic=21.0,
                    p_value=0.0012345678)
    store.put_check(key, "eot-lowers-accuracy", "pass", "pgd-10: 52.5% vs 45.0%", statistic=3.0,
                    p_value=0.125)
    store.put_check({**key, "model": "resnet18", "checkpoint_sha": SHA_A}, "large-eps-above-chance", "pass",
                    "pgd-20 at eps 0.30: 0.0%")
    return store


def external_entry(source: str = "Dr. X's lab, evaluate(...) on their own GPU") -> dict:
    """A hand-written entry from elsewhere, as a researcher would add it."""
    return {
        "schema": "medrobust-entry/1", "model": "mail_rn18", "defense": "none", "dataset": "d12",
        "task": "d12", "seed": 1, "subset": "test", "checkpoint_sha256": "c" * 64,
        "code_version": "0.2.0+0123456789ab",
        "image_size": 128, "training_budget": {"epochs": 200, "recipe": "paper", "image_size": 128,
                                               "augment": True, "n_train": None, "adversarial": False},
        "randomized": False, "source": source, "claims": [], "checks": [],
        "cells": [
            {"attack": "clean", "preset": "-", "protocol": "deterministic", "eps": 0.0, "n": 624,
             "n_attacked": 0, "accuracy": 0.9, "ci_low": 0.876, "ci_high": 0.923, "auc": 0.97, "settings": {},
             "versions": {"medrobust": "0.2.0"}, "device": "cuda", "wall_s": 3.0, "notes": None},
            {"attack": "pgd-10", "preset": "paper", "protocol": "deterministic", "eps": PAPER_EPS, "n": 624,
             "n_attacked": 561, "accuracy": 0.31, "ci_low": 0.274, "ci_high": 0.347, "auc": None,
             "settings": {"alpha": 10 / 255, "steps": 10}, "versions": {"medrobust": "0.2.0"},
             "device": "cuda", "wall_s": 30.0, "notes": None},
        ],
    }


def add_entry(folder: Path, entry: dict, name: str = "external.json") -> Path:
    path = folder / entry["dataset"] / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entry, indent=1))
    return path


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def snapshot(folder: Path) -> dict[str, bytes]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}
