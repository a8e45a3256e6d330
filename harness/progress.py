"""Live progress of `repro run`: counts, each running cell's epoch/iteration/loss, ETA.

On a terminal the block is redrawn in place; otherwise (CI logs, pipes) plain lines
are printed when a cell starts or ends, plus a heartbeat every `heartbeat_s`.
"""
import math
import sys
import time
from pathlib import Path
from typing import Dict, Optional, TextIO

from harness.cells import Cell
from harness.runfolder import read_train_tail
from harness.states import CellState

__all__ = ["Progress", "cell_progress", "record_progress", "expected_iterations", "fmt_seconds"]


def expected_iterations(config) -> Optional[int]:
    """Iterations a cell will train (builtin data: known from the config), else None."""
    if config.get("dataset") != "builtin":
        return None
    per_epoch = max(1, int(config["builtin_num_train"]) // int(config["batch_size"]))
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
    """Prints progress for one `repro run`; feed it events and call `tick()` regularly."""

    def __init__(self, total: int, jobs: int, stream: TextIO = sys.stderr,
                 tty: Optional[bool] = None, heartbeat_s: float = 30.0):
        self.total, self.jobs, self.stream = total, max(1, jobs), stream
        self.tty = stream.isatty() if tty is None else tty
        self.counts = {"done": 0, "failed": 0, "diverged": 0, "skipped": 0, "cached": 0}
        self.durations = []               # seconds of cells that ran to an end in this run
        self.active: Dict[str, tuple] = {}  # cell_id -> (cell, run_dir, start monotonic)
        self.pending = total
        self.heartbeat_s = heartbeat_s
        self._last_beat = time.monotonic()
        self._drawn = 0

    # events ---------------------------------------------------------------
    def settled(self, state: str) -> None:
        """A cell decided without running (cached = done before, or skipped)."""
        self.counts[state] = self.counts.get(state, 0) + 1
        self.pending -= 1

    def started(self, cell: Cell, run_dir: Path) -> None:
        self.active[cell.cell_id] = (cell, run_dir, time.monotonic())
        self.pending -= 1
        self._line("start %s  %s" % (cell.cell_id, cell.name))

    def ended(self, cell: Cell, state: str, reason: str = "") -> None:
        _, _, t0 = self.active.pop(cell.cell_id, (None, None, time.monotonic()))
        self.durations.append(time.monotonic() - t0)
        self.counts[state] = self.counts.get(state, 0) + 1
        first = reason.splitlines()[0] if reason else ""
        self._line("%-8s %s  %s  (%s)%s" % (state, cell.cell_id, cell.name, fmt_seconds(self.durations[-1]),
                                            ": " + first if first else ""))

    # display --------------------------------------------------------------
    def tick(self) -> None:
        """Redraw (terminal) or print a heartbeat when due (plain)."""
        if self.tty:
            self._redraw(self._block())
        elif time.monotonic() - self._last_beat >= self.heartbeat_s:
            self._last_beat = time.monotonic()
            for line in self._block():
                print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty:
            self._redraw([])

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

    def _block(self):
        c = self.counts
        head = "cells %d: done %d (%d before), running %d, failed %d, diverged %d, skipped %d, queued %d; ETA %s" % (
            self.total, c["done"] + c["cached"], c["cached"], len(self.active), c["failed"], c["diverged"],
            c["skipped"], self.pending, fmt_seconds(self.eta()))
        lines = [head]
        for cell, run_dir, t0 in self.active.values():
            p = cell_progress(run_dir, cell.config)
            loss = "%.4g" % p["loss"] if isinstance(p["loss"], (int, float)) else "-"
            lines.append("  %s %-28s epoch %s iter %s/%s loss %s  %s" % (
                cell.cell_id, cell.name, p["epoch"] if p["epoch"] is not None else "-",
                p["iter"] + 1 if isinstance(p["iter"], int) else "-", p["total"] or "?", loss,
                fmt_seconds(time.monotonic() - t0)))
        return lines

    def _line(self, text: str) -> None:
        if self.tty:
            self._redraw([])
        print(text, file=self.stream, flush=True)

    def _redraw(self, lines) -> None:
        # move up over the previous block and clear it, then draw the new one
        out = ("\x1b[%dF\x1b[J" % self._drawn) if self._drawn else ""
        self.stream.write(out + "".join(l + "\n" for l in lines))
        self.stream.flush()
        self._drawn = len(lines)
