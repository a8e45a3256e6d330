"""HTML building blocks shared by index.html, the cell pages and the comparison pages.

Static pages: inline CSS, no script, relative links only, so they open from disk.
"""
from __future__ import annotations

import html
import math
from typing import Sequence

import pandas as pd

__all__ = ["CSS", "esc", "page", "table", "link"]

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;white-space:nowrap}
tr.empty td{color:#888}tr.differs td{background:#fff3c4}img{max-width:100%;border:1px solid #eee}
.state-done{color:#176a2c}.state-failed,.state-diverged{color:#b00020;font-weight:600}
.state-skipped{color:#8a6d00}details pre{font-size:11px;max-width:520px;white-space:pre-wrap;margin:4px 0}
.small{font-size:12px;color:#555}ul{margin:4px 0}.cols{display:flex;gap:24px;flex-wrap:wrap}
"""


def esc(value) -> str:
    """Escaped text of a table value; NaN/None as empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return html.escape(str(value))


def link(href: str, text) -> str:
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def table(header: Sequence[str], rows: Sequence[Sequence[str]], row_classes: Sequence[str] = ()) -> str:
    """A table of already-escaped HTML cells; row_classes[i] styles row i (e.g. 'differs')."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    classes = list(row_classes) + [""] * (len(rows) - len(row_classes))
    body = "".join((f'<tr class="{c}">' if c else "<tr>") + "".join(f"<td>{x}</td>" for x in row)
                   + "</tr>" for row, c in zip(rows, classes))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: str) -> str:
    """A whole static page."""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>\n")
