"""The one reader of a run folder (docs/run-folder.md): every file, with a note on each odd one.

`read_run_folder(run_dir)` returns a `RunRecord`; `repro status`, live progress and
`collect` all read folders through it, so "missing", "empty" and "torn" mean the same
everywhere. Reading never raises and never writes.
"""
import dataclasses
import datetime
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from harness.fsutil import read_json_object
from harness.rundir import MARKER, parse_time, tail_lines
from harness.states import CellState

__all__ = ["JSON_FILES", "TRAIN_LOG", "TrainTail", "RunRecord", "read_run_folder", "read_train_tail"]

# file -> RunRecord field; owners in docs/run-folder.md
JSON_FILES = {"cell.json": "cell", "status.json": "status", "config.json": "config", "env.json": "env",
              "probe.json": "probe", "result.json": "result", "eval.json": "eval"}
TRAIN_LOG = "train.jsonl"


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


def read_run_folder(run_dir: Path) -> RunRecord:
    """Read every contract file of one folder (cheap: train.jsonl is read from its tail only)."""
    run_dir = Path(run_dir)
    values, whys = {}, {}
    for name, field in JSON_FILES.items():
        values[field], whys[name] = read_json_object(run_dir / name)
    train = read_train_tail(run_dir)
    whys[TRAIN_LOG] = train.why
    return RunRecord(run_dir=run_dir, train=train, whys=whys, incomplete=(run_dir / MARKER).exists(),
                     **values)


def read_train_tail(run_dir: Path) -> TrainTail:
    """The last complete train.jsonl record and a torn-line flag (live progress reads only this)."""
    path = Path(run_dir) / TRAIN_LOG
    try:
        if path.stat().st_size == 0:
            return TrainTail(None, False, "empty")
    except OSError:
        return TrainTail(None, False, "missing")
    lines = [line for line in tail_lines(path) if line.strip()]
    torn = bool(lines) and _record(lines[-1]) is None
    last = next((r for r in map(_record, reversed(lines)) if r is not None), None)
    return TrainTail(last, torn, "")


def _record(line: str) -> Optional[Dict[str, Any]]:
    try:
        value = json.loads(line)
    except ValueError:
        return None  # torn write in progress, or a crash mid-line
    return value if isinstance(value, dict) else None
