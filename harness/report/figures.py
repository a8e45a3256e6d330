"""Fig. 8 (training loss), gradient norms and Fig. 7 (decomposition grids).

Each figure is drawn from the tidy table plus the cells' series (harness.cellseries, from
collect: curves and the spike marks at the report's k); the only files opened here are the
sample PNGs named by the table. Panels are
one per (stack, impl); lines are the clipping modes (and any other axis that
varies), each the mean over seeds with the min-max spread shaded. No smoothing,
so single-iteration spikes stay visible.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on the study machines
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from model.config import DEFAULTS  # noqa: E402

from ..compare import canonical, normalized  # noqa: E402
from ..matrix import FACTOR_AXES  # noqa: E402
from .cellplots import save_png  # noqa: E402
from .grids import STRETCH_CAPTION, draw_grid  # noqa: E402
from .rows import impl_name, row_order, variant_axes  # noqa: E402
from .table3 import stack_label  # noqa: E402
from ..failure import with_failures  # noqa: E402

__all__ = ["fig8_losses", "grad_norms", "fig7_figure", "fig7_decompositions", "panels", "plotted_cells", "fig7_cells",
           "MAX_SEEDS_PER_LINE"]

# A line's band is drawn from at most this many seeds (lowest first): enough to
# show the spread, and it keeps a 10,000-cell study from reading every log twice.
MAX_SEEDS_PER_LINE = 20

_COLORS = {"none": "tab:red", "norm": "tab:blue", "value": "tab:green"}
_CLIP_ORDER = {"none": 0, "norm": 1, "value": 2}


def panels(df: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(stack, impl, title) of each panel, in Table 3's row order."""
    keys = df[["stack", "impl", "stack_cuda"]].drop_duplicates(["stack", "impl"])
    found = [(str(s), str(i), stack_label(s, c if isinstance(c, str) else None)) for s, i, c in keys.itertuples(index=False)]
    found.sort(key=lambda p: row_order(p[2], p[1]))
    return [(s, i, f"{label} · {impl_name(i)}") for s, i, label in found]


def _line_labels(cells: pd.DataFrame, variants: list[str]) -> pd.Series:
    """'clip=norm @ 5.0, lr=0.002, tf32=True': the clip mode, then each varying axis where the
    line's value is not the cells' most common one (or where the axis takes 3+ values, as a
    swept lr does), so a factor study's lines name what they changed. Unique per configuration."""
    label = cells["clip"].map(str)
    clipped = cells["clip"].map(str) != "none"
    label = "clip=" + label.where(~clipped, label + " @ " + cells["clip_threshold"].map(str))
    for axis in variants:
        if axis == "clip_threshold" or axis not in cells:
            continue
        values = cells[axis].map(str)
        shown = values != values.mode().iloc[0] if values.nunique() < 3 else values.notna()
        label = label.where(~shown, label + f", {axis.removeprefix('axis.')}=" + values)
    return label


def plotted_cells(df: pd.DataFrame) -> pd.DataFrame:
    """The cells whose curves Fig. 8 and the gradient-norm figure draw.

    Cells with a train log, at most MAX_SEEDS_PER_LINE per (stack, impl, line).
    """
    has = df[df["train_log"].notna()] if len(df) else df
    if has.empty:
        return has
    labels = _line_labels(has, variant_axes(df))
    order = has.assign(_line=labels).sort_values(
        "seed", key=lambda s: pd.to_numeric(s, errors="coerce"), kind="stable")
    return order.groupby(["stack", "impl", "_line"], sort=False).head(MAX_SEEDS_PER_LINE).drop(columns="_line")


def _band(series: list[pd.Series]) -> pd.DataFrame:
    """Mean, min and max over seeds, aligned on the logged iteration."""
    wide = pd.concat(series, axis=1)
    return pd.DataFrame({"mean": wide.mean(axis=1), "lo": wide.min(axis=1), "hi": wide.max(axis=1)})


def _series(curve: dict, field: str) -> pd.Series:
    values = pd.Series(curve[field], index=curve["iter"])
    values = values[np.isfinite(values.to_numpy()) & np.isfinite(values.index.to_numpy())]
    return values[~values.index.duplicated(keep="last")]  # a resumed run may repeat lines


def _draw_panel(ax, cells: pd.DataFrame, labels: pd.Series, curves: dict, field: str, threshold: bool) -> bool:
    """Draw every line of one panel (cells with curves, labels: their _line_labels); return whether anything was drawn."""
    drawn = False
    lines = sorted(labels.unique(), key=lambda l: (_CLIP_ORDER.get(l[5:].split(" ")[0], 9), l))
    # a few lines keep the clip colours; a factor study's many get one colour each, clipped dashed
    palette = plt.get_cmap("tab20").colors if len(lines) > len(_COLORS) else None
    for k, label in enumerate(lines):
        group = cells[labels == label]
        series = [s for s in (_series(curves[c], field) for c in group["cell_id"]) if len(s)]
        if not series:
            continue
        band = _band(series)
        clip = str(group["clip"].iloc[0])
        color = palette[k % len(palette)] if palette else _COLORS.get(clip, None)
        outcome = with_failures(group)["failed"].dropna()
        failed = f", failed {int(outcome.sum())}/{len(outcome)}" if len(outcome) else ""
        line, = ax.plot(band.index, band["mean"], lw=0.9, color=color, ls="--" if palette and clip != "none" else "-",
                        label=f"{label}, {len(series)} seed{'s' * (len(series) != 1)}{failed}")
        ax.fill_between(band.index, band["lo"], band["hi"], color=line.get_color(), alpha=0.2, lw=0)
        _mark_failed(ax, [curves[c] for c in group.loc[outcome[outcome == 1].index, "cell_id"]], field,
                     line.get_color())
        _mark_spikes(ax, [curves[c] for c in group["cell_id"]], field, line.get_color())
        if threshold and str(group["clip"].iloc[0]) == "norm":
            ax.axhline(float(group["clip_threshold"].iloc[0]), color=line.get_color(), ls="--",
                       lw=0.8, label=f"clip threshold {group['clip_threshold'].iloc[0]}")
        drawn = True
    return drawn


def _mark_failed(ax, cell_curves: list, field: str, color) -> None:
    """Each failed run's own curve, dotted, and an o where it ended (harness/failure.py).

    One artist for all the curves and one for all the ends: an artist per run cost seconds
    at 10,000 cells (benches/bench_report.py).
    """
    runs = [s for s in (_series(curve, field) for curve in cell_curves) if len(s)]
    if not runs:
        return
    ax.add_collection(LineCollection([np.column_stack([s.index, s.to_numpy()]) for s in runs],
                                     linestyles=":", linewidths=0.7, colors=color))
    label = "failed run (dotted, o at its end)"
    first = label not in [c.get_label() for c in ax.collections]
    ax.scatter([s.index[-1] for s in runs], [s.iloc[-1] for s in runs], marker="o", s=18, facecolors="none",
               edgecolors=color, zorder=3, label=label if first else None)


def _mark_spikes(ax, cell_curves: list, field: str, color) -> None:
    """An x on each cell's curve where it spikes (harness/spikes.py, from collect); non-finite ones are not drawn."""
    xs, ys = [], []
    for curve in cell_curves:
        values = np.asarray(curve[field], dtype=float)
        mask = curve.spikes(field) & ~np.isnan(values)
        finite = np.isfinite(values)
        xs += list(np.asarray(curve["iter"])[mask & finite])
        ys += list(values[mask & finite])
    if xs:
        first = not any(str(c.get_label()).startswith("spikes") for c in ax.collections)
        ax.scatter(xs, ys, marker="x", s=28, color=color, zorder=3, label="spikes (x)" if first else None)


def _scale(ax) -> None:
    """Log y when all data are positive; the confidence-weighted loss can be < 0: then linear,
    or symlog (linear within +-1) when a spike reaches past 10."""
    data = [np.asarray(l.get_ydata(), dtype=float) for l in ax.get_lines() if len(l.get_ydata())]
    data += [seg[:, 1] for c in ax.collections if type(c) is LineCollection for seg in c.get_segments() if len(seg)]
    low = min((np.nanmin(d) for d in data), default=1.0)
    reach = max((np.nanmax(np.abs(d)) for d in data), default=1.0)
    if low > 0:
        ax.set_yscale("log")
    elif reach > 10:
        ax.set_yscale("symlog", linthresh=1.0)


def _grid(n: int, width: float, height: float):
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _empty(path: Path, text: str) -> Path:
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center")
    return save_png(fig, path, dpi=100)


LEGEND_INSIDE = 6   # more entries than this go beside the panel, which widens for them


def _legend(ax) -> None:
    entries = len(ax.get_legend_handles_labels()[1])
    if entries > LEGEND_INSIDE:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    else:
        ax.legend(fontsize=8, loc="upper right")


def _curve_figure(df, curves, field, path, ylabel, suptitle, threshold=False) -> Path:
    has = df[df["cell_id"].isin(curves.keys())] if len(df) else df
    if has.empty:
        return _empty(path, f"no training logs with {field} yet")
    variants = variant_axes(df)
    keys = panels(has)
    cells_of = [has[(has["stack"].map(str) == stack) & (has["impl"].map(str) == impl)] for stack, impl, _ in keys]
    labels_of = [_line_labels(cells, variants) for cells in cells_of]
    many = max(labels.nunique() for labels in labels_of) > LEGEND_INSIDE // 2
    fig, axes = _grid(len(keys), 9.5 if many else 5.2, 4.2 if many else 3.6)
    for ax, (_, _, name), cells, labels in zip(axes, keys, cells_of, labels_of):
        if _draw_panel(ax, cells, labels, curves, field, threshold):
            _scale(ax)
            _legend(ax)
        ax.set_title(name, fontsize=11)
        ax.set_xlabel("iteration", fontsize=10)
        ax.set_ylabel(ylabel, fontsize=10)
        ax.grid(alpha=0.3, which="both", lw=0.4)
    fig.suptitle(suptitle)
    return save_png(fig, path, dpi=100)


def fig8_losses(df: pd.DataFrame, curves: dict, path: str | Path) -> Path:
    """Fig. 8: total training loss per stack, with vs without clipping (log y)."""
    return _curve_figure(df, curves, "loss_total", Path(path), "total loss",
                         "Fig. 8: training loss with and without gradient clipping "
                         "(mean over seeds, shaded: min-max)")


def grad_norms(df: pd.DataFrame, curves: dict, path: str | Path) -> Path:
    """Global gradient norm before clipping, with the norm-clipping threshold dashed."""
    return _curve_figure(df, curves, "grad_norm", Path(path), "grad norm (pre-clip)",
                         "Global gradient norm before clipping (mean over seeds, shaded: min-max)",
                         threshold=True)


def _pick(cells: pd.DataFrame) -> pd.Series | None:
    """The cell whose grid Fig. 7 shows: finished ones first, then those with every factor axis
    at the trainer's default (a factor study's baseline), then the lowest seed."""
    cells = cells[cells["samples_grid"].notna()]
    if cells.empty:
        return None
    rank = cells["state"].map({"done": 0, "diverged": 1}).fillna(2)
    off = sum((normalized(cells[a]) != canonical(DEFAULTS[a])).astype(int)
              for a in FACTOR_AXES if a in cells.columns)
    return cells.assign(_rank=rank, _off=off).sort_values(["_rank", "_off", "seed"]).iloc[0]


def fig7_cells(df: pd.DataFrame) -> list[tuple[str, str, str, pd.Series | None]]:
    """(panel title, stack, clip, chosen cell or None) for each Fig. 7 panel, row by row."""
    has = df[df["samples_grid"].notna()] if len(df) else df
    if has.empty:
        return []
    modes = sorted(has["clip"].map(str).unique(), key=lambda c: (_CLIP_ORDER.get(c, 9), c))
    return [(name, stack, clip, _pick(has[(has["stack"].map(str) == stack) & (has["impl"].map(str) == impl)
                                          & (has["clip"].map(str) == clip)]))
            for stack, impl, name in panels(has) for clip in modes]


def fig7_figure(df: pd.DataFrame):
    """Fig. 7 as a matplotlib figure (None when no cell has a grid): rows per stack, columns per clip mode.

    Constrained layout keeps the two-line panel titles clear of each other and of the title above.
    """
    chosen = fig7_cells(df)
    if not chosen:
        return None
    modes = list(dict.fromkeys(clip for _, _, clip, _ in chosen))
    n_rows = len(chosen) // len(modes)
    fig, axes = plt.subplots(n_rows, len(modes), figsize=(5.2 * len(modes), 4.6 * n_rows),
                             squeeze=False, layout="constrained")
    for ax, (name, _, clip, cell) in zip(axes.flat, chosen):
        if cell is None or not draw_grid(ax, cell["samples_grid"], max_cols=6):
            ax.axis("off")
            ax.set_title(f"{name}\nclip={clip}: no readable grid", fontsize=10)
            continue
        ax.set_title(f"{name} · clip={clip}\nseed {cell['seed']} · {cell['state']} · cell {cell['cell_id']}",
                     fontsize=10)
    fig.suptitle("Fig. 7: decompositions per stack, one seed each, without clipping (left) and "
                 f"with clipping (right)\n{STRETCH_CAPTION}", fontsize=10)
    return fig


def fig7_decompositions(df: pd.DataFrame, path: str | Path) -> Path:
    """Fig. 7: per stack, the final decomposition grid of one seed, clipped vs not.

    Depth and normal rows are stretched per tile (harness.report.grids) so relief shows.
    """
    fig = fig7_figure(df)
    if fig is None:
        return _empty(Path(path), "no decomposition grids (samples/*.png) yet")
    return save_png(fig, Path(path), dpi=100)
