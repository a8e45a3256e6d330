"""reports/cells/<id>.html: one page per cell (state, config, env, curves, grid, scores, raw files).

Figures go next to the page as reports/cells/<id>/*.png; the page opens from disk.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on the study machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..fsutil import atomic_write  # noqa: E402
from ..runfolder import read_run_folder  # noqa: E402
from ..spikes import spike_mask  # noqa: E402
from .grids import STRETCH_CAPTION, draw_grid  # noqa: E402
from .page import esc, link, page, table  # noqa: E402
from .runfiles import RAW_FILES, cell_curves, read_env, read_scores  # noqa: E402

__all__ = ["baseline_config", "write_cell_pages", "cell_href"]


def cell_href(cell_id: str) -> str:
    """A cell page's path relative to reports/."""
    return f"cells/{cell_id}.html"


def baseline_config(configs: list[dict]) -> dict:
    """The study's baseline: each key's most common value over the cells' configs."""
    keys = sorted({k for c in configs for k in c})
    return {k: pd.Series([repr(c.get(k)) for c in configs]).mode().iloc[0] for k in keys}


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return atomic_write(path, buf.getvalue())


def _curves_png(curve: dict, path: Path) -> Path:
    """Loss and pre-clip grad norm, spikes (harness/spikes.py) and clipped steps marked."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    it = curve["iter"]
    for ax, field, name in zip(axes, ("loss_total", "grad_norm"), ("total loss", "grad norm (pre-clip)")):
        values = curve[field]
        ax.plot(it, values, lw=0.8, label=name)
        spikes = spike_mask(values)
        ax.plot(it[spikes], np.where(np.isfinite(values[spikes]), values[spikes], np.nanmax(values)),
                "rv", ms=6, label=f"spike ({int(spikes.sum())})")
        clipped = np.asarray(curve.get("clipped", np.zeros_like(it))) > 0.5
        if clipped.any():
            ax.plot(it[clipped], values[clipped], "k.", ms=3, label=f"clipped ({int(clipped.sum())})")
        ax.set_xlabel("iteration")
        ax.set_title(name)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def _scores_png(scores: pd.DataFrame, path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    for ax, col, name in zip(axes, ("side", "mad"), ("SIDE ×10⁻²", "MAD (deg.)")):
        ax.hist(scores[col] * (100 if col == "side" else 1), bins=20, color="tab:blue")
        ax.set_xlabel(f"{name} per test image")
        ax.set_ylabel("images")
    return _save(fig, path)


def _grid_png(grid: str, path: Path) -> Path | None:
    fig, ax = plt.subplots(figsize=(7, 6))
    ok = draw_grid(ax, grid)
    ax.set_title(STRETCH_CAPTION, fontsize=8)
    if not ok:
        plt.close(fig)
        return None
    return _save(fig, path)


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
        _curves_png(curve, out / "curves.png")
    scores = read_scores(r.run_dir)
    if len(scores):
        _scores_png(scores, out / "scores.png")
        parts.append(f"<h2>Eval scores ({len(scores)} images)</h2><img src='{r.cell_id}/scores.png' alt='scores'>")
    if isinstance(r.samples_grid, str) and _grid_png(r.samples_grid, out / "grid.png"):
        parts.append(f"<h2>Last decomposition grid</h2><img src='{r.cell_id}/grid.png' alt='grid'>"
                     f"<p class='small'>{esc(STRETCH_CAPTION)}</p>")
    return "".join(parts)


def _cell_page(r, curve, config: dict, baseline: dict, cells_dir: Path) -> Path:
    out = cells_dir / r.cell_id
    out.mkdir(parents=True, exist_ok=True)
    run = Path(r.run_dir)
    raw = " · ".join(link(os.path.relpath(run / f, cells_dir).replace(os.sep, "/"), f)
                     for f in RAW_FILES if (run / f.rstrip("/")).exists())
    body = (f"<p>{link('../index.html', 'report')}</p><h1>cell {esc(r.cell_id)}: {esc(r.name)}</h1>"
            f"<p>state <span class='state-{esc(r.state)}'>{esc(r.state)}</span> {esc(r.reason)}"
            f" {esc(r.problems)}</p><p class='small'>raw files: {raw}</p>"
            + _figures(r, curve, out)
            + "<h2>Config (highlighted: differs from the study's baseline)</h2>"
            + _kv(config, baseline) + "<h2>Environment (env.json)</h2>"
            + _kv(read_env(r.env_json)))
    return atomic_write(cells_dir / f"{r.cell_id}.html", page(f"cell {r.cell_id}", body))


def write_cell_pages(df: pd.DataFrame, reports_dir: str | Path) -> list[Path]:
    """One page per row of the tidy table under reports_dir/cells/; returns the pages."""
    cells_dir = Path(reports_dir) / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    configs = [read_run_folder(d).cell_config for d in df["run_dir"]] if len(df) else []
    baseline = baseline_config([c for c in configs if c])
    curves = cell_curves(df) if len(df) else {}
    return [_cell_page(r, curves.get(r.cell_id), config, baseline, cells_dir)
            for r, config in zip(df.itertuples(index=False), configs)]
