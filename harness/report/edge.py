"""reports/edge.md and edge.png: the learning rate at which training starts to fail.

Reads the cells that vary only in `lr` (and seed), with clipping off (other factors held at
their most common value, so a factor study run into the same folder does not leak in): per learning rate, the
failure rate of the cells that ended (harness/failure.py) with its exact Clopper-Pearson
interval; over all of them, a logistic fit of failed ~ log10(lr) (statsmodels GLM, binomial)
and the edge: the lr at which the fitted failure probability is 50%, with the lr range where
the fit's 95% confidence band contains 50% as its interval (inverse prediction, equivalent
to Fieller's interval). Where the outcomes separate perfectly (every run below some lr
learns, every run above it fails) the fit has no finite slope: the edge is then reported as
the bracket between the two learning rates, which is all such data can say.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import statsmodels.api as sm  # noqa: E402

from ..compare import DESIGN_KEYS, normalized  # noqa: E402
from ..failure import KINDS, describe_rate, rate_interval, with_failures  # noqa: E402
from ..fsutil import atomic_write  # noqa: E402

__all__ = ["Edge", "edge_cells", "fit_edge", "write_edge"]

LEVEL = 0.95
_HELD = tuple(k for k in DESIGN_KEYS if k not in ("lr", "clip", "clip_threshold"))  # fixed at their baseline
_GRID = 400        # points of the log10(lr) grid the confidence band is read on


@dataclasses.dataclass(frozen=True)
class Edge:
    """The lr at 50% failure and its interval; `how` says which estimate it is."""
    lr50: float
    low: float
    high: float
    how: str          # 'logistic fit' | 'bracket (perfect separation)' | 'no edge in range: ...'
    slope: float = math.nan   # per decade of lr, on the log-odds scale


def edge_cells(df: pd.DataFrame) -> pd.DataFrame:
    """The unclipped cells of a study whose lr takes 3 or more values, with outcome columns:
    those that differ in lr alone, every other design key at its most common value (a factor
    study's baseline), so a factor's cells at one lr do not move that lr's rate."""
    if "lr" not in df or df["lr"].dropna().nunique() < 3:
        return df.iloc[0:0]
    cells = df[(df["clip"].astype(str) == "none") & df["lr"].notna()]
    for key in _HELD:
        if key in cells and len(cells):
            values = normalized(cells[key])
            cells = cells[values == values.mode().iloc[0]]
    return with_failures(cells)


def rates(cells: pd.DataFrame) -> pd.DataFrame:
    """Per lr: cells ended, failures (and each kind), the rate and its exact interval."""
    rows = []
    for lr, group in cells.groupby("lr", sort=True):
        ended = group["failed"].dropna()
        rate, low, high = rate_interval(int(ended.sum()), len(ended))
        rows.append({"lr": float(lr), "cells": len(group), "ended": len(ended), "failed": int(ended.sum()),
                     **{k: int(group["failed_" + k].sum()) for k in KINDS},
                     "rate": rate, "low": low, "high": high,
                     "side": float(group.loc[group["state"] == "done", "side_mean"].mean() * 100),
                     "mad": float(group.loc[group["state"] == "done", "mad_mean"].mean())})
    return pd.DataFrame(rows)


def fit_edge(lr: np.ndarray, failed: np.ndarray) -> Edge:
    """The lr at 50% failure from 0/1 outcomes at learning rates lr (one per ended cell)."""
    lr, y = np.asarray(lr, float), np.asarray(failed, float)
    x = np.log10(lr)
    passed, fails = lr[y == 0], lr[y == 1]
    if not len(fails) or not len(passed):
        what = "every run failed" if len(fails) else "no run failed"
        return Edge(math.nan, math.nan, math.nan, f"no edge in range: {what}")
    if passed.max() < fails.min():
        low, high = float(passed.max()), float(fails.min())
        return Edge(math.sqrt(low * high), low, high, "bracket (perfect separation)")
    design = sm.add_constant(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.GLM(y, design, family=sm.families.Binomial()).fit()
    b0, b1 = fit.params
    grid = np.linspace(x.min() - 1, x.max() + 1, _GRID)
    band = fit.get_prediction(sm.add_constant(grid)).conf_int(alpha=1 - LEVEL)   # (grid, 2) probabilities
    inside = grid[(band[:, 0] <= 0.5) & (band[:, 1] >= 0.5)]
    low, high = (10 ** inside.min(), 10 ** inside.max()) if len(inside) else (math.nan, math.nan)
    return Edge(10 ** (-b0 / b1), low, high, "logistic fit", float(b1))


def _figure(table: pd.DataFrame, cells: pd.DataFrame, edge: Edge, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
    yerr = np.vstack([table["rate"] - table["low"], table["high"] - table["rate"]])
    ax.errorbar(table["lr"], table["rate"], yerr=yerr, fmt="o", capsize=3, color="C3",
                label="failure rate, 95% exact CI")
    if edge.how == "logistic fit":
        lr = np.logspace(np.log10(table["lr"].min()) - 0.1, np.log10(table["lr"].max()) + 0.1, 200)
        ax.plot(lr, 1 / (1 + (edge.lr50 / lr) ** edge.slope), color="C0", label="logistic fit")
    if not math.isnan(edge.lr50):
        ax.axvline(edge.lr50, color="C0", ls="--", lw=1)
        ax.axvspan(edge.low, edge.high, color="C0", alpha=0.12, label=f"edge, {edge.how}")
    ax.set_xscale("log")
    # ticks at the learning rates tried: log-scale minor labels collide across 2e-4..4e-3
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks(table["lr"], [f"{lr:g}" for lr in table["lr"]], fontsize=8, rotation=30)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("failed runs")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("Where training fails: failure rate per learning rate (clipping off)", fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_edge(df: pd.DataFrame, reports_dir: str | Path) -> list[Path]:
    """edge.md and edge.png when the results hold an lr sweep; [] otherwise."""
    cells = edge_cells(df)
    if cells.empty:
        return []
    out = Path(reports_dir)
    table = rates(cells)
    ended = cells[cells["failed"].notna()]
    edge = fit_edge(ended["lr"].astype(float).to_numpy(), ended["failed"].to_numpy())
    shown = table.assign(**{"failure rate": [describe_rate(f, n) for f, n in zip(table["failed"], table["ended"])]})
    lines = ["# The learning-rate edge", "",
             "Unclipped cells per learning rate; a run failed when it went non-finite, spiked or ended no "
             "better than flat depth (harness/failure.py, each kind counted apart). SIDE x1e-2 and MAD "
             "(exact angle) are means over the runs that finished.", "",
             shown[["lr", "cells", "ended", "failure rate"] + list(KINDS) + ["side", "mad"]]
             .to_markdown(index=False, floatfmt=".4g"), "",
             f"Edge (lr at 50% failure), {edge.how}: " + (
                 "none" if math.isnan(edge.lr50) else
                 f"{edge.lr50:.3g}, 95% interval {edge.low:.3g} to {edge.high:.3g}"), ""]
    return [atomic_write(out / "edge.md", "\n".join(lines)), _figure(table, cells, edge, out / "edge.png")]
