"""reports/index.html: one self-contained page (inline CSS, relative links only).

Drawn from the tidy table, the Table 3 tables, the names of the figures and
the collect's skipped list; it opens no run file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..collect import Skipped
from ..spikes import SPIKE_MIN_HISTORY, SPIKE_WINDOW
from .cellpage import cell_href
from .page import CSS, esc
from .table3 import format_rows, title

__all__ = ["render_index"]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], empty_col: int | None = None) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cls = ' class="empty"' if empty_col is not None and row[empty_col] == "-" else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _tables_html(tables: dict[str, pd.DataFrame], notes: Sequence[str]) -> str:
    parts = []
    for clip, table in tables.items():
        header, rows = format_rows(table, with_seed=clip == "none")
        parts.append(f"<h3>{esc(title(clip))}</h3>" + _table(header, rows, empty_col=2))
    items = "".join(f"<li>{esc(f)}</li>" for f in notes)
    return "\n".join(parts) + f'<ul class="small">{items}</ul>'


def _env_details(env_json) -> str:
    if not isinstance(env_json, str):
        return "<span class='small'>no env.json</span>"
    env = json.loads(env_json)
    short = " ".join(f"{k} {env[k]}" for k in ("torch", "cuda", "gpu_name") if env.get(k))
    return (f"<details><summary>{esc(short or 'env')}</summary>"
            f"<pre>{esc(json.dumps(env, indent=1, sort_keys=True))}</pre></details>")


def _num(value, fmt: str) -> str:
    return "" if value is None or pd.isna(value) else format(value, fmt)


def _cells_html(df: pd.DataFrame, reports_dir: Path) -> str:
    header = ["cell", "stack", "impl", "clip", "seed", "state", "reason / problems", "SIDE ×10⁻²",
              "MAD", "spikes", "max grad", "clipped", "perceptual", "env"]
    rows = []
    for r in df.itertuples(index=False):
        link = cell_href(r.cell_id)  # the cell's page; it links the raw run files
        why = "; ".join(esc(x) for x in (r.reason, r.problems) if esc(x))
        perceptual = {True: "on", False: "off"}.get(r.perceptual, "?")
        cells = [f'<a href="{esc(link)}">{esc(r.cell_id)}</a>', esc(r.stack), esc(r.impl), esc(r.clip),
                 esc(r.seed), f'<span class="state-{esc(r.state)}">{esc(r.state)}</span>', why,
                 _num(r.side_mean * 100, ".4f"), _num(r.mad_mean, ".2f"), _num(r.n_spikes, ".0f"),
                 _num(r.max_grad_norm, ".3g"), _num(r.clipped_frac * 100, ".1f") + ("%" if pd.notna(r.clipped_frac) else ""),
                 perceptual, _env_details(r.env_json)]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _causes_html(verdicts: Sequence[str], notes: Sequence[str], has_plot: bool) -> str:
    """Verdicts per factor (reports/causes.md has the effects table and the method)."""
    if not verdicts:
        body = "<p>No factor varies with enough seeds to test here (run matrices/causes-cpu.yml).</p>"
    else:
        body = "<ul>" + "".join(f"<li>{esc(v)}</li>" for v in verdicts) + "</ul>"
    body += "".join(f"<p class='small'>{esc(n)}</p>" for n in notes)
    plot = "<figure><img src='causes.png' alt='causes'><figcaption class='small'>causes.png</figcaption></figure>"
    return body + (plot if has_plot else "") + "<p class='small'>Method and effects: <a href='causes.md'>causes.md</a></p>"


def _notes_html(df: pd.DataFrame, skipped: Sequence[Skipped]) -> str:
    notes = []
    off = df[df["perceptual"] == False] if len(df) else df  # noqa: E712 (None = unknown)
    if len(off):
        reasons = ", ".join(sorted({str(r) for r in off["perceptual_reason"].dropna()})) or "not recorded"
        notes.append(f"Perceptual (VGG16) loss was off in {len(off)} of {len(df)} cells "
                     f"(why: {esc(reasons)}); their SIDE/MAD are not comparable to the paper's.")
    factor = df.attrs.get("spike_factor", "k")
    notes.append(f"Spike: a logged iteration whose total loss or pre-clip gradient norm is not finite or "
                 f"exceeds {factor:g}× the median of its previous {SPIKE_WINDOW} logged values "
                 f"(sign-safe; needs {SPIKE_MIN_HISTORY} earlier values; harness/spikes.py).")
    if len(df):
        counts = ", ".join(f"{n} {s}" for s, n in df["state"].value_counts().items())
        notes.append(f"Cells: {len(df)} ({esc(counts)}).")
    items = "".join(f"<li>{n}</li>" for n in notes)
    skipped_items = "".join(f"<li><code>{esc(s.folder)}</code>: {esc(s.reason)}</li>" for s in skipped)
    skipped_html = (f"<p>Folders in results/ skipped ({len(skipped)}):</p><ul>{skipped_items}</ul>"
                    if skipped else "<p>No folder in results/ was skipped.</p>")
    return f"<ul>{items}</ul>{skipped_html}"


def _caption(figure: Path, drawn: pd.DataFrame | None) -> str:
    """The figure's file name and the cells it draws, each linked to its page."""
    if drawn is None or drawn.empty:
        return f"{esc(figure.name)} · draws no cell"
    cells = ", ".join(f'<a href="{esc(cell_href(c))}" title="{esc(n)}">{esc(c)}</a>'
                      for c, n in zip(drawn["cell_id"], drawn["name"]))
    return f"{esc(figure.name)} · draws {len(drawn)} cell{'s' * (len(drawn) != 1)}: {cells}"


def _figures_html(figures: Sequence[Path], drawn: dict[str, pd.DataFrame]) -> str:
    return "".join(f'<figure><img src="{esc(Path(f).name)}" alt="{esc(Path(f).stem)}">'
                   f"<figcaption class='small'>{_caption(Path(f), drawn.get(Path(f).name))}</figcaption></figure>"
                   for f in figures)


def render_index(df: pd.DataFrame, tables: dict[str, pd.DataFrame], figures: Sequence[Path],
                 skipped: Sequence[Skipped], path: str | Path, runs_csv: str | Path | None = None,
                 causes: tuple = ((), (), False), notes: Sequence[str] = (),
                 drawn: dict[str, pd.DataFrame] | None = None) -> str:
    """The page's HTML text (the caller writes it to `path`, whose folder anchors links).

    Args:
        df: the tidy table; tables: clip mode -> Table 3; figures: PNG paths in
        the reports folder; skipped: folders collect skipped; path: index.html;
        runs_csv: the tidy table's CSV, linked when given; causes: (verdict lines,
        untested notes, whether causes.png exists) from harness.report.causes;
        notes: Table 3's footnotes (table3.footnotes); drawn: figure file name -> the
        rows (cell_id, name) it draws, listed and linked in its caption.
    """
    reports_dir = Path(path).resolve().parent
    runs = (f" · tidy table: <a href='{esc(os.path.relpath(runs_csv, reports_dir))}'>runs.csv</a>"
            if runs_csv else "")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>repro-unsup3d report</title>"
            f"<style>{CSS}</style></head><body>"
            "<h1>repro-unsup3d: Table 3, Fig. 7, Fig. 8 regenerated from results/</h1>"
            "<p class='small'>Tables as files: <a href='table3.md'>table3.md</a> · "
            "<a href='table3.tex'>table3.tex</a> · <a href='table3.csv'>table3.csv</a>"
            f"{runs}</p>"
            f"<h2>Table 3</h2>{_tables_html(tables, notes)}"
            f"<h2>Figures</h2>{_figures_html(figures, drawn or {})}"
            f"<h2>Causes</h2>{_causes_html(*causes)}"
            f"<h2>Notes</h2>{_notes_html(df, skipped)}"
            f"<h2>Cells</h2>{_cells_html(df, reports_dir)}"
            "</body></html>\n")
