"""Live progress of `repro run`: counts, each running cell's epoch/iteration/loss, ETA.

On a terminal (rich): a bar for the study (done/running/failed/skipped, ETA) and one
line per running cell, redrawn in place and cut to the terminal's width; start and end
lines scroll above it. Otherwise (CI logs, pipes) plain lines are printed when a cell
starts or ends, plus a heartbeat block every `heartbeat_s`.
"""
import math
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from harness.cells import Cell
from harness.runfolder import read_train_tail
from harness.states import CellState

__all__ = ["Progress", "cell_progress", "record_progress", "expected_iterations", "fmt_seconds"]


def expected_iterations(config) -> Optional[int]:
    """Iterations a cell will train (builtin data: known from the config), else None."""
    if config.get("dataset") != "builtin":
        return None
    per_epoch = -(-int(config["builtin_num_train"]) // int(config["batch_size"]))  # the last batch may be partial
    return per_epoch * int(config["num_epochs"])


def cell_progress(run_dir: Path, config) -> Dict[str, object]:
    """{epoch, iter, loss, fraction, total} from the last complete train.jsonl line (None when unknown)."""
    return record_progress(read_train_tail(run_dir).last, config)


def record_progress(last: Optional[Dict[str, object]], config) -> Dict[str, object]:
    """{epoch, iter, loss, fraction, total} of a cell whose latest train.jsonl record is `last`."""
    rec = last or {}
    total = expected_iterations(config)
    it = rec.get("iter")
    fraction = min(1.0, (int(it) + 1) / total) if (total and isinstance(it, int)) else None
    return {"epoch": rec.get("epoch"), "iter": it, "loss": rec.get("loss_total"),
            "fraction": fraction, "total": total}


def fmt_seconds(s: Optional[float]) -> str:
    if s is None or math.isnan(s):
        return "?"
    s = int(s)
    return "%dh%02dm" % (s // 3600, s % 3600 // 60) if s >= 3600 else "%dm%02ds" % (s // 60, s % 60)


class Progress:
    """Shows progress for one `repro run`; feed it events and call `tick()` regularly."""

    def __init__(self, total: int, jobs: int, stream: TextIO = sys.stderr,
                 tty: Optional[bool] = None, heartbeat_s: float = 30.0):
        self.total, self.jobs, self.stream = total, max(1, jobs), stream
        self.tty = stream.isatty() if tty is None else tty
        self.counts = {state: 0 for state in _COUNTED}
        self.durations: List[float] = []    # seconds of cells that ran to an end in this run
        self.active: Dict[str, tuple] = {}  # cell_id -> (cell, run_dir, start monotonic)
        self.pending = total
        self.heartbeat_s = heartbeat_s
        self._last_beat = time.monotonic()
        self._live: Optional[Live] = None
        if self.tty:
            # transient: the live region goes at close; the start/end lines above it stay
            # redirect stderr only when we draw on it: stray prints then land above the live region
            self._live = Live(console=Console(file=stream, force_terminal=True), auto_refresh=False,
                              transient=True, get_renderable=self._renderable,
                              redirect_stdout=False, redirect_stderr=stream is sys.stderr)

    # events ---------------------------------------------------------------
    def settled(self, state: CellState) -> None:
        """A cell decided without running (cached = done before, or skipped)."""
        self.counts[CellState(state)] += 1
        self.pending -= 1

    def started(self, cell: Cell, run_dir: Path) -> None:
        self.active[cell.cell_id] = (cell, run_dir, time.monotonic())
        self.pending -= 1
        self._line("start %s  %s" % (cell.cell_id, cell.name))

    def ended(self, cell: Cell, state: CellState, reason: str = "") -> None:
        _, _, t0 = self.active.pop(cell.cell_id, (None, None, time.monotonic()))
        self.durations.append(time.monotonic() - t0)
        state = CellState(state)
        self.counts[state] = self.counts.get(state, 0) + 1
        first = reason.splitlines()[0] if reason else ""
        self._line("%-8s %s  %s  (%s)%s" % (state.value, cell.cell_id, cell.name,
                                            fmt_seconds(self.durations[-1]), ": " + first if first else ""))

    # display --------------------------------------------------------------
    def tick(self) -> None:
        """Redraw (terminal) or print a heartbeat when due (plain)."""
        if self._live is not None:
            self._start_live()
            self._live.refresh()
        elif time.monotonic() - self._last_beat >= self.heartbeat_s:
            self._last_beat = time.monotonic()
            for line in self._block():
                print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self._live is not None and self._live.is_started:
            self._live.stop()

    def eta(self) -> Optional[float]:
        """Seconds left: pending cells at the mean cell time, plus what the running ones need."""
        rows = [self._estimate(c, d, t0) for c, d, t0 in self.active.values()]
        known = self.durations + [r[1] for r in rows if r[1] is not None]
        if self.pending and not known:
            return None
        mean = sum(known) / len(known) if known else 0.0
        left_active = [r[1] - r[0] if r[1] is not None else mean for r in rows]
        return (sum(left_active) + self.pending * mean) / self.jobs

    def _estimate(self, cell, run_dir, t0):
        # (elapsed, expected total) from the cell's iteration fraction
        elapsed = time.monotonic() - t0
        frac = cell_progress(run_dir, cell.config)["fraction"]
        return elapsed, (elapsed / frac if frac else None)

    def _counts(self) -> str:
        c = self.counts
        stale = ", stale %d" % c[CellState.STALE] if c[CellState.STALE] else ""
        return "done %d (%d before)%s, running %d, failed %d, diverged %d, skipped %d, queued %d" % (
            c[CellState.DONE] + c[CellState.CACHED], c[CellState.CACHED], stale, len(self.active),
            c[CellState.FAILED], c[CellState.DIVERGED], c[CellState.SKIPPED], self.pending)

    def _nonzero_counts(self) -> str:
        """'2 done, 1 running, 3 queued': the terminal line names only what is there, so it fits."""
        c = self.counts
        parts = [("done", c[CellState.DONE] + c[CellState.CACHED]), ("stale", c[CellState.STALE]),
                 ("running", len(self.active)),
                 ("failed", c[CellState.FAILED]), ("diverged", c[CellState.DIVERGED]),
                 ("skipped", c[CellState.SKIPPED]), ("queued", self.pending)]
        return ", ".join("%d %s" % (n, what) for what, n in parts if n)

    def _running(self):
        """(cell, progress dict, elapsed seconds) per running cell."""
        now = time.monotonic()
        return [(cell, cell_progress(run_dir, cell.config), now - t0) for cell, run_dir, t0 in self.active.values()]

    def _block(self) -> List[str]:
        lines = ["cells %d: %s; ETA %s" % (self.total, self._counts(), fmt_seconds(self.eta()))]
        for cell, p, elapsed in self._running():
            lines.append("  %s %-28s %s  %s" % (cell.cell_id, cell.name, _where(p), fmt_seconds(elapsed)))
        return lines

    def _renderable(self):
        # fixed-width parts first (label, bar, ETA, cell id); names and counts are cut with "..." to fit
        settled = self.total - self.pending - len(self.active)
        label = "cells %d/%d" % (settled, self.total)
        eta = "ETA %s" % fmt_seconds(self.eta())
        study = Table.grid(padding=(0, 1))
        study.add_column(no_wrap=True, min_width=len(label))
        study.add_column(width=16)
        study.add_column(no_wrap=True, min_width=len(eta))
        study.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
        study.add_row(label, ProgressBar(total=max(1, self.total), completed=settled), eta, self._nonzero_counts())
        cells = Table.grid(padding=(0, 1))
        cells.add_column(no_wrap=True, min_width=14)
        cells.add_column(no_wrap=True, overflow="ellipsis", ratio=1, min_width=8)
        cells.add_column(width=10)
        cells.add_column(no_wrap=True)
        cells.add_column(no_wrap=True, overflow="ellipsis")
        for cell, p, elapsed in self._running():
            frac = p["fraction"]
            bar = ProgressBar(total=1.0, completed=frac or 0.0, pulse=frac is None)
            cells.add_row("  " + cell.cell_id, cell.name, bar, fmt_seconds(elapsed), _where(p, short=True))
        return Group(study, cells)

    def _start_live(self) -> None:
        if not self._live.is_started:
            self._live.start(refresh=True)  # Live rendered once when built: draw what is true now

    def _line(self, text: str) -> None:
        if self._live is None:
            print(text, file=self.stream, flush=True)
            return
        self._start_live()
        # printed above the live region, which is then redrawn below it
        self._live.console.print(text, markup=False, highlight=False, soft_wrap=True)
        self._live.refresh()


_COUNTED = (CellState.DONE, CellState.FAILED, CellState.DIVERGED, CellState.SKIPPED, CellState.CACHED,
            CellState.STALE, CellState.INTERRUPTED)


def _where(p: Dict[str, object], short: bool = False) -> str:
    """'epoch 0 iter 3/4 loss 0.54' (short: 'ep 0 it 3/4 loss 0.54') from a cell_progress dict."""
    loss = "%.4g" % p["loss"] if isinstance(p["loss"], (int, float)) else "-"
    return ("ep %s it %s/%s loss %s" if short else "epoch %s iter %s/%s loss %s") % (
        p["epoch"] if p["epoch"] is not None else "-",
        p["iter"] + 1 if isinstance(p["iter"], int) else "-", p["total"] or "?", loss)
