"""How cells group into Table 3 rows and figure panels: shared by tables, figures and pages.

One place for the implementation names, the seed's row order and which
extra axes split rows, so the tables, figures and cell pages agree.
"""
from __future__ import annotations

import pandas as pd

from ..matrix import AXES, FACTOR_AXES

__all__ = ["IMPL_NAMES", "ROW_AXES", "impl_name", "row_order", "variant_axes"]

IMPL_NAMES = {"ours": "Ours", "author": "Author's"}
ROW_AXES = ("stack", "impl", "clip", "seed")   # the other axes split rows only if they vary


def impl_name(impl) -> str:
    """'Ours' / "Author's" for the two known implementations, else the value as text."""
    return IMPL_NAMES.get(str(impl), str(impl))


def variant_axes(df: pd.DataFrame) -> list[str]:
    """Axes beyond stack/impl/clip/seed that vary: they split rows so nothing mixes."""
    axes = [a for a in AXES if a not in ROW_AXES] + [c for c in df.columns if c.startswith("axis.")]
    varying = [a for a in axes if a in df.columns and len(_as_text(df[a].tolist())) > 1]
    # a factor axis splits rows only where it varies inside one stack and impl (lr follows the
    # preset across stacks; a factor study varies it within the CPU row)
    keep = (df["stack"].notna() & df["impl"].notna()).to_numpy() if len(df) else []
    pairs = list(zip(df["stack"][keep].tolist(), df["impl"][keep].tolist())) if len(df) else []
    n_pairs = len(set(pairs))
    return varying + [a for a in FACTOR_AXES if a in df.columns and _varies_within(df[a][keep].tolist(), pairs, n_pairs)]


def _varies_within(values: list, pairs: list, n_pairs: int) -> bool:
    """Does some (stack, impl) pair have two values? (Most factor axes take one value in all: no pairs then.)"""
    return len(_as_text(values)) > 1 and len(_as_text(values, pairs)) > n_pairs


def _as_text(values: list, within: list | None = None) -> set:
    """The distinct values as text (seed 0 and "0" are one value), or the distinct (within, value as
    text) pairs; str() once per distinct value, not per cell: this runs per table and figure."""
    groups = within if within is not None else [None] * len(values)
    distinct = set(zip(groups, map(type, values), values))
    return {(group, str(value)) for group, _, value in distinct}


def row_order(label: str, impl: str) -> tuple:
    """Seed order: CUDA versions ascending, then CPU and other stacks; Ours before Author's."""
    try:
        version = tuple(int(p) for p in label.removeprefix("CUDA ").split("."))
    except ValueError:
        version = (999,)
    return version, label, 0 if impl == "ours" else 1 if impl == "author" else 2, impl
