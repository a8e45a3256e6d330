"""The run-folder contract in one module (docs/run-folder.md): its files, writing, reading, states.

Write side: the harness owns cell.json, cell.yaml, status.json and the `.incomplete`
marker (`prepare` before a launch, `finish` after it, `mark_skipped`), and sets aside
the trainer's files when a cell is retrained from scratch (`set_aside_results`). Every
write is atomic.

Read side: `read_run_folder(run_dir)` returns a `RunRecord` holding every JSON file,
the end of train.jsonl, and why any file could not be read. `repro run`, `repro status`,
live progress and `collect` all read folders through it, so "missing", "empty" and
"torn" mean the same everywhere. Reading never raises and never writes.
"""
import dataclasses
import datetime
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional

import yaml

from harness.fsutil import atomic_write_json, atomic_write_text, read_json_object
from harness.states import CellState

__all__ = ["MARKER", "JSON_FILES", "TRAIN_LOG", "EVAL_SCORES", "TRAINER_FILES", "PREVIOUS",
           "prepare", "finish", "mark_skipped", "set_aside_results",
           "TrainTail", "RunRecord", "read_run_folder", "read_train_tail", "read_scores", "folder_signature",
           "tail_lines", "log_tail", "now", "parse_time", "json_object"]

MARKER = ".incomplete"
# file -> RunRecord field; owners in docs/run-folder.md
JSON_FILES = {"cell.json": "cell", "status.json": "status", "config.json": "config", "env.json": "env",
              "probe.json": "probe", "result.json": "result", "eval.json": "eval"}
TRAIN_LOG = "train.jsonl"
EVAL_SCORES = "eval_scores.csv"
# what one training run of the trainer leaves (set aside before a cell is retrained from scratch)
TRAINER_FILES = ("config.json", "env.json", TRAIN_LOG, "checkpoints", "result.json", "eval.json", EVAL_SCORES,
                 "samples", "stdout.log", "probe.json")
PREVIOUS = ".previous"   # the set-aside files of the run before (one generation kept)
_TAIL_BYTES = 16384      # enough for the last few train.jsonl records and log lines


# --------------------------------------------------------------------------- times

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


# --------------------------------------------------------------------------- writing (the harness's files)

def prepare(run_dir: Path, cell, *, threads: int, executor: str) -> Dict[str, Any]:
    """Before launch: cell.json, cell.yaml, `.incomplete`, status.json(running).

    Returns:
        The status written; its attempt is the previous one's plus one (launches of this
        cell, resumes included); an executor that relaunches the cell adds its own
        launches through `Outcome.attempts`.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "cell.json", cell.to_dict())
    atomic_write_text(run_dir / "cell.yaml", yaml.safe_dump(cell.trainer_config(threads), sort_keys=True))
    previous = _read(run_dir, "status.json") or {}
    started = now()
    # a retried cell's old verdict must not be read as this attempt's
    _remove(run_dir / "result.json")
    # the marker goes first: a crash from here on leaves evidence, never a silent half result
    atomic_write_json(run_dir / MARKER, {"cell_id": cell.cell_id, "started": started,
                                         "executor": executor, "host": socket.gethostname(),
                                         "pid": os.getpid()})
    status = {"state": CellState.RUNNING.value, "reason": "", "attempt": int(previous.get("attempt", 0)) + 1,
              "started": started, "ended": None, "executor": executor,
              "cell_id": cell.cell_id, "name": cell.name}
    atomic_write_json(run_dir / "status.json", status)
    return status


def finish(run_dir: Path, status: Dict[str, Any], state: CellState, reason: str = "",
           extra_attempts: int = 0) -> Dict[str, Any]:
    """After the cell ended: final status.json (with relaunches the executor made), then the marker goes."""
    status = dict(status, state=CellState(state).value, reason=reason, ended=now(),
                  attempt=int(status.get("attempt", 0)) + extra_attempts)
    atomic_write_json(run_dir / "status.json", status)
    _remove(run_dir / MARKER)
    return status


def mark_skipped(run_dir: Path, cell, reason: str) -> None:
    """Record a cell that cannot run here (the report shows why its row is empty)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "cell.json", cell.to_dict())
    atomic_write_json(run_dir / "status.json", {
        "state": CellState.SKIPPED.value, "reason": reason, "attempt": 0, "started": None, "ended": now(),
        "executor": cell.stack.executor, "cell_id": cell.cell_id, "name": cell.name})


def set_aside_results(run_dir: Path) -> Path:
    """Move the trainer's files into RUN_DIR/.previous/ (replacing an older set) so the next
    launch trains from scratch instead of resuming from the old checkpoint; nothing is deleted
    but the generation before, and only when there is a newer one to keep (a second call with
    nothing left to move keeps it). Returns the folder they went to."""
    aside = run_dir / PREVIOUS
    if not any((run_dir / name).exists() for name in TRAINER_FILES):
        return aside
    shutil.rmtree(aside, ignore_errors=True)
    aside.mkdir(parents=True)
    for name in TRAINER_FILES:
        if (run_dir / name).exists():
            os.replace(run_dir / name, aside / name)
    return aside


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


# --------------------------------------------------------------------------- reading

@dataclasses.dataclass(frozen=True)
class TrainTail:
    """The end of train.jsonl: its last complete record, and whether a torn line followed it."""
    last: Optional[Dict[str, Any]]  # None when no complete line was read
    torn: bool                      # the last line is half written (the writer died or is mid-write)
    why: str                        # "" | missing | empty


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """Everything one run folder holds; a dict field is None when its file could not be read."""
    run_dir: Path
    cell: Optional[Dict[str, Any]]
    status: Optional[Dict[str, Any]]
    config: Optional[Dict[str, Any]]   # the trainer's resolved config.json
    env: Optional[Dict[str, Any]]
    probe: Optional[Dict[str, Any]]    # the docker executor's GPU probe
    result: Optional[Dict[str, Any]]
    eval: Optional[Dict[str, Any]]
    train: TrainTail
    whys: Dict[str, str]               # file name -> "" or why it was not read (missing, empty, ...)
    incomplete: bool                   # the `.incomplete` marker is there
    files: FrozenSet[str] = frozenset()   # the names in the folder when it was read
    log: Optional[bytes] = None        # the whole train.jsonl, when asked for (read_run_folder(whole_log=True))

    @property
    def state(self) -> CellState:
        """status.json's state; UNKNOWN when it is missing or names no state."""
        return CellState.parse((self.status or {}).get("state"))

    @property
    def name(self) -> str:
        return str((self.cell or {}).get("name") or "")

    @property
    def cell_config(self) -> Dict[str, Any]:
        """What the trainer ran with: config.json once written, else the cell's resolved config."""
        if self.config is not None:
            return self.config
        config = (self.cell or {}).get("config")
        return config if isinstance(config, dict) else {}

    def elapsed_s(self, now: Optional[datetime.datetime] = None) -> Optional[float]:
        """Seconds from status.json's start to its end (or to `now` while running)."""
        status = self.status or {}
        start = parse_time(status.get("started"))
        if start is None:
            return None
        end = parse_time(status.get("ended")) or now or datetime.datetime.now()
        return max(0.0, (end - start).total_seconds())

    def not_a_run_folder(self) -> str:
        """Why this folder is not a run folder ("" when it is one)."""
        if self.run_dir.name.startswith("."):
            return "hidden folder (data cache or harness state), not a run folder"
        if self.cell is None:
            return "cell.json %s: not a run folder" % self.whys["cell.json"]
        return ""

    def needs_rescore(self) -> str:
        """Why a done cell's scores must be computed again from its checkpoint ("" when they are fine)."""
        if self.state != CellState.DONE or not self.whys["eval.json"]:
            return ""
        return "eval.json %s" % self.whys["eval.json"]

    def notes(self) -> List[str]:
        """One note per file that is odd for this state; a file the state explains away is no note.

        A queued or skipped cell never started (no env, log or eval); a running or failed
        one may have stopped before writing them; a done or diverged one owes env.json and
        train.jsonl, and only a done one owes eval.json.
        """
        state = self.state
        owed = {"status.json": True, "eval.json": state == CellState.DONE,
                "env.json": state in (CellState.DONE, CellState.DIVERGED),
                TRAIN_LOG: state in (CellState.DONE, CellState.DIVERGED)}
        notes = ["%s %s" % (name, why) for name, why in self.whys.items()
                 if name in owed and why and (why != "missing" or owed[name])]
        if self.train.torn:
            notes.append("%s torn last line skipped" % TRAIN_LOG)
        return notes


def read_run_folder(run_dir: Path, whole_log: bool = False) -> RunRecord:
    """Read every contract file of one folder (cheap: train.jsonl is read from its tail only,
    unless whole_log asks for all of it in `RunRecord.log`, as collect does: one read, not two).

    The folder is listed once: a file it does not list is missing without an open (a
    10,000-folder report saves tens of thousands of failing opens).
    """
    run_dir = Path(run_dir)
    try:
        files: Optional[FrozenSet[str]] = frozenset(os.listdir(run_dir))
    except OSError:
        files = None    # not listable: every file is tried, and says why it could not be read
    def listed(name: str) -> bool:   # worth an open: listed, or the folder could not be listed
        return files is None or name in files

    values, whys, folder = {}, {}, str(run_dir)
    for name, field in JSON_FILES.items():
        values[field], whys[name] = read_json_object(os.path.join(folder, name)) if listed(name) else (None, "missing")
    log = None
    if whole_log and listed(TRAIN_LOG):
        try:
            with open(os.path.join(folder, TRAIN_LOG), "rb") as fh:
                log = fh.read()
        except OSError:
            pass
    train = read_train_tail(run_dir, log) if listed(TRAIN_LOG) else TrainTail(None, False, "missing")
    whys[TRAIN_LOG] = train.why
    incomplete = MARKER in files if files is not None else (run_dir / MARKER).exists()
    return RunRecord(run_dir=run_dir, train=train, whys=whys, incomplete=incomplete, files=files or frozenset(),
                     log=log, **values)


def _read(run_dir: Path, name: str) -> Optional[Dict[str, Any]]:
    """One JSON file of the folder as a dict; None when it could not be read."""
    return read_json_object(run_dir / name)[0]


def read_train_tail(run_dir: Path, log: Optional[bytes] = None) -> TrainTail:
    """The last complete train.jsonl record and a torn-line flag (live progress reads only this).

    log: the whole file, when the caller has read it (its tail is taken from there).
    """
    path = Path(run_dir) / TRAIN_LOG
    if log is None:
        try:
            if path.stat().st_size == 0:
                return TrainTail(None, False, "empty")
        except OSError:
            return TrainTail(None, False, "missing")
        tail = tail_lines(path)
    elif not log:
        return TrainTail(None, False, "empty")
    else:
        tail = _whole_lines(log[-_TAIL_BYTES:], cut=len(log) > _TAIL_BYTES)
    lines = [line for line in tail if line.strip()]
    torn = bool(lines) and _record(lines[-1]) is None
    last = next((r for r in map(_record, reversed(lines)) if r is not None), None)
    return TrainTail(last, torn, "")


def json_object(text) -> dict:
    """A JSON file's text, kept in the table (env.json, config.json), as a dict: {} when absent or broken."""
    try:
        value = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def read_scores(run_dir: Path):
    """eval_scores.csv as columns side, mad (numeric, finite rows only; empty if unreadable)."""
    import numpy as np
    import pandas as pd   # the report's reader only: `repro run` and `repro status` never load pandas
    try:
        scores = pd.read_csv(Path(run_dir) / EVAL_SCORES)
    except (OSError, ValueError, pd.errors.ParserError):
        return pd.DataFrame({"side": [], "mad": []})
    cols = {c: pd.to_numeric(scores[c], errors="coerce") if c in scores else np.nan for c in ("side", "mad")}
    return pd.DataFrame(cols).dropna()


SETTLE_S = 2.0   # a folder changed more recently than this has no signature yet


def folder_signature(run_dir) -> Optional[str]:
    """A value that changes whenever a file a reader of this folder reads changes.

    Every file but train.jsonl is replaced by rename (a new entry moves the folder's
    mtime; samples/ likewise); train.jsonl grows in place (its size and mtime). None
    when any of them changed in the last SETTLE_S seconds: a second write within one
    tick of the file system's clock could keep the same stamp, so such a folder is
    read again next time rather than trusted.
    """
    stamps = []
    for path in (run_dir, os.path.join(run_dir, TRAIN_LOG), os.path.join(run_dir, "samples")):
        try:
            st = os.stat(path)
        except OSError:
            stamps.append("-")
            continue
        if time.time() - st.st_mtime < SETTLE_S:
            return None
        stamps.append("%d:%d" % (st.st_mtime_ns, st.st_size))
    return "/".join(stamps)


def _record(line: str) -> Optional[Dict[str, Any]]:
    try:
        value = json.loads(line)
    except ValueError:
        return None  # torn write in progress, or a crash mid-line
    return value if isinstance(value, dict) else None


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
    return _whole_lines(data, cut=size > _TAIL_BYTES)


def _whole_lines(data: bytes, cut: bool) -> List[str]:
    """The lines of a file's last bytes; cut: they start mid-file, so the first line may be partial."""
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[1:] if cut else lines
