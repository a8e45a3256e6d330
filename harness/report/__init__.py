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
from .cellpage import write_cell_pages
from .curves import load_curves
from .figures import fig7_decompositions, fig8_losses, grad_norms, plotted_cells
from .html import render_index
from .table3 import write_tables

__all__ = ["ReportSummary", "build_report", "render"]


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
        return "\n".join(lines)


def render(df: pd.DataFrame, reports_dir: str | os.PathLike, skipped: Sequence[Skipped] = (),
           runs_csv: str | os.PathLike | None = None) -> list[Path]:
    """Write every report file from the tidy table alone.

    Args:
        df: the table from collect(); skipped: its skipped folders (listed in notes);
        reports_dir: output folder (created); runs_csv: linked from the page.

    Returns:
        Paths written: table3.md/.tex/.csv, the three figures, index.html.
    """
    out = Path(reports_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables, written = write_tables(df, out)
    curves = load_curves(plotted_cells(df))
    figures = [fig8_losses(df, curves, out / "fig8_losses.png"),
               grad_norms(df, curves, out / "grad_norms.png"),
               fig7_decompositions(df, out / "fig7_decompositions.png")]
    causes_files, verdicts, causes_notes = write_causes(df, out)
    page = render_index(df, tables, figures, skipped, out / "index.html", runs_csv,
                        causes=(verdicts, causes_notes, len(causes_files) > 1))
    pages = write_cell_pages(df, out)
    return written + figures + causes_files + pages + [atomic_write(out / "index.html", page)]


def build_report(results_dir: str | os.PathLike, reports_dir: str | os.PathLike,
                 spike_factor: float = SPIKE_FACTOR) -> ReportSummary:
    """Collect results_dir into runs.parquet/.csv and regenerate reports_dir from it.

    Never re-runs anything and never raises on a bad run folder: such folders
    are skipped (or their bad files noted) and listed in the summary.

    Args:
        results_dir: the study's results/ folder.
        reports_dir: where table3.*, fig8_losses.png, grad_norms.png,
            fig7_decompositions.png and index.html go.

    Returns:
        A ReportSummary (print it for the console).
    """
    start = time.perf_counter()
    df, skipped = collect(results_dir, spike_factor=spike_factor)
    tables = write_table(df, results_dir) if Path(results_dir).is_dir() else []
    outputs = tables + render(df, reports_dir, skipped, tables[1] if tables else None)
    problems = tuple(f"{c}: {p}" for c, p in zip(df["cell_id"], df["problems"]) if isinstance(p, str))
    return ReportSummary(
        results_dir=Path(results_dir), reports_dir=Path(reports_dir), cells=len(df),
        states={str(k): int(v) for k, v in df["state"].value_counts().items()},
        skipped=tuple(skipped), problems=problems, outputs=tuple(outputs),
        seconds=time.perf_counter() - start)
