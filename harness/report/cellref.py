"""Which cell a user means: `repro report --side-by-side A B` takes ids, unique id prefixes or names.

An exact id or name wins over a prefix, so a short id that is also another id's prefix
still names itself. Anything else is a CellRefError whose text is the one line to print.
"""
from __future__ import annotations

import pandas as pd

__all__ = ["CellRefError", "resolve_cell", "resolve_pair"]

_SHOWN = 5  # candidates named in an ambiguity error


class CellRefError(ValueError):
    """A reference that names no cell, several cells, or the same cell twice."""


def resolve_cell(df: pd.DataFrame, ref: str, where: str = "results/") -> pd.Series:
    """The one row of the tidy table that `ref` names (id, unique id prefix, or name).

    Raises:
        CellRefError: no cell or several cells match.
    """
    ids, names = df["cell_id"].astype(str), df["name"].astype(str)
    for exact in (ids == ref, names == ref):
        if exact.sum() == 1:
            return df[exact].iloc[0]
    matches = df[ids.str.startswith(ref) | (names == ref)] if ref else df.iloc[:0]
    if len(matches) == 1:
        return matches.iloc[0]
    if matches.empty:
        raise CellRefError(f"{ref!r}: no cell in {where} has this id, id prefix or name "
                           "(`repro status` lists them)")
    shown = ", ".join(f"{c} ({n})" for c, n in zip(matches["cell_id"][:_SHOWN], matches["name"][:_SHOWN]))
    more = f" and {len(matches) - _SHOWN} more" if len(matches) > _SHOWN else ""
    raise CellRefError(f"{ref!r} matches {len(matches)} cells in {where}: {shown}{more}; "
                       "give more characters of the id")


def resolve_pair(df: pd.DataFrame, refs: tuple[str, str], where: str = "results/") -> tuple[pd.Series, pd.Series]:
    """Both cells of a comparison; two references to one cell are an error too."""
    a, b = (resolve_cell(df, ref, where) for ref in refs)
    if a["cell_id"] == b["cell_id"]:
        raise CellRefError(f"{refs[0]!r} and {refs[1]!r} both name cell {a['cell_id']}; "
                           "compare two different cells")
    return a, b
