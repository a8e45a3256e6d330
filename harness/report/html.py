"""reports/index.html: one self-contained page (inline CSS, relative links only).

Drawn from the tidy table, the Table 3 tables, the names of the figures and
the collect's skipped list; it opens no run file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from model.config import STANDIN

from ..collect import Skipped
from ..spikes import SPIKE_MIN_HISTORY, SPIKE_WINDOW
from .celllinks import cell_href
from .page import CSS, esc
from .state import Memo, row_keys
from .table3 import format_rows, title

__all__ = ["render_index"]


def _row_html(row: Sequence[str], cls: str = "") -> str:
    return (f'<tr class="{cls}">' if cls else "<tr>") + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"


def _folded_stack(label: str, header: Sequence[str], rows: list[list[str]]) -> str:
    """One line for a stack none of whose cells started here: its reason, the seed's numbers, the rows folded."""
    seed_cols = [i for i, h in enumerate(header) if h.lower().startswith(("seed report", "published"))]
    note = rows[0][-1] if rows[0][-1] not in ("", "not run") else ""
    why = f"not run here: {esc(note)}" if note else "not run here"
    cells = [f"<td>{esc(label)}</td>", f"<td>{esc(' / '.join(r[1] for r in rows))}</td>",
             f"<td colspan='{max(1, (seed_cols[0] if seed_cols else len(header) - 1) - 2)}'>{why}</td>"]
    cells += [f"<td>{'<br>'.join(esc(r[1] + ': ' + r[i]) for r in rows)}</td>" for i in seed_cols]
    inner = "".join(_row_html(r) for r in rows)
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    rest = len(header) - (seed_cols[-1] + 1 if seed_cols else len(header) - 1)
    cells.append(f"<td colspan='{max(1, rest)}'><details><summary>{len(rows)} rows</summary>"
                 f"<table><thead><tr>{head}</tr></thead><tbody>{inner}</tbody></table></details></td>")
    return f'<tr class="notrun">{"".join(cells)}</tr>'


def _table3_html(table: pd.DataFrame, with_seed: bool) -> str:
    """The rows whose cells started first; each stack none of whose cells started here folded into one line."""
    header, rows = format_rows(table, with_seed=with_seed)
    started = [row for row, n in zip(rows, table["n_trained"]) if n > 0]
    folded: dict[str, list[list[str]]] = {}
    for row, label, n in zip(rows, table["row"], table["n_trained"]):
        if not n > 0:
            folded.setdefault(label, []).append(row)
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(_row_html(r) for r in started) + "".join(_folded_stack(k, header, v) for k, v in folded.items())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _tables_html(tables: dict[str, pd.DataFrame], notes: Sequence[str]) -> str:
    parts = [f"<h3>{esc(title(clip))}</h3>" + _table3_html(table, with_seed=clip == "none")
             for clip, table in tables.items()]
    items = "".join(f"<li>{esc(f)}</li>" for f in notes)
    return "\n".join(parts) + f'<details class="small"><summary>Notes on Table 3</summary><ul>{items}</ul></details>'


def _env_short(torch, cuda, gpu) -> str:
    """torch, CUDA and GPU of a cell (its page has the whole env.json)."""
    parts = [f"{k} {v}".strip() for k, v in (("torch", torch), ("cuda", cuda), ("", gpu)) if isinstance(v, str) and v]
    return esc(" ".join(parts)) or "<span class='small'>no env.json</span>"


def _num(value, fmt: str) -> str:
    return "" if value is None or pd.isna(value) else format(value, fmt)


_CELL_COLUMNS = ["cell_id", "stack", "impl", "clip", "seed", "state", "reason", "problems", "side_mean", "mad_mean",
                 "n_spikes", "max_grad_norm", "clipped_frac", "perceptual", "perceptual_net",
                 "env.torch", "env.cuda", "env.gpu"]   # what a row of the cells table shows (not all 100: seconds)


def _cell_row(r) -> str:
    """One row of the cells table; its link goes to the cell's page, which links the raw run files."""
    why = "; ".join(esc(x) for x in (r.reason, r.problems) if esc(x))
    perceptual = "STAND-IN" if r.perceptual_net == STANDIN else {True: "on", False: "off"}.get(r.perceptual, "?")
    cells = [f'<a href="{esc(cell_href(r.cell_id))}">{esc(r.cell_id)}</a>', esc(r.stack), esc(r.impl), esc(r.clip),
             esc(r.seed), f'<span class="state-{esc(r.state)}">{esc(r.state)}</span>', why,
             _num(r.side_mean * 100, ".4f"), _num(r.mad_mean, ".2f"), _num(r.n_spikes, ".0f"),
             _num(r.max_grad_norm, ".3g"), _num(r.clipped_frac * 100, ".1f") + ("%" if pd.notna(r.clipped_frac) else ""),
             perceptual, _env_short(r.torch, r.cuda, r.gpu)]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _cells_html(df: pd.DataFrame, memo: Memo) -> str:
    """The cells table; a row whose values did not change since the last report is taken from it (memo)."""
    header = ["cell", "stack", "impl", "clip", "seed", "state", "reason / problems", "SIDE ×10⁻²",
              "MAD", "spikes", "max grad", "clipped", "perceptual", "env"]
    shown = df[_CELL_COLUMNS].rename(columns=lambda c: c.removeprefix("env."))
    rows = [memo.get(key, lambda: _cell_row(r)) for key, r in zip(row_keys(shown), shown.itertuples(index=False))]
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _causes_html(verdicts: Sequence[str], untested: Sequence[str], has_plot: bool) -> str:
    """The factors tested, then one line for what could not be (causes.md has the effects and the method)."""
    if not verdicts:
        body = "<p>No factor varies with enough ended seeds on both sides to test here (run matrices/causes-cpu.yml).</p>"
    else:
        body = "<p>Tested:</p><ul>" + "".join(f"<li>{esc(v)}</li>" for v in verdicts) + "</ul>"
    body += "".join(f"<p class='small'>Not tested here: {esc(n)}.</p>" for n in untested)
    plot = "<figure><img src='causes.png' alt='causes'><figcaption class='small'>causes.png</figcaption></figure>"
    return body + (plot if has_plot else "") + "<p class='small'>Method and effects: <a href='causes.md'>causes.md</a></p>"


def _notes_html(df: pd.DataFrame, skipped: Sequence[Skipped]) -> str:
    notes = []
    off = df[df["perceptual"] == False] if len(df) else df  # noqa: E712 (None = unknown)
    if len(off):
        reasons = ", ".join(sorted({str(r) for r in off["perceptual_reason"].dropna()})) or "not recorded"
        notes.append(f"Perceptual (VGG16) loss was off in {len(off)} of {len(df)} cells "
                     f"(why: {esc(reasons)}); their SIDE/MAD are not comparable to the paper's.")
    standin = int((df["perceptual_net"] == STANDIN).sum()) if len(df) else 0
    if standin:
        notes.append(f"Perceptual loss STAND-IN in {standin} of {len(df)} cells: VGG16 with seeded random "
                     "weights, not ImageNet's (perceptual_net: standin): its loss has the original's form, "
                     "its features are not perceptual.")
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
                 drawn: dict[str, pd.DataFrame] | None = None, rows: Memo | None = None) -> str:
    """The page's HTML text (the caller writes it to `path`, whose folder anchors links).

    Args:
        df: the tidy table; tables: clip mode -> Table 3; figures: PNG paths in
        the reports folder; skipped: folders collect skipped; path: index.html;
        runs_csv: the tidy table's CSV, linked when given; causes: (verdict lines,
        untested notes, whether causes.png exists) from harness.report.causes;
        notes: Table 3's footnotes (table3.footnotes); drawn: figure file name -> the
        rows (cell_id, name) it draws, listed and linked in its caption; rows: the cells table's
        rows by the key of their values (state.Memo: from the last report, and filled with this one's).
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
            f"<h2>Cells</h2>{_cells_html(df, rows if rows is not None else Memo())}"
            "</body></html>\n")
