"""What the cell and comparison pages show beyond the tidy table's numbers: raw files, scores, env.

The files are read by harness.runfolder (the one reader of a run folder) and
harness.collect; this module only shapes what they return for the pages.
"""
from __future__ import annotations

from ..runfolder import json_object, read_scores

__all__ = ["RAW_FILES", "read_env", "read_scores"]

# linked from a cell page when present, in this order
RAW_FILES = ("config.json", "cell.json", "status.json", "env.json", "train.jsonl", "eval.json",
             "eval_scores.csv", "stdout.log", "samples/")


def read_env(env_json) -> dict:
    """The table's env_json text as a dict ({} when absent or broken)."""
    return json_object(env_json)
