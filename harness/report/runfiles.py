"""What the cell and comparison pages read from a run folder beyond the tidy table.

Every read is defensive: a missing, empty or broken file gives an empty value
and a note, never an exception (the table's `problems` column says more). A
run folder's JSON files are read by harness.runfolder, the one reader.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

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


def read_scores(run_dir) -> pd.DataFrame:
    """eval_scores.csv as columns side, mad (numeric, finite rows only; empty if unreadable)."""
    try:
        scores = pd.read_csv(Path(run_dir) / "eval_scores.csv")
    except (OSError, ValueError, pd.errors.ParserError):
        return pd.DataFrame({"side": [], "mad": []})
    cols = {c: pd.to_numeric(scores[c], errors="coerce") if c in scores else np.nan for c in ("side", "mad")}
    return pd.DataFrame(cols).dropna()


def cell_curves(rows: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """cell_id -> iter, loss_total, grad_norm, clipped arrays, for the rows with a train log."""
    return load_curves(rows, PAGE_CURVE_FIELDS)
