"""Read and write one cell's run folder (docs/run-folder.md): the harness's side of the contract.

The harness owns cell.json, cell.yaml, status.json and the `.incomplete` marker;
everything else is the trainer's and is only read here. Every write is atomic, and
every read tolerates a missing, empty or torn file.
"""
import datetime
import os
import socket
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from harness.cells import Cell
from harness.fsutil import atomic_write_json, atomic_write_text, read_json
from harness.states import CellState

__all__ = ["MARKER", "prepare", "read_status", "write_status", "finish", "mark_skipped",
           "is_incomplete", "read_cell", "tail_lines", "log_tail", "now", "parse_time"]

MARKER = ".incomplete"
_TAIL_BYTES = 16384   # enough for the last few train.jsonl records and log lines


def now() -> str:
    """Local wall time, ISO 8601 with seconds (what status.json stores)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def parse_time(text) -> Optional[datetime.datetime]:
    """A status.json time (what `now` wrote) as a datetime; None when absent or not ISO 8601."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None


def prepare(run_dir: Path, cell: Cell, *, threads: int, executor: str) -> Dict[str, Any]:
    """Before launch: cell.json, cell.yaml, `.incomplete`, status.json(running).

    Returns:
        The status written (attempt counts launches of this cell, resumes included).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "cell.json", cell.to_dict())
    atomic_write_text(run_dir / "cell.yaml", yaml.safe_dump(cell.trainer_config(threads), sort_keys=True))
    previous = read_status(run_dir) or {}
    started = now()
    # a retried cell's old verdict must not be read as this attempt's
    try:
        (run_dir / "result.json").unlink()
    except FileNotFoundError:
        pass
    # the marker goes first: a crash from here on leaves evidence, never a silent half result
    atomic_write_json(run_dir / MARKER, {"cell_id": cell.cell_id, "started": started,
                                         "executor": executor, "host": socket.gethostname(),
                                         "pid": os.getpid()})
    status = {"state": CellState.RUNNING.value, "reason": "", "attempt": int(previous.get("attempt", 0)) + 1,
              "started": started, "ended": None, "executor": executor,
              "cell_id": cell.cell_id, "name": cell.name}
    atomic_write_json(run_dir / "status.json", status)
    return status


def write_status(run_dir: Path, status: Dict[str, Any]) -> None:
    atomic_write_json(run_dir / "status.json", status)


def read_status(run_dir: Path) -> Optional[Dict[str, Any]]:
    """status.json as a dict; None if missing, empty or unreadable."""
    data = read_json(run_dir / "status.json")
    return data if isinstance(data, dict) else None


def finish(run_dir: Path, status: Dict[str, Any], state: CellState, reason: str = "") -> Dict[str, Any]:
    """After the cell ended: final status.json, then the marker goes."""
    status = dict(status, state=CellState(state).value, reason=reason, ended=now())
    # an executor that relaunched the cell (ray, after a lost node) counted it in status.json
    status["attempt"] = max(int(status.get("attempt", 0)), int((read_status(run_dir) or {}).get("attempt", 0)))
    write_status(run_dir, status)
    try:
        (run_dir / MARKER).unlink()
    except FileNotFoundError:
        pass
    return status


def mark_skipped(run_dir: Path, cell: Cell, reason: str) -> None:
    """Record a cell that cannot run here (the report shows why its row is empty)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "cell.json", cell.to_dict())
    write_status(run_dir, {"state": CellState.SKIPPED.value, "reason": reason, "attempt": 0, "started": None,
                           "ended": now(), "executor": cell.stack.executor,
                           "cell_id": cell.cell_id, "name": cell.name})


def is_incomplete(run_dir: Path) -> bool:
    return (run_dir / MARKER).exists()


def read_cell(run_dir: Path) -> Optional[Dict[str, Any]]:
    data = read_json(run_dir / "cell.json")
    return data if isinstance(data, dict) else None


def log_tail(path: Path, n: int = 20) -> str:
    """The last `n` non-empty lines of a log, joined by newlines ('' if none)."""
    return "\n".join([l for l in tail_lines(path) if l.strip()][-n:])


def tail_lines(path: Path) -> List[str]:
    """The whole lines in the last few KiB of a file ([] when missing or unreadable)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _TAIL_BYTES))
            data = f.read()
    except OSError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    # the first line may start mid-way when we seeked into the file
    return lines[1:] if size > _TAIL_BYTES else lines
