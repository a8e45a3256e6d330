"""What a Table 3 row's cells actually ran, and whether the row is a smoke check rather than a score.

A row's label must not repeat the matrix's stack override (`preset: cpu-small`) when the
cells ran something else (the Author's CPU cells: their 64 px, original-width nets for
16 steps). So the label is read from each cell's resolved config (collect's config_json) (preset, image
size, widths nf) and its train.jsonl (steps = iterations run, the tidy table's last_iter + 1).
"""
from __future__ import annotations

import pandas as pd

from ..collect import configs_of

__all__ = ["SMOKE_MAX_STEPS", "RAN_KEYS", "RAN_FOOTNOTE", "with_ran", "describe", "is_smoke"]

# A row whose trained cells all ran fewer steps than this checks that the code runs; it is
# not a score (a cpu-small cell runs 800 steps, a paper cell tens of thousands, a smoke run 16).
SMOKE_MAX_STEPS = 100
RAN_KEYS = ("preset", "image_size", "nf")   # read from config.json, as columns ran.<key>
RAN_FOOTNOTE = (f"Stack labels say what the row's cells ran: preset, image size and network width nf from "
                f"their config.json, steps = iterations in their train.jsonl. A row whose trained cells "
                f"all ran fewer than {SMOKE_MAX_STEPS} steps is marked as a smoke check (the code runs), "
                "not a score.")


def with_ran(df: pd.DataFrame) -> pd.DataFrame:
    """df with columns ran.preset, ran.image_size, ran.nf (from config.json) and ran.steps."""
    if df.empty:
        return df.assign(**{f"ran.{k}": [] for k in RAN_KEYS + ("steps",)})
    configs = configs_of(df)
    trained = pd.to_numeric(df["train_lines"], errors="coerce").fillna(0) > 0
    steps = (pd.to_numeric(df["last_iter"], errors="coerce") + 1).where(trained)
    return df.assign(**{f"ran.{k}": [c.get(k) for c in configs] for k in RAN_KEYS}, **{"ran.steps": steps})


def _values(cells: pd.DataFrame, column: str) -> str:
    """The distinct values of one ran column, '/'-joined ('32/64'); '' when none is known."""
    values = cells[column].dropna() if column in cells else pd.Series(dtype=object)
    return "/".join(sorted({str(v) for v in values}, key=lambda v: (len(v), v)))


def _steps(cells: pd.DataFrame) -> str:
    steps = cells["ran.steps"].dropna() if "ran.steps" in cells else pd.Series(dtype=float)
    if steps.empty:
        return ""
    low, high = int(steps.min()), int(steps.max())
    return f"{low} steps" if low == high else f"{low}-{high} steps"


def describe(cells: pd.DataFrame) -> str:
    """'cpu-small, 32 px, nf 16, 800 steps' for the cells of one row (steps only where some trained)."""
    preset, size, nf = (_values(cells, f"ran.{k}") for k in RAN_KEYS)
    parts = [preset, f"{size} px" if size else "", f"nf {nf}" if nf else "", _steps(cells)]
    return ", ".join(p for p in parts if p)


def is_smoke(cells: pd.DataFrame) -> bool:
    """Did every cell of the row that trained run fewer than SMOKE_MAX_STEPS steps?"""
    steps = cells["ran.steps"].dropna() if "ran.steps" in cells else pd.Series(dtype=float)
    return bool(len(steps)) and bool((steps < SMOKE_MAX_STEPS).all())
