"""The rows of one ``medrobust sweep``: the store holds every run; a sweep plots only its own."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd


def sweep_rows(frame: pd.DataFrame, checkpoint_shas: Iterable[str], eps: Iterable[float]) -> pd.DataFrame:
    """Rows of ``frame`` (``report.leaderboard.long_frame``) made on the swept checkpoints at the swept
    eps values; eps are compared at 10 decimals, as ``4/255`` is stored as a float."""
    wanted = [round(e, 10) for e in eps]
    return frame[frame["checkpoint_sha"].isin(set(checkpoint_shas)) & frame["eps"].round(10).isin(wanted)]
