"""The one small reader the renderers use besides the tidy table: loss curves.

Paths come from the table's `train_log` column; the report never looks for files.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..collect import read_train_logs

__all__ = ["CURVE_FIELDS", "load_curves"]

CURVE_FIELDS = ("iter", "loss_total", "grad_norm")


def load_curves(df: pd.DataFrame, fields=CURVE_FIELDS) -> dict[str, dict[str, np.ndarray]]:
    """Read the training curves of the cells in df that have a train log.

    Args:
        df: rows of the tidy table (cell_id, train_log).
        fields: train.jsonl keys to read.

    Returns:
        cell_id -> {field: array}, only for logs with at least one good line.
    """
    if df.empty:
        return {}
    rows = df[df["train_log"].notna()]
    logs = read_train_logs(list(rows["train_log"]), fields)
    return {cid: log.columns for cid, log in zip(rows["cell_id"], logs)
            if log is not None and log.lines and not log.error}
