"""What differs between the CPU rows of Table 3, from their cells' env.json (issue 17's question).

The `cpu` stack (torch 2.13, this machine's Python) and `cpu-torch1.8` (torch 1.8.1 in a
container) are meant to differ in the software stack alone. A key is reported when it is
constant within each CPU stack and differs between them; keys that vary between the
cells of one stack (per-impl keys, thread counts under -j) say nothing about the stack,
and neither do the per-run keys below, which differ even between two cells of one stack.
"""
from __future__ import annotations

import json

import pandas as pd

from .runfiles import read_env

__all__ = ["PER_RUN_KEYS", "cpu_stacks", "stack_env_differences"]

_MISSING = "(absent)"
PER_RUN_KEYS = ("argv", "host")   # the cell's own paths; a container's host name is its id


def cpu_stacks(df: pd.DataFrame) -> list[str]:
    """Stacks the matrix declares without CUDA whose cells wrote an env.json, in table order."""
    if df.empty:
        return []
    ran = df[df["stack_cuda"].isna() & df["env_json"].notna()]
    return list(dict.fromkeys(ran["stack"].astype(str)))


def _text(value) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)


def stack_env_differences(df: pd.DataFrame, stacks: list[str]) -> list[tuple[str, dict[str, str]]]:
    """(env.json key, stack -> value) for every key constant within each stack and differing between them."""
    envs = {s: [read_env(j) for j in df.loc[df["stack"].astype(str) == s, "env_json"].dropna()] for s in stacks}
    keys = sorted({k for cells in envs.values() for env in cells for k in env} - set(PER_RUN_KEYS))
    found = []
    for key in keys:
        per_stack = {s: {_text(env.get(key, _MISSING)) for env in cells} for s, cells in envs.items()}
        if all(len(v) == 1 for v in per_stack.values()) and len(set.union(*per_stack.values())) > 1:
            found.append((key, {s: v.pop() for s, v in per_stack.items()}))
    return found
