"""Where a cell's page and its data live under reports/: the one naming every page links by.

A study's cell pages are one page, reports/cell.html, that draws the cell named after its '#'
from the shard of the cells' data holding it, reports/cells/<shard>.js (cellpage.js picks the
shard the same way: `shard_of` is mirrored there). 256 shards at most: a 10,000-cell report
writes a few hundred files, not 10,000.
"""
from __future__ import annotations

from urllib.parse import quote

__all__ = ["CELL_PAGE", "SHARDS_DIR", "cell_href", "compare_href", "shard_of", "shard_file"]

CELL_PAGE = "cell.html"   # beside index.html
SHARDS_DIR = "cells"      # reports/cells/<shard>.js


def cell_href(cell_id: str) -> str:
    """A cell page's address relative to reports/."""
    return f"{CELL_PAGE}#{quote(cell_id, safe='')}"


def compare_href(a_id: str, b_id: str) -> str:
    """The comparison page's path relative to reports/."""
    return f"compare-{a_id}-{b_id}.html"


def shard_of(cell_id: str) -> str:
    """Two hex digits: FNV-1a (32 bit) over the id's UTF-16 code units, low byte (as cellpage.js computes it)."""
    units = cell_id.encode("utf-16-le")
    h = 0x811C9DC5
    for k in range(0, len(units), 2):
        h = ((h ^ (units[k] | units[k + 1] << 8)) * 0x01000193) & 0xFFFFFFFF
    return f"{h & 0xFF:02x}"


def shard_file(shard: str) -> str:
    """A shard's path relative to reports/."""
    return f"{SHARDS_DIR}/{shard}.js"
