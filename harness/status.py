"""`repro status`: every cell folder's state, progress, last loss, elapsed time and reason.

Reads the run folders alone, so it works while a run is going, after a crash and on
a copy of results/. Anything odd (a stray folder, a torn train.jsonl line, an empty
or missing eval.json) becomes a row or a note saying what was skipped and why. A
result made by other code than would run now is `stale`, naming what changed;
`explain` (`repro status --why CELL`) prints what a cell's id and code record hold.
"""
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import pydantic

from harness.cells import cell_hash, hashed_payload
from harness.lock import held_by_live_process
from harness.matrix import Stack
from harness.progress import fmt_seconds, record_progress
from harness.runfolder import RunRecord, read_run_folder
from harness.staleness import CHECKED_STATES, CodeNow
from harness.states import CellState

__all__ = ["scan", "render_table", "render_json", "find_folder", "explain"]

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
    live, code = held_by_live_process(results), CodeNow()
    folders = sorted(p for p in results.iterdir() if p.is_dir() and not p.name.startswith("."))
    return sorted((_row(read_run_folder(p), live, code) for p in folders),
                  key=lambda r: (r["name"] or "~", r["cell_id"]))


def _row(record: RunRecord, live: bool, code: CodeNow) -> Dict[str, Any]:
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
    if state in CHECKED_STATES:
        stale = code.check(record.env)
        if stale.stale:
            row["state"] = CellState.STALE.value
            row["reason"] = "; ".join(filter(None, ["%s (%s)" % (stale.reason(), state), row["reason"]]))
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


def find_folder(results: Path, ref: str) -> "Path | str":
    """The run folder a cell id, unique id prefix or name refers to; else why not (one line)."""
    folders = [p for p in Path(results).iterdir() if p.is_dir() and not p.name.startswith(".")]
    hits = [p for p in folders if p.name.startswith(ref)] or [
        p for p in folders if read_run_folder(p).name == ref]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        return "--why %r: no cell in %s has that id prefix or name (`repro status` lists them)" % (ref, results)
    return "--why %r: %d cells match (%s); give more of the id" % (ref, len(hits), ", ".join(
        sorted(p.name for p in hits)[:5]))


def explain(run_dir: Path) -> str:
    """What goes into the cell's id and its code record, and what differs from now."""
    record = read_run_folder(run_dir)
    cell = record.cell or {}
    lines = ["cell %s  %s  (%s)" % (run_dir.name, record.name or "?", record.state)]
    lines += ["", "id: the first 12 hex digits of sha256 over this (harness/cells.py):"] + _id_lines(run_dir, cell)
    env = record.env or {}
    lines += ["", "code the trainer recorded in env.json, against the files now (model/codedigest.py: comments, "
              "blank lines and docstrings do not count):"]
    code, now = env.get("code"), CodeNow()
    for key, digest in sorted((code or {}).items()):
        current = now.digest(key, env.get("author_code_dir"))
        lines.append("  %-40s %s  %s" % (key, digest, "same" if current == digest else
                                          "CHANGED (now %s)" % (current or "missing")))
    for key in ("image", "image_digest", "author_commit", "git_sha", "harness_version"):
        lines.append("  %-40s %s" % (key, env.get(key)))
    stale = now.check(env) if record.state in CHECKED_STATES else None
    verdict = ("stale: " + stale.reason()) if stale is not None and stale.stale else (
        "current: the code that would run it now is the code it ran" if stale is not None
        else "no result to compare (state %s)" % record.state)
    return "\n".join(lines + ["", verdict])


def _id_lines(run_dir: Path, cell: Dict[str, Any]) -> List[str]:
    try:
        stack = Stack.model_validate(cell.get("stack") or {})
        payload = hashed_payload(cell.get("axes") or {}, cell.get("config") or {}, stack)
    except pydantic.ValidationError as e:
        return ["  cell.json's stack is not readable (%s)" % str(e).splitlines()[0]]
    lines = ["  %s: %s" % (key, json.dumps(value, sort_keys=True)) for key, value in payload.items()]
    again = cell_hash(cell.get("axes") or {}, cell.get("config") or {}, stack)
    return lines + ["  -> %s (%s)" % (again, "the folder's id" if again == run_dir.name else
                                      "not the folder's id %s: the harness hashes cells differently now"
                                      % run_dir.name)]
