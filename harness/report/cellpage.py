"""reports/cells/<id>.html: one page per cell (state, config, env, curves, scores, grid, raw files).

A page draws no figure at report time: its curves (float32) and score histograms are
embedded as base64 and drawn as SVG in the browser by reports/cellplot.js (spikes and
clipped steps come from the report, harness/spikes.py at its k). Measured on this 2-core
machine (benches/bench_report.py --pages): matplotlib PNGs cost ~300 ms a page, SVG path
text from Python a few ms, the base64 copy tens of microseconds. The last decomposition grid
is the trainer's PNG, linked where it lies. Pages are written by one process per core
and only when their inputs changed (the key `page_keys` returns).
"""
from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..cellseries import CellSeries
from ..collect import Results, configs_of
from ..forkmap import forkmap
from ..fsutil import atomic_write
from ..matrix import SWEPT_AXES
from .page import esc, link, page, table
from .runfiles import RAW_FILES, read_env
from .sidebyside import compare_href
from model.factors import IN_FORCE_KEYS, describe_in_force

__all__ = ["PLOT_JS", "baseline_config", "clip_counterparts", "write_cell_pages", "cell_href"]

PLOT_JS = "cellplot.js"     # beside index.html; every cell page loads it
_PLOT_JS_SOURCE = Path(__file__).with_name(PLOT_JS)


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


def _b64(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values).tobytes()).decode("ascii")


def _hist(hist) -> dict | None:
    return None if hist is None else {"edges": [float(e) for e in hist[0]], "counts": [int(c) for c in hist[1]]}


def plot_data(series: CellSeries | None, threshold: float | None) -> dict:
    """What cellplot.js draws: curves as base64 float32/uint8, histograms as lists."""
    if series is None:
        return {}
    curves = {k: _b64(series[k].astype(np.float32)) for k in ("iter", "loss_total", "grad_norm")}
    curves.update({k: _b64(getattr(series, k).astype(np.uint8)) for k in ("clipped", "loss_spikes", "grad_spikes")})
    return {"curves": curves if len(series) else None, "threshold": threshold,
            "side_hist": _hist(series.side_hist), "mad_hist": _hist(series.mad_hist)}


def _figures(r, series: CellSeries | None, cells_dir: Path) -> str:
    """The curves and histograms (drawn by cellplot.js) and the trainer's last grid."""
    threshold = float(r.clip_threshold) if str(r.clip) == "norm" and _is_number(r.clip_threshold) else None
    data = plot_data(series, threshold)
    parts = []
    if data.get("curves"):
        parts.append("<h2>Curves</h2><div id='curves' class='cols'></div><p class='small'>▼ spikes "
                     "(harness/spikes.py; non-finite ones at the top), ● steps clipping changed"
                     + (", dashed: the clip threshold" if threshold is not None else "") + "</p>")
    if data.get("side_hist") or data.get("mad_hist"):
        parts.append("<h2>Eval scores</h2><div id='scores' class='cols'></div>")
    if isinstance(r.samples_grid, str):
        src = os.path.relpath(r.samples_grid, cells_dir).replace(os.sep, "/")
        parts.append(f"<h2>Last decomposition grid</h2><img src='{esc(src)}' alt='grid'><p class='small'>"
                     "as the trainer wrote it; Fig. 7 and <code>repro report --side-by-side</code> show it with the depth "
                     "and normal tiles stretched</p>")
    if data:
        parts.append(f"<script src='../{PLOT_JS}'></script><script>drawCell({json.dumps(data)});</script>")
    return "".join(parts)


def _is_number(value) -> bool:
    try:
        return np.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def clip_counterparts(df: pd.DataFrame) -> dict[str, list[tuple[str, str]]]:
    """cell_id -> (cell_id, clip) of the cells that differ from it only in clipping (the seed's question)."""
    same = [a for a in SWEPT_AXES if a in df.columns and a not in ("clip", "clip_threshold")]
    keys = [""] * len(df)
    for axis in same:   # column by column: a row-wise join costs seconds at 10,000 cells
        keys = [k + "|" + str(v) for k, v in zip(keys, df[axis])]
    groups: dict[str, list[tuple[str, str]]] = {}
    for key, cell, clip in zip(keys, df["cell_id"], df["clip"].map(str)):
        groups.setdefault(key, []).append((cell, clip))
    return {cell: [(c, k) for c, k in members if k != clip] for members in groups.values() for cell, clip in members}


def _comparisons(cell_id: str, pages: list[tuple[str, str]], counterparts: list[tuple[str, str]]) -> str:
    """Links to the comparison pages that show this cell, else the command for its clip counterparts."""
    links = [link(f"../{name}", f"vs {other}") for name, other in pages]
    shown = {other for _, other in pages}
    links += [f"clip={esc(clip)} cell {link(other + '.html', other)}: <code>repro report --side-by-side "
              f"{esc(cell_id)} {esc(other)}</code> (writes {esc(compare_href(cell_id, other))})"
              for other, clip in counterparts if other not in shown]
    return f"<p class='small'>side by side: {' · '.join(links)}</p>" if links else ""


@functools.lru_cache(maxsize=256)
def _env_html(env_json: str | None) -> tuple[str, str]:
    """(numerics in force, the env.json table) of one env.json text: the cells of a stack share it,
    so each text is shaped once, not once per page."""
    env = read_env(env_json)
    values = env.get("in_force")
    if not isinstance(values, dict) or set(values) != set(IN_FORCE_KEYS):
        numerics = "<p class='small'>numerics in force: not recorded (env.json has no in_force)</p>"
    else:
        numerics = f"<p>numerics in force: {esc(describe_in_force(values))}</p>"
    return numerics, _kv(env)


def _cell_page(r, series, config: dict, baseline: dict, cells_dir: Path, comparisons: str,
               present: frozenset[str]) -> Path:
    run = os.path.relpath(r.run_dir, cells_dir).replace(os.sep, "/")
    raw = " · ".join(link(f"{run}/{f}", f) for f in RAW_FILES if f.rstrip("/") in present)
    numerics, env = _env_html(r.env_json if isinstance(r.env_json, str) else None)
    body = (f"<p>{link('../index.html', 'report')}</p><h1>cell {esc(r.cell_id)}: {esc(r.name)}</h1>"
            f"<p>state <span class='state-{esc(r.state)}'>{esc(r.state)}</span> {esc(r.reason)}"
            f" {esc(r.problems)}</p><p class='small'>raw files: {raw}</p>" + comparisons
            + numerics + _figures(r, series, cells_dir)
            + "<h2>Config (highlighted: differs from the study's baseline)</h2>"
            + _kv(config, baseline) + "<h2>Environment (env.json)</h2>" + env)
    # a page is regenerated from results/ at will: atomic, but not worth an fsync each
    return atomic_write(cells_dir / f"{r.cell_id}.html", page(f"cell {r.cell_id}", body), durable=False)


def _write_pages(indices: list[int], job: dict) -> list[Path]:
    """Write the pages of some rows (a forkmap worker's share; job holds what every page needs)."""
    df, configs = job["df"], job["configs"]
    return [_cell_page(r, job["series"].get(r.cell_id), configs[i], job["baseline"], job["cells_dir"],
                       _comparisons(r.cell_id, job["pages"].get(r.cell_id, []), job["counterparts"].get(r.cell_id, [])),
                       job["files"].get(r.cell_id, frozenset()))
            for i, r in zip(indices, df.iloc[indices].itertuples(index=False))]


def _compared_pages(compared) -> dict[str, list[tuple[str, str]]]:
    """cell_id -> (page name, other cell id) of the comparison pages written so far."""
    found: dict[str, list[tuple[str, str]]] = {}
    for a, b in compared:
        found.setdefault(a, []).append((compare_href(a, b), b))
        found.setdefault(b, []).append((compare_href(a, b), a))
    return found


def _key(*parts) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()


def write_cell_pages(results: Results, reports_dir: str | Path, compared=(),
                     previous: dict | None = None) -> tuple[list[Path], dict[str, str]]:
    """The page of every row of the table under reports_dir/cells/, redrawn only where its inputs changed.

    Args:
        results: what collect returned; compared: (a, b) cell ids of the comparison pages written.
        previous: cell_id -> key from the last report (its pages are kept where the key is the same
            and the page is there; harness.report.state drops the keys when the code changed).

    Returns:
        (pages written, cell_id -> key of every page).
    """
    out = Path(reports_dir)
    cells_dir = out / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out / PLOT_JS, _PLOT_JS_SOURCE.read_bytes(), durable=False)
    df = results.table
    configs = configs_of(df)
    baseline = baseline_config([c for c in configs if c])
    pages, counterparts = _compared_pages(compared), clip_counterparts(df)
    cells = [read for read in results.reads.values() if isinstance(read.row, dict)]
    signatures = {read.row["cell_id"]: read.signature for read in cells}
    context = _key(baseline)
    keys = {cid: _key(context, signatures.get(cid), stale, reason, pages.get(cid), counterparts.get(cid))
            if signatures.get(cid) is not None else ""
            for cid, stale, reason in zip(df["cell_id"], df["stale"], df["stale_reason"])}
    previous = previous or {}
    there = set(os.listdir(cells_dir))   # one listing, not a stat per page
    todo = [i for i, cid in enumerate(df["cell_id"])
            if not keys[cid] or previous.get(cid) != keys[cid] or f"{cid}.html" not in there]
    job = {"df": df, "configs": configs, "baseline": baseline, "series": results.series, "cells_dir": cells_dir,
           "pages": pages, "counterparts": counterparts, "files": {read.row["cell_id"]: read.files for read in cells}}
    return forkmap(_write_pages, todo, context=job), keys
