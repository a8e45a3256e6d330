"""reports/cell.html and reports/cells/<shard>.js: every cell's page (state, config, env, curves, scores, grid, raw files).

One static page shows any cell: cell.html#<cell_id> loads the shard of the cells' data that
holds it (harness.report.celllinks) and builds the page in the browser (cellpage.js; the curves
and score histograms as SVG by cellplot.js). The report writes data, not pages: a cell's entry
is its heading as HTML, its config and env.json as the JSON texts the table already holds, its
curves as base64 float32 with the spikes and clipped steps the report computed (harness/spikes.py),
and its last decomposition grid's path. The study's baseline config (each key's most common
value) goes once, to cells/study.js; the page highlights where a cell differs from it.
Why: a file per cell cost a 10,000-cell report 10,000 file creations and page shapings (2.2 s
of a cold report on this 2-core machine, benches/bench_report.py); 256 shards at most cost a
fraction of that. A shard is rewritten only when the key of one of its cells changed.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd

from ..cellseries import CellSeries
from ..collect import Results, configs_of
from ..forkmap import forkmap
from ..fsutil import atomic_write
from ..matrix import SWEPT_AXES
from .celllinks import CELL_PAGE, SHARDS_DIR, cell_href, compare_href, shard_file, shard_of
from .page import CSS, esc, link
from .runfiles import RAW_FILES, read_env
from model.factors import IN_FORCE_KEYS, describe_in_force

__all__ = ["PAGE_JS", "PLOT_JS", "STUDY_JS", "baseline_config", "clip_counterparts", "plot_data", "write_cell_pages"]

PLOT_JS, PAGE_JS = "cellplot.js", "cellpage.js"   # beside index.html; cell.html loads both
STUDY_JS = "study.js"                              # in cells/, beside the shards: the baseline config
_HERE = Path(__file__).parent


def baseline_config(configs: list[dict]) -> dict:
    """The study's baseline: each key's most common value over the cells' configs (compared by repr)."""
    keys = sorted({k for c in configs for k in c})
    baseline = {}
    for k in keys:
        values = {}
        for c in configs:
            values.setdefault(repr(c.get(k)), c.get(k))
        common = pd.Series([repr(c.get(k)) for c in configs]).mode().iloc[0]
        baseline[k] = values[common]
    return baseline


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
    links = [link(name, f"vs {other}") for name, other in pages]
    shown = {other for _, other in pages}
    links += [f"clip={esc(clip)} cell {link(cell_href(other), other)}: <code>repro report --side-by-side "
              f"{esc(cell_id)} {esc(other)}</code> (writes {esc(compare_href(cell_id, other))})"
              for other, clip in counterparts if other not in shown]
    return f"<p class='small'>side by side: {' · '.join(links)}</p>" if links else ""


@functools.lru_cache(maxsize=256)
def _numerics(env_json: str | None) -> str:
    """The numerics in force of one env.json text (the cells of a stack share it: shaped once)."""
    values = read_env(env_json).get("in_force")
    if not isinstance(values, dict) or set(values) != set(IN_FORCE_KEYS):
        return "<p class='small'>numerics in force: not recorded (env.json has no in_force)</p>"
    return f"<p>numerics in force: {esc(describe_in_force(values))}</p>"


@functools.lru_cache(maxsize=64)
def _relative_folder(folder: str, reports_dir: str) -> str:
    return os.path.relpath(folder, reports_dir).replace(os.sep, "/")


def _relative(path: str, reports_dir: str) -> str:
    """A path relative to reports/ (the folders of a study's files repeat: each is resolved once)."""
    folder, name = os.path.split(path)
    return _relative_folder(folder, reports_dir) + "/" + name


def _text(value) -> str | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _entry(r, series: CellSeries | None, reports_dir: str, comparisons: str, present: frozenset[str]) -> str:
    """One cell's data as JSON text (the config and env.json texts go in as the table holds them)."""
    run = esc(_relative(r.run_dir, reports_dir))
    raw = " · ".join(f'<a href="{run}/{f}">{f}</a>' for f in RAW_FILES if f.rstrip("/") in present)   # names need no escaping
    env_json = r.env_json if isinstance(r.env_json, str) else None
    head = (f"<p>{link('index.html', 'report')}</p><h1>cell {esc(r.cell_id)}: {esc(r.name)}</h1>"
            f"<p>state <span class='state-{esc(r.state)}'>{esc(r.state)}</span> {esc(r.reason)}"
            f" {esc(r.problems)}</p><p class='small'>raw files: {raw}</p>" + comparisons + _numerics(env_json))
    threshold = float(r.clip_threshold) if str(r.clip) == "norm" and _is_number(r.clip_threshold) else None
    grid = _relative(r.samples_grid, reports_dir) if isinstance(r.samples_grid, str) else None
    small = _encode({"id": _text(r.cell_id), "head": head, "plot": plot_data(series, threshold), "grid": grid})
    config = r.config_json if isinstance(r.config_json, str) else "{}"
    return f'{small[:-1]}, "config": {config}, "env": {env_json or "{}"}}}'


def _encode(value) -> str:
    """JSON text (msgspec: a few times faster than json.dumps, 10,000 times a cold report)."""
    return msgspec.json.encode(value).decode()


_COLUMNS = ["cell_id", "name", "state", "reason", "problems", "run_dir", "env_json", "config_json", "clip",
            "clip_threshold", "samples_grid"]


def _write_shards(shards: list[str], job: dict) -> list[Path]:
    """Write some shards (a forkmap worker's share; job holds what every entry needs)."""
    rows, members, out = job["rows"], job["members"], job["out"]
    written = []
    for shard in shards:
        entries = []
        for i in members[shard]:
            r = rows[i]
            entries.append(_encode(r.cell_id) + ": " + _entry(
                r, job["series"].get(r.cell_id), str(out),
                _comparisons(r.cell_id, job["pages"].get(r.cell_id, []), job["counterparts"].get(r.cell_id, [])),
                job["files"].get(r.cell_id, frozenset())))
        text = "addCells({\n" + ",\n".join(entries) + "\n});\n"
        # regenerated from results/ at will: atomic, but not worth an fsync each
        written.append(atomic_write(out / shard_file(shard), text, durable=False))
    return written


def _compared_pages(compared) -> dict[str, list[tuple[str, str]]]:
    """cell_id -> (page name, other cell id) of the comparison pages written so far."""
    found: dict[str, list[tuple[str, str]]] = {}
    for a, b in compared:
        found.setdefault(a, []).append((compare_href(a, b), b))
        found.setdefault(b, []).append((compare_href(a, b), a))
    return found


def _key(*parts) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()


def cell_page_html() -> str:
    """reports/cell.html: the page every cell link opens (cellpage.js fills it from the cell's shard)."""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>cell</title><style>{CSS}</style></head>"
            "<body><div id='cell'><p>loading the cell's data…</p></div>"
            "<noscript>This page draws the cell from reports/cells/*.js: it needs JavaScript.</noscript>"
            f"<script src='{PLOT_JS}'></script><script src='{PAGE_JS}'></script>"
            "<script>showCell();</script></body></html>\n")


def _write_assets(out: Path, baseline: dict, shards: list[str]) -> list[Path]:
    """cell.html, its two scripts and cells/study.js (the baseline config, and the shards there are)."""
    assets = [atomic_write(out / name, (_HERE / name).read_bytes(), durable=False) for name in (PLOT_JS, PAGE_JS)]
    assets.append(atomic_write(out / CELL_PAGE, cell_page_html(), durable=False))
    study = "setStudy(" + json.dumps({"baseline": baseline, "shards": shards}, default=str) + ");\n"
    return assets + [atomic_write(out / SHARDS_DIR / STUDY_JS, study, durable=False)]


def _stale_shards(keys: dict[str, str], shards: dict[str, str], previous: dict, there: set[str]) -> set[str]:
    """The shards to write: a cell's key changed or cannot be trusted, a cell left, or the file is gone."""
    todo = {shards[c] for c, key in keys.items() if not key or previous.get(c) != key}
    todo |= {shard_of(c) for c in previous.keys() - keys.keys()} & set(shards.values())
    return todo | {s for s in set(shards.values()) if f"{s}.js" not in there}


def write_cell_pages(results: Results, reports_dir: str | Path, compared=(),
                     previous: dict | None = None) -> tuple[list[Path], dict[str, str]]:
    """The data of every row of the table in reports_dir/cells/, each shard rewritten only where its cells changed.

    Args:
        results: what collect returned; compared: (a, b) cell ids of the comparison pages written.
        previous: cell_id -> key from the last report (a shard whose cells' keys are all the same
            and whose file is there is kept; harness.report.state drops the keys when the code changed).

    Returns:
        (files written: the shards rewritten, cell.html, its scripts and cells/study.js; cell_id -> key of every cell).
    """
    out = Path(reports_dir)
    (out / SHARDS_DIR).mkdir(parents=True, exist_ok=True)
    df = results.table
    pages, counterparts = _compared_pages(compared), clip_counterparts(df)
    cells = [read for read in results.reads.values() if isinstance(read.row, dict)]
    signatures = {read.row["cell_id"]: read.signature for read in cells}
    keys = {cid: _key(signatures.get(cid), stale, reason, pages.get(cid), counterparts.get(cid))
            if signatures.get(cid) is not None else ""
            for cid, stale, reason in zip(df["cell_id"], df["stale"], df["stale_reason"])}
    shards = {cid: shard_of(cid) for cid in keys}
    members: dict[str, list[int]] = {}
    for i, cid in enumerate(df["cell_id"]):
        members.setdefault(shards[cid], []).append(i)
    assets = _write_assets(out, baseline_config([c for c in configs_of(df) if c]), sorted(members))
    there = set(os.listdir(out / SHARDS_DIR))   # one listing, not a stat per shard
    _remove_strays(out / SHARDS_DIR, there - {f"{s}.js" for s in members} - {STUDY_JS})
    todo = sorted(_stale_shards(keys, shards, previous or {}, there))
    rewrite = sorted(i for shard in todo for i in members[shard])   # the rows of the shards written, only
    job = {"rows": dict(zip(rewrite, df[_COLUMNS].iloc[rewrite].itertuples(index=False))), "members": members, "out": out,
           "series": results.series, "pages": pages, "counterparts": counterparts,
           "files": {read.row["cell_id"]: read.files for read in cells}}
    return assets + forkmap(_write_shards, todo, context=job, min_per_worker=32), keys


def _remove_strays(folder: Path, names: set[str]) -> None:
    """Shards of cells no longer in the study, and the page files an earlier report wrote per cell."""
    for name in names:
        if name.endswith((".js", ".html")):
            try:
                os.unlink(folder / name)
            except OSError:
                pass
