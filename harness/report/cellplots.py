"""Figures of one or more single cells: curves, per-image score histograms, decomposition grids.

A cell page draws one cell, a side-by-side page two; both call these with a list of
(label, data) items so the two pages draw a cell the same way.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: no display on the study machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..cellseries import CellSeries  # noqa: E402
from ..fsutil import atomic_write  # noqa: E402
from .grids import draw_grid  # noqa: E402

__all__ = ["save_png", "curves_png", "scores_png", "grids_png"]

_CURVES = (("loss_total", "total loss"), ("grad_norm", "grad norm (pre-clip)"))


def save_png(fig, path: Path, dpi: int = 90) -> Path:
    """Write a matplotlib figure as PNG atomically and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return atomic_write(path, buf.getvalue())


def _marks(ax, it, values, spikes, label: str, color, clipped) -> None:
    """Spikes (harness/spikes.py, from collect; non-finite ones at the top) and clipped steps of one curve."""
    if spikes.any():
        top = np.nanmax(np.where(np.isfinite(values), values, np.nan)) if np.isfinite(values).any() else 1.0
        ax.plot(it[spikes], np.where(np.isfinite(values[spikes]), values[spikes], top), "v", color=color,
                ms=6, label=f"{label}spike ({int(spikes.sum())})")
    if clipped.any():
        ax.plot(it[clipped], values[clipped], ".", color=color, ms=3, label=f"{label}clipped ({int(clipped.sum())})")


def curves_png(items: Sequence[tuple[str, CellSeries]], path: Path) -> Path:
    """Loss and pre-clip grad norm of each (label, series), overlaid; spikes and clipped steps marked."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, (field, name) in zip(axes, _CURVES):
        for n, (label, curve) in enumerate(items):
            it, values = np.asarray(curve["iter"]), np.asarray(curve[field], dtype=float)
            clipped = np.asarray(curve["clipped"], dtype=bool)
            prefix = f"{label}: " if label else ""
            # dashed after the first, so two identical curves both stay visible
            line, = ax.plot(it, values, lw=0.8, color=f"C{n}", ls="-" if n == 0 else "--", label=label or name)
            _marks(ax, it, values, curve.spikes(field), prefix, line.get_color(), clipped)
        ax.set_xlabel("iteration")
        ax.set_title(name)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return save_png(fig, path)


def scores_png(items: Sequence[tuple[str, pd.DataFrame]], path: Path) -> Path:
    """Histograms of per-image SIDE (x1e-2) and MAD of each (label, eval_scores) item, overlaid."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    for ax, col, name in zip(axes, ("side", "mad"), ("SIDE ×10⁻²", "MAD (deg.)")):
        values = [s[col] * (100 if col == "side" else 1) for _, s in items]
        bins = np.histogram_bin_edges(np.concatenate([v.to_numpy() for v in values]), bins=20)
        for n, ((label, _), v) in enumerate(zip(items, values)):
            ax.hist(v, bins=bins, color=f"C{n}", alpha=0.6 if len(items) > 1 else 1.0, label=label or None)
        ax.set_xlabel(f"{name} per test image")
        ax.set_ylabel("images")
        if len(items) > 1:
            ax.legend(fontsize=8)
    return save_png(fig, path)


def grids_png(items: Sequence[tuple[str, str]], path: Path) -> Path | None:
    """Each (label, samples PNG) as a stretched grid, side by side; None when none is readable.

    The pages caption it with grids.STRETCH_CAPTION (how the depth and normal rows are stretched).
    """
    fig, axes = plt.subplots(1, len(items), figsize=(7 * len(items), 6), squeeze=False)
    drawn = 0
    for ax, (label, grid) in zip(axes.flat, items):
        ok = isinstance(grid, str) and draw_grid(ax, grid)
        ax.set_title(label if ok else f"{label}: no readable grid", fontsize=9)
        drawn += ok
    if not drawn:
        plt.close(fig)
        return None
    return save_png(fig, path)
