"""`repro report`: collect results/ into the tidy table, then render reports/ from it.

    summary = build_report("results", "reports")
    print(summary)

Reading (harness.collect) and rendering (this package) are separate: `render`
takes only the DataFrame, the collect's skipped list and the curves it loads
through `curves.load_curves` from paths named in the table.
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..spikes import SPIKE_FACTOR
from ..collect import Skipped, collect, write_table
from ..fsutil import atomic_write
from .causes import write_causes
from .edge import write_edge
from .cellpage import write_cell_pages
from .curves import load_curves
from .cellref import CellRefError, resolve_pair
from .figures import fig7_cells, fig7_decompositions, fig8_losses, grad_norms, plotted_cells
from .html import render_index
from .ran import with_ran
from .sidebyside import compare_href, write_compare_page
from .table3 import footnotes, write_tables

__all__ = ["CellRefError", "ReportSummary", "build_report", "render"]


@dataclasses.dataclass(frozen=True)
class ReportSummary:
    """What one `repro report` read, skipped and wrote; str() is the console summary."""
    results_dir: Path
    reports_dir: Path
    cells: int                           # run folders read into the table
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
        lines = [f"report: {self.cells} cells ({states}), {len(self.skipped)} folders skipped, "
                 f"{len(self.problems)} cells with file problems, {self.seconds:.1f}s -> {self.index}"]
        lines += [f"  skipped {s}" for s in self.skipped]
        lines += [f"  problem {p}" for p in self.problems[:20]]
        if len(self.problems) > 20:
            lines.append(f"  ... and {len(self.problems) - 20} more problems (see runs.csv)")
        if self.compare_page:
            lines.append(f"  side by side -> {self.compare_page}")
        return "\n".join(lines)


def _drawn(df: pd.DataFrame, curves: dict) -> dict[str, pd.DataFrame]:
    """Figure file name -> the rows it draws (for the captions' cell lists)."""
    curve_cells = df[df["cell_id"].isin(curves.keys())] if len(df) else df
    chosen = [cell["cell_id"] for *_, cell in fig7_cells(df) if cell is not None]
    fig7 = df.set_index("cell_id").loc[chosen].reset_index() if chosen else df.iloc[:0]
    return {"fig8_losses.png": curve_cells, "grad_norms.png": curve_cells, "fig7_decompositions.png": fig7}


def render(df: pd.DataFrame, reports_dir: str | os.PathLike, skipped: Sequence[Skipped] = (),
           runs_csv: str | os.PathLike | None = None,
           compare: tuple[pd.Series, pd.Series] | None = None) -> list[Path]:
    """Write every report file from the tidy table and the run files its rows name.

    Besides the table, only each cell's config.json (Table 3's labels, the cell and
    comparison pages), eval_scores.csv, train.jsonl and samples PNGs are read.

    Args:
        df: the table from collect(); skipped: its skipped folders (listed in notes);
        reports_dir: output folder (created); runs_csv: linked from the page;
        compare: two rows of df (cellref.resolve_pair) to put side by side.

    Returns:
        Paths written: table3.md/.tex/.csv, the three figures, the comparison page when
        asked for, the cell pages, index.html.
    """
    out = Path(reports_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = with_ran(df)
    tables, written = write_tables(df, out)
    curves = load_curves(plotted_cells(df))
    figures = [fig8_losses(df, curves, out / "fig8_losses.png"),
               grad_norms(df, curves, out / "grad_norms.png"),
               fig7_decompositions(df, out / "fig7_decompositions.png")]
    causes_files, verdicts, causes_notes = write_causes(df, out)
    edge_files = write_edge(df, out)
    page = render_index(df, tables, figures, skipped, out / "index.html", runs_csv,
                        causes=(verdicts, causes_notes, len(causes_files) > 1), notes=footnotes(df),
                        drawn=_drawn(df, curves))
    # before the cell pages, so that theirs link it
    compared = [write_compare_page(df, *compare, out)] if compare else []
    pages = write_cell_pages(df, out)
    return (written + figures + causes_files + edge_files + compared + pages
            + [atomic_write(out / "index.html", page)])


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
    results = collect(results_dir, spike_factor=spike_factor)
    df, skipped = results.table, results.skipped
    pair = resolve_pair(df, compare, str(results_dir)) if compare else None
    tables = write_table(df, results_dir) if Path(results_dir).is_dir() else []
    outputs = tables + render(df, reports_dir, skipped, tables[1] if tables else None, compare=pair)
    problems = tuple(f"{c}: {p}" for c, p in zip(df["cell_id"], df["problems"]) if isinstance(p, str))
    return ReportSummary(
        results_dir=Path(results_dir), reports_dir=Path(reports_dir), cells=len(df),
        states={str(k): int(v) for k, v in df["state"].value_counts().items()},
        skipped=tuple(skipped), problems=problems, outputs=tuple(outputs),
        seconds=time.perf_counter() - start,
        compare_page=Path(reports_dir) / compare_href(pair[0]["cell_id"], pair[1]["cell_id"]) if pair else None)
