"""What the cell and comparison pages draw beyond the tidy table's numbers: curves, scores, env.

The files are read by harness.runfolder (the one reader of a run folder) and
harness.collect; this module only shapes what they return for the pages.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..runfolder import read_scores
from .curves import CURVE_FIELDS, load_curves

__all__ = ["PAGE_CURVE_FIELDS", "RAW_FILES", "read_env", "read_scores", "cell_curves"]

PAGE_CURVE_FIELDS = CURVE_FIELDS + ("clipped",)
# linked from a cell page when present, in this order
RAW_FILES = ("config.json", "cell.json", "status.json", "env.json", "train.jsonl", "eval.json",
             "eval_scores.csv", "stdout.log", "samples/")


def read_env(env_json) -> dict:
    """The table's env_json text as a dict ({} when absent or broken)."""
    try:
        env = json.loads(env_json) if isinstance(env_json, str) else {}
    except ValueError:
        return {}
    return env if isinstance(env, dict) else {}


def cell_curves(rows: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """cell_id -> iter, loss_total, grad_norm, clipped arrays, for the rows with a train log."""
    return load_curves(rows, PAGE_CURVE_FIELDS)
