"""`repro status`: every cell folder's state, progress, last loss, elapsed time and reason.

Reads the run folders alone, so it works while a run is going, after a crash and on
a copy of results/. Anything odd (a stray folder, a torn train.jsonl line, an empty
or missing eval.json) becomes a row or a note saying what was skipped and why.
"""
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from harness.lock import held_by_live_process
from harness.progress import fmt_seconds, record_progress
from harness.runfolder import RunRecord, read_run_folder
from harness.states import CellState

__all__ = ["scan", "render_table", "render_json"]

_COLUMNS = ("cell_id", "name", "state", "progress", "loss", "elapsed", "reason")


def scan(results: Path) -> List[Dict[str, Any]]:
    """One row per folder below `results` (dot-folders such as the data cache are not cells).

    Returns:
        Rows with keys cell_id, name, state, epoch, iter, total, progress, loss,
        elapsed_s, elapsed, reason, notes.
    """
    results = Path(results)
    if not results.is_dir():
        return []
    live = held_by_live_process(results)
    folders = sorted(p for p in results.iterdir() if p.is_dir() and not p.name.startswith("."))
    return sorted((_row(read_run_folder(p), live) for p in folders), key=lambda r: (r["name"] or "~", r["cell_id"]))


def _row(record: RunRecord, live: bool) -> Dict[str, Any]:
    row: Dict[str, Any] = {"cell_id": record.run_dir.name, "name": record.name, "state": "",
                           "epoch": None, "iter": None, "total": None, "loss": None,
                           "elapsed_s": None, "reason": "", "notes": []}
    if record.cell is None and record.status is None:
        row.update(state=CellState.SKIPPED.value, reason=record.not_a_run_folder() + "; ignored")
        return _finish(row)
    state = record.state
    row["state"] = state.value
    row["reason"] = _short((record.status or {}).get("reason"))
    if state == CellState.RUNNING and record.incomplete and not live:
        row["state"] = CellState.INTERRUPTED.value
        row["reason"] = "no `repro run` holds the folder; the next run resumes it from its checkpoint"
    row["elapsed_s"] = record.elapsed_s()
    if record.cell is not None:
        p = record_progress(record.train.last, record.cell_config)
        row.update(epoch=p["epoch"], iter=p["iter"], total=p["total"], loss=p["loss"])
    row["notes"] = record.notes()
    return _finish(row)


def _finish(row: Dict[str, Any]) -> Dict[str, Any]:
    if row["iter"] is not None:
        row["progress"] = "ep %s it %s/%s" % (row["epoch"], row["iter"] + 1 if isinstance(row["iter"], int)
                                              else row["iter"], row["total"] or "?")
    else:
        row["progress"] = "-"
    row["elapsed"] = fmt_seconds(row["elapsed_s"]) if row["elapsed_s"] is not None else "-"
    if row["notes"]:
        row["reason"] = "; ".join(filter(None, [row["reason"]] + row["notes"]))
    return row


def _short(reason: Optional[str]) -> str:
    # status.json keeps the log tail; the table shows its first and last line
    lines = [l for l in (reason or "").splitlines() if l.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else ""
    return "%s ... %s" % (lines[0], lines[-1])


def render_table(rows: List[Dict[str, Any]]) -> str:
    """Aligned text table plus a count line."""
    if not rows:
        return "no cell folders"
    cells = [[_fmt(r, c) for c in _COLUMNS] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(_COLUMNS[:-1])]
    lines = ["  ".join(c.ljust(w) for c, w in zip(_COLUMNS[:-1], widths)) + "  reason"]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row[:-1], widths)) + "  " + row[-1] for row in cells]
    counts: Dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    lines.append("%d folders: %s" % (len(rows), ", ".join("%d %s" % (n, s) for s, n in sorted(counts.items()))))
    return "\n".join(lines)


def render_json(rows: List[Dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2, sort_keys=True)


def _fmt(row: Dict[str, Any], col: str) -> str:
    value = row.get(col)
    if col == "loss":
        return "%.4g" % value if isinstance(value, (int, float)) else "-"
    return "" if value is None else str(value)
