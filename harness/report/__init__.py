"""`repro report`: collect results/ into the tidy table, then render reports/ from it.

    summary = build_report("results", "reports")
    print(summary)

Reading (harness.collect) and rendering (this package) are separate: `render` takes
only collect's `Results` (the table, each cell's series, the skipped folders). A report
remembers what it drew (harness.report.state): the next one reads again only the run
folders that changed and redraws only the pages and figures whose inputs changed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from pathlib import Path
from typing import Callable

import pandas as pd

from ..spikes import SPIKE_FACTOR
from ..collect import RUNS_CSV, Results, Skipped, collect, write_table
from .causes import write_causes
from .edge import write_edge
from .cellpage import write_cell_pages
from .cellref import CellRefError, resolve_pair
from .figures import fig7_cells, fig7_decompositions, fig8_losses, grad_norms, plotted_cells
from .html import render_index
from .ran import with_ran
from .rows import variant_axes
from .celllinks import compare_href
from .sidebyside import write_compare_page
from .state import Memo, ReportState, load_state, save_reads, save_state
from .table3 import footnotes, write_tables
from ..forkmap import in_background
from ..fsutil import atomic_write

__all__ = ["CellRefError", "ReportSummary", "build_report", "render"]


@dataclasses.dataclass(frozen=True)
class ReportSummary:
    """What one `repro report` read, skipped and wrote; str() is the console summary."""
    results_dir: Path
    reports_dir: Path
    cells: int                           # run folders read into the table
    reread: int                          # folders read this time (the others had not changed since the last report)
    states: dict[str, int]               # cells per state (done, skipped, ...)
    skipped: tuple[Skipped, ...]         # folders that were not run folders, with why
    problems: tuple[str, ...]            # "cell_id: missing/empty/torn file" notes
    outputs: tuple[Path, ...]            # files written (tables, figures, page)
    seconds: float                       # wall time of collect + render
    compare_page: Path | None = None     # reports/compare-<a>-<b>.html when --side-by-side asked for one

    @property
    def index(self) -> Path:
        """The report's entry page."""
        return self.reports_dir / "index.html"

    def __str__(self) -> str:
        states = ", ".join(f"{n} {s}" for s, n in self.states.items()) or "none"
        lines = [f"report: {self.cells} cells ({states}), {self.reread} folders read (the rest unchanged), "
                 f"{len(self.skipped)} folders skipped, "
                 f"{len(self.problems)} cells with file problems, {self.seconds:.1f}s -> {self.index}"]
        lines += [f"  skipped {s}" for s in self.skipped]
        lines += [f"  problem {p}" for p in self.problems[:20]]
        if len(self.problems) > 20:
            lines.append(f"  ... and {len(self.problems) - 20} more problems (see runs.csv)")
        if self.compare_page:
            lines.append(f"  side by side -> {self.compare_page}")
        return "\n".join(lines)


def _signatures(results: Results) -> dict[str, str | None]:
    return {read.row["cell_id"]: read.signature for read in results.reads.values() if isinstance(read.row, dict)}


def _key(cells, signatures: dict, *context) -> str:
    """A figure's key: the cells it draws as they were read, and what else shapes it ('' = always redraw)."""
    stamps = [(c, signatures.get(c)) for c in cells]
    if any(s is None for _, s in stamps):
        return ""
    return hashlib.sha1(repr((stamps, context)).encode()).hexdigest()


def _figures(df: pd.DataFrame, results: Results, out: Path, previous: dict) -> tuple[list[Path], dict, dict, list]:
    """Fig. 8, the gradient norms and Fig. 7, each redrawn only when its key changed (or its file is gone).

    A figure takes seconds (matplotlib's layout and ticks, not the curves): each is drawn in a
    process of its own while this one renders the rest (forkmap.in_background).

    Returns (the figures' paths, file name -> key, file name -> the rows it draws: the captions'
    cell lists, the functions that wait for the figures being drawn).
    """
    signatures, series = _signatures(results), results.series
    plotted = plotted_cells(df)
    curves_key = _key(list(plotted["cell_id"]) if len(plotted) else [], signatures, variant_axes(df) if len(df) else [])
    chosen = [(name, clip, None if cell is None else cell["cell_id"]) for name, _, clip, cell in fig7_cells(df)]
    draws: dict[str, tuple[str, Callable[[Path], Path]]] = {
        "fig8_losses.png": (curves_key, lambda path: fig8_losses(plotted, series, path)),
        "grad_norms.png": (curves_key, lambda path: grad_norms(plotted, series, path)),
        "fig7_decompositions.png": (_key([c for *_, c in chosen if c], signatures, chosen),
                                    lambda path: fig7_decompositions(df, path)),
    }
    todo = [name for name, (key, _) in draws.items()
            if not key or previous.get(name) != key or not (out / name).is_file()]
    pending = [in_background(_draw_figure, (draws[name][1], out / name)) for name in todo]
    curve_cells = plotted[plotted["cell_id"].isin(series.keys())] if len(plotted) else plotted
    fig7_ids = [c for *_, c in chosen if c]
    drawn = {"fig8_losses.png": curve_cells, "grad_norms.png": curve_cells,
             "fig7_decompositions.png": df.set_index("cell_id").loc[fig7_ids].reset_index() if fig7_ids else df.iloc[:0]}
    return [out / name for name in draws], {name: key for name, (key, _) in draws.items()}, drawn, pending


def _draw_figure(job: tuple[Callable[[Path], Path], Path]) -> Path:
    draw, path = job
    return draw(path)


def render(results: Results, reports_dir: str | os.PathLike, runs_csv: str | os.PathLike | None = None,
           compare: tuple[pd.Series, pd.Series] | None = None,
           previous: ReportState | None = None) -> tuple[list[Path], ReportState]:
    """Write every report file from collect's Results, redrawing only what changed since `previous`.

    Args:
        results: what collect returned; reports_dir: output folder (created);
        runs_csv: linked from the page; compare: two rows of the table (cellref.resolve_pair)
        to put side by side; previous: the last report's state (harness.report.state).

    Returns:
        (paths written or kept: table3.md/.tex/.csv, the three figures, the causes files, the
        comparison page when asked for, the cell pages redrawn, index.html; the new state).
    """
    out = Path(reports_dir)
    out.mkdir(parents=True, exist_ok=True)
    previous = previous or ReportState()
    df = with_ran(results.table)
    figures, figure_keys, drawn, drawing = _figures(df, results, out, previous.figure_keys)
    tables, written, table_rows = write_tables(df, out, previous.table_rows)
    causes = write_causes(df, out, previous.causes)
    edge_files = write_edge(df, out)
    ids = set(df["cell_id"]) if len(df) else set()
    compared = [pair for pair in previous.compared if set(pair) <= ids and (out / compare_href(*pair)).is_file()]
    if compare:
        pair = (compare[0]["cell_id"], compare[1]["cell_id"])
        write_compare_page(results.series, *compare, out)
        compared = [p for p in compared if p != pair] + [pair]
    pages, page_keys = write_cell_pages(results, out, compared, previous.page_keys)
    index_rows = Memo(last=previous.index_rows)
    page = render_index(df, tables, figures, results.skipped, out / "index.html", runs_csv,
                        causes=(list(causes.verdicts), list(causes.notes), len(causes.files) > 1), notes=footnotes(df),
                        drawn=drawn, rows=index_rows)
    state = ReportState(results=results, page_keys=page_keys, figure_keys=figure_keys, compared=compared,
                        causes=causes, table_rows=table_rows, index_rows=index_rows.now)
    index = atomic_write(out / "index.html", page, durable=False)
    for wait in drawing:
        wait()
    return written + figures + list(causes.files) + edge_files + pages + [index], state


def _write_runs(job: tuple[pd.DataFrame, str | os.PathLike]) -> list[Path]:
    return write_table(*job)


def _save_reads(job: tuple[str | os.PathLike, Results]) -> list[Path]:
    return [save_reads(*job)]


def build_report(results_dir: str | os.PathLike, reports_dir: str | os.PathLike,
                 spike_factor: float = SPIKE_FACTOR, compare: tuple[str, str] | None = None) -> ReportSummary:
    """Collect results_dir into runs.parquet/.csv and regenerate reports_dir from it.

    Never re-runs anything and never raises on a bad run folder: such folders
    are skipped (or their bad files noted) and listed in the summary.

    Args:
        results_dir: the study's results/ folder.
        reports_dir: where table3.*, fig8_losses.png, grad_norms.png,
            fig7_decompositions.png and index.html go.
        compare: two cell references (ids, unique id prefixes or names) to put side
            by side in reports_dir/compare-<a>-<b>.html.

    Returns:
        A ReportSummary (print it for the console).

    Raises:
        CellRefError: a compare reference names no cell, several, or both the same one
            (raised before anything is written).
    """
    start = time.perf_counter()
    previous = load_state(reports_dir)
    results = collect(results_dir, spike_factor=spike_factor, previous=previous.results)
    df, skipped = results.table, results.skipped
    pair = resolve_pair(df, compare, str(results_dir)) if compare else None
    # runs.parquet and runs.csv, and the collect's state (seconds at 10,000 cells), are written beside the rendering
    has_folder = Path(results_dir).is_dir()
    runs = in_background(_write_runs, (df, results_dir)) if has_folder else list
    reads = in_background(_save_reads, (reports_dir, results))
    written, state = render(results, reports_dir, Path(results_dir) / RUNS_CSV if has_folder else None,
                            compare=pair, previous=previous)
    outputs = runs() + reads() + written + [save_state(reports_dir, state)]
    problems = tuple(f"{c}: {p}" for c, p in zip(df["cell_id"], df["problems"]) if isinstance(p, str))
    return ReportSummary(
        results_dir=Path(results_dir), reports_dir=Path(reports_dir), cells=len(df), reread=results.reread,
        states={str(k): int(v) for k, v in df["state"].value_counts().items()},
        skipped=tuple(skipped), problems=problems, outputs=tuple(outputs),
        seconds=time.perf_counter() - start,
        compare_page=Path(reports_dir) / compare_href(pair[0]["cell_id"], pair[1]["cell_id"]) if pair else None)
