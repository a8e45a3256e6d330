"""What a report keeps to know, next time, what is current: reports/.state/report.pkl.

The last collect (each folder's signature, row and series), the key of each cell page
and figure, and the comparison pages written. The next `repro report` reads again only
the run folders whose signature changed and redraws only the pages and figures whose
key changed. A state written by other code (CODE digests the harness's report and
reading code) or that cannot be read is ignored: the report is then built cold.
"""
from __future__ import annotations

import dataclasses
import hashlib
import pickle
from pathlib import Path

import pandas as pd

from ..collect import Results
from ..fsutil import atomic_write

__all__ = ["CODE", "STATE_FILE", "ReportState", "frame_key", "load_state", "save_state"]

STATE_FILE = Path(".state") / "report.pkl"   # under the reports folder


def _code_digest() -> str:
    """The report's and the reader's source: a change to either redraws everything."""
    harness = Path(__file__).resolve().parents[1]
    files = sorted(harness.glob("report/*.py")) + sorted(harness.glob("report/*.js")) + [
        harness / name for name in ("collect.py", "cellseries.py", "spikes.py", "runfolder.py", "staleness.py")]
    digest = hashlib.sha1()
    for path in files:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


CODE = _code_digest()


def frame_key(df: pd.DataFrame) -> str:
    """A key of a table's columns and values: equal keys, equal tables (milliseconds at 10,000 rows)."""
    digest = hashlib.sha1(repr(list(df.columns)).encode())
    digest.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return digest.hexdigest()


@dataclasses.dataclass
class ReportState:
    """One report's memory (see the module docstring)."""
    results: Results | None = None
    page_keys: dict[str, str] = dataclasses.field(default_factory=dict)     # cell_id -> key
    figure_keys: dict[str, str] = dataclasses.field(default_factory=dict)   # file name -> key
    compared: list[tuple[str, str]] = dataclasses.field(default_factory=list)   # comparison pages (a, b)
    causes: object = None          # the last causes section (harness.report.causes.Causes)
    code: str = CODE


def load_state(reports_dir: str | Path) -> ReportState:
    """The last report's state, or an empty one (none, unreadable, or written by other code)."""
    try:
        with open(Path(reports_dir) / STATE_FILE, "rb") as fh:
            state = pickle.load(fh)
    except Exception:  # noqa: BLE001 (a state from another pandas, a torn file...: start cold)
        return ReportState()
    return state if isinstance(state, ReportState) and state.code == CODE else ReportState()


def save_state(reports_dir: str | Path, state: ReportState) -> Path:
    return atomic_write(Path(reports_dir) / STATE_FILE, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL),
                        durable=False)
