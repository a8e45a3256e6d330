"""reports/compare-<a>-<b>.html: two cells on one page (`repro report --side-by-side A B`).

Both cells' loss and grad-norm curves overlaid, their per-image score histograms
overlaid, their decomposition grids side by side, their scores in one table, and
the config and env.json keys that differ highlighted (the equal ones folded away).
Figures go to reports/compare-<a>-<b>/; the page opens from disk like the others.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..fsutil import atomic_write
from .cellplots import curves_png, grids_png, scores_png
from .celllinks import cell_href, compare_href
from .grids import STRETCH_CAPTION
from .page import esc, link, page, table
from ..collect import configs_of
from .runfiles import read_env, read_scores

__all__ = ["write_compare_page"]

# (label, column, scale, format) of the scores table
_SCORES = (("SIDE ×10⁻² (test mean)", "side_mean", 100, ".4f"),
           ("SIDE ×10⁻² (± over test images)", "side_std", 100, ".4f"),
           ("MAD deg. (test mean)", "mad_mean", 1, ".2f"),
           ("MAD deg. (± over test images)", "mad_std", 1, ".2f"),
           ("flat-depth SIDE ×10⁻²", "flat_side_mean", 100, ".4f"),
           ("flat-depth MAD deg.", "flat_mad_mean", 1, ".2f"),
           ("test images", "n_images", 1, ".0f"),
           ("last iteration", "last_iter", 1, ".0f"),
           ("final loss", "final_loss", 1, ".5g"),
           ("spikes", "n_spikes", 1, ".0f"),
           ("first spike at iteration", "first_spike_iter", 1, ".0f"),
           ("max pre-clip grad norm", "max_grad_norm", 1, ".4g"),
           ("steps clipped (%)", "clipped_frac", 100, ".1f"),
           ("wall time (s)", "wall_s", 1, ".0f"))


def _number(value, scale: float) -> float | None:
    try:
        number = float(value) * scale
    except (TypeError, ValueError):
        return None
    return None if pd.isna(number) else number


def _scores_table(a: pd.Series, b: pd.Series) -> str:
    rows, classes = [], []
    for label, column, scale, fmt in _SCORES:
        x, y = (_number(r.get(column), scale) for r in (a, b))
        diff = format(y - x, "+" + fmt) if x is not None and y is not None else ""
        rows.append([esc(label)] + [format(v, fmt) if v is not None else "" for v in (x, y)] + [diff])
        classes.append("differs" if diff and float(diff) != 0 else "")
    return table(["", f"A {a['cell_id']}", f"B {b['cell_id']}", "B − A"], rows, classes)


def _text(value) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)


def _diff_table(a: dict, b: dict, what: str) -> str:
    """Every key of a and b; the ones whose values differ first and highlighted, the rest folded."""
    keys = sorted(set(a) | set(b))
    differ = [k for k in keys if _text(a.get(k, "—")) != _text(b.get(k, "—"))]
    same = [k for k in keys if k not in differ]
    row = lambda k: [esc(k), esc(_text(a.get(k, "—"))), esc(_text(b.get(k, "—")))]  # noqa: E731
    header = ["key", "A", "B"]
    shown = table(header, [row(k) for k in differ], ["differs"] * len(differ)) if differ else ""
    folded = (f"<details><summary>{len(same)} {what} keys are equal</summary>"
              f"{table(header, [row(k) for k in same])}</details>") if same else ""
    return f"<p>{len(differ)} of {len(keys)} {what} keys differ (highlighted).</p>{shown}{folded}"


def _figures(a: pd.Series, b: pd.Series, curves: dict, out: Path, folder: str) -> str:
    labels = {a["cell_id"]: f"A {a['cell_id']}", b["cell_id"]: f"B {b['cell_id']}"}
    parts = []
    items = [(labels[c], curves[c]) for c in labels if c in curves]
    if items:
        curves_png(items, out / "curves.png")
        parts.append(f"<h2>Curves (overlaid)</h2><img src='{folder}/curves.png' alt='curves'>"
                     f"<p class='small'>{esc(', '.join(i[0] for i in items))}; triangles: spikes, dots: clipped steps</p>")
    scores = [(labels[r["cell_id"]], read_scores(r["run_dir"])) for r in (a, b)]
    scores = [s for s in scores if len(s[1])]
    if scores:
        scores_png(scores, out / "scores.png")
        parts.append(f"<h2>Per-image scores (overlaid)</h2><img src='{folder}/scores.png' alt='scores'>")
    if grids_png([(labels[r["cell_id"]], r.get("samples_grid")) for r in (a, b)], out / "grids.png"):
        parts.append(f"<h2>Last decomposition grids (A left, B right)</h2><img src='{folder}/grids.png' "
                     f"alt='grids'><p class='small'>{esc(STRETCH_CAPTION)}</p>")
    return "".join(parts)


def _who(r: pd.Series, which: str) -> list[str]:
    return [which, link(cell_href(r["cell_id"]), r["cell_id"]), esc(r["name"]),
            f"<span class='state-{esc(r['state'])}'>{esc(r['state'])}</span>", esc(r.get("reason"))]


def write_compare_page(series: dict, a: pd.Series, b: pd.Series, reports_dir: str | Path) -> Path:
    """Write reports_dir/compare-<a>-<b>.html (and its figures) for rows a and b of the tidy table.

    series: collect's cell_id -> CellSeries (the curves drawn).

    Returns:
        The page's path.
    """
    name = compare_href(a["cell_id"], b["cell_id"])
    folder = name.removesuffix(".html")
    out = Path(reports_dir) / folder
    out.mkdir(parents=True, exist_ok=True)
    body = (f"<p>{link('index.html', 'report')}</p><h1>{esc(a['cell_id'])} vs {esc(b['cell_id'])}</h1>"
            + table(["", "cell", "name", "state", "reason"], [_who(a, "A"), _who(b, "B")])
            + "<h2>Scores (highlighted: differ)</h2>" + _scores_table(a, b)
            + _figures(a, b, series, out, folder)
            + "<h2>Config</h2>" + _diff_table(*configs_of(pd.DataFrame([a, b])), "config")
            + "<h2>Environment (env.json)</h2>"
            + _diff_table(read_env(a["env_json"]), read_env(b["env_json"]), "env.json"))
    return atomic_write(Path(reports_dir) / name, page(f"{a['cell_id']} vs {b['cell_id']}", body))
