"""reports/cells/<id>.html: one page per cell (state, config, env, curves, grid, scores, raw files).

Figures go next to the page as reports/cells/<id>/*.png; the page opens from disk.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..fsutil import atomic_write
from ..matrix import SWEPT_AXES
from .cellplots import curves_png, grids_png, scores_png
from .grids import STRETCH_CAPTION
from .page import esc, link, page, table
from ..collect import configs_of
from .runfiles import RAW_FILES, cell_curves, read_env, read_scores
from .sidebyside import compare_href, comparison_pages
from model.factors import IN_FORCE_KEYS, describe_in_force

__all__ = ["baseline_config", "clip_counterparts", "write_cell_pages", "cell_href"]


def cell_href(cell_id: str) -> str:
    """A cell page's path relative to reports/."""
    return f"cells/{cell_id}.html"


def baseline_config(configs: list[dict]) -> dict:
    """The study's baseline: each key's most common value over the cells' configs."""
    keys = sorted({k for c in configs for k in c})
    return {k: pd.Series([repr(c.get(k)) for c in configs]).mode().iloc[0] for k in keys}


def _kv(values: dict, baseline: dict | None = None) -> str:
    rows, classes = [], []
    for k in sorted(values):
        differs = baseline is not None and repr(values[k]) != baseline.get(k)
        rows.append([esc(k), esc(values[k]), esc(baseline.get(k, "") if differs else "")])
        classes.append("differs" if differs else "")
    return table(["key", "value", "baseline (if different)"], rows, classes)


def _figures(r, curve, out: Path) -> str:
    parts = []
    if curve is not None:
        parts.append(f"<h2>Curves</h2><img src='{r.cell_id}/curves.png' alt='curves'>")
        curves_png([("", curve)], out / "curves.png")
    scores = read_scores(r.run_dir)
    if len(scores):
        scores_png([("", scores)], out / "scores.png")
        parts.append(f"<h2>Eval scores ({len(scores)} images)</h2><img src='{r.cell_id}/scores.png' alt='scores'>")
    if isinstance(r.samples_grid, str) and grids_png([("", r.samples_grid)], out / "grid.png"):
        parts.append(f"<h2>Last decomposition grid</h2><img src='{r.cell_id}/grid.png' alt='grid'>"
                     f"<p class='small'>{esc(STRETCH_CAPTION)}</p>")
    return "".join(parts)


def clip_counterparts(df: pd.DataFrame) -> dict[str, list[tuple[str, str]]]:
    """cell_id -> (cell_id, clip) of the cells that differ from it only in clipping (the seed's question)."""
    same = [a for a in SWEPT_AXES if a in df.columns and a not in ("clip", "clip_threshold")]
    key = df[same].map(str).agg("|".join, axis=1) if len(df) else pd.Series(dtype=str)
    found: dict[str, list[tuple[str, str]]] = {}
    for _, group in df.groupby(key, sort=False) if len(df) else []:
        for cell, clip in zip(group["cell_id"], group["clip"].astype(str)):
            found[cell] = [(c, k) for c, k in zip(group["cell_id"], group["clip"].astype(str)) if k != clip]
    return found


def _comparisons(cell_id: str, pages: list[tuple[str, str]], counterparts: list[tuple[str, str]]) -> str:
    """Links to the comparison pages that show this cell, else the command for its clip counterparts."""
    links = [link(f"../{name}", f"vs {other}") for name, other in pages]
    shown = {other for _, other in pages}
    links += [f"clip={esc(clip)} cell {link(other + '.html', other)}: <code>repro report --side-by-side "
              f"{esc(cell_id)} {esc(other)}</code> (writes {esc(compare_href(cell_id, other))})"
              for other, clip in counterparts if other not in shown]
    return f"<p class='small'>side by side: {' · '.join(links)}</p>" if links else ""


def _numerics(r) -> str:
    """What the cell ran with (env.json in_force): its `stack` values as its stack settled them."""
    values = read_env(r.env_json).get("in_force")
    if not isinstance(values, dict) or set(values) != set(IN_FORCE_KEYS):
        return "<p class='small'>numerics in force: not recorded (env.json has no in_force)</p>"
    return f"<p>numerics in force: {esc(describe_in_force(values))}</p>"


def _cell_page(r, curve, config: dict, baseline: dict, cells_dir: Path, comparisons: str) -> Path:
    out = cells_dir / r.cell_id
    out.mkdir(parents=True, exist_ok=True)
    run = Path(r.run_dir)
    raw = " · ".join(link(os.path.relpath(run / f, cells_dir).replace(os.sep, "/"), f)
                     for f in RAW_FILES if (run / f.rstrip("/")).exists())
    body = (f"<p>{link('../index.html', 'report')}</p><h1>cell {esc(r.cell_id)}: {esc(r.name)}</h1>"
            f"<p>state <span class='state-{esc(r.state)}'>{esc(r.state)}</span> {esc(r.reason)}"
            f" {esc(r.problems)}</p><p class='small'>raw files: {raw}</p>" + comparisons
            + _numerics(r) + _figures(r, curve, out)
            + "<h2>Config (highlighted: differs from the study's baseline)</h2>"
            + _kv(config, baseline) + "<h2>Environment (env.json)</h2>"
            + _kv(read_env(r.env_json)))
    return atomic_write(cells_dir / f"{r.cell_id}.html", page(f"cell {r.cell_id}", body))


def write_cell_pages(df: pd.DataFrame, reports_dir: str | Path) -> list[Path]:
    """One page per row of the tidy table under reports_dir/cells/; returns the pages."""
    cells_dir = Path(reports_dir) / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    configs = configs_of(df)
    baseline = baseline_config([c for c in configs if c])
    curves = cell_curves(df) if len(df) else {}
    pages, counterparts = comparison_pages(reports_dir), clip_counterparts(df)
    return [_cell_page(r, curves.get(r.cell_id), config, baseline, cells_dir,
                       _comparisons(r.cell_id, pages.get(r.cell_id, []), counterparts.get(r.cell_id, [])))
            for r, config in zip(df.itertuples(index=False), configs)]
