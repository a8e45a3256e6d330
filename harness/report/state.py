"""What a report keeps to know, next time, what is current: reports/.state/.

reads.pkl: the last collect (each folder's signature, row and series), written as soon as
the collect is done, beside the rendering. report.pkl: the key of each cell page
and figure, Table 3's rows and index.html's cell rows by the key of the table rows they
show (`Memo`), and the comparison pages written. The next `repro report` reads again only
the run folders whose signature changed and redraws only the pages, figures and rows whose
key changed. A state written by other code (CODE digests the harness's report and
reading code) or that cannot be read is ignored: the report is then built cold.
"""
from __future__ import annotations

import dataclasses
import hashlib
import pickle
from pathlib import Path
from typing import Callable, Generic, Mapping, TypeVar

import numpy as np
import pandas as pd

from ..cellseries import CellSeries
from ..collect import FolderRead, Results
from ..fsutil import atomic_write

__all__ = ["CODE", "READS_FILE", "STATE_FILE", "Memo", "ReportState", "frame_key", "row_keys", "load_state", "save_reads", "save_state"]

STATE_FILE = Path(".state") / "report.pkl"   # under the reports folder: what the last report drew
READS_FILE = Path(".state") / "reads.pkl"    # and what its collect read (save_reads)


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


def row_keys(df: pd.DataFrame) -> list[int]:
    """A key of each row's values (one pass over the table; equal keys, equal rows)."""
    return pd.util.hash_pandas_object(df, index=False).tolist()


T = TypeVar("T")


@dataclasses.dataclass
class Memo(Generic[T]):
    """Parts of the report by the key of what they are made from: `last` from the report
    before, `now` the ones this report used (what it keeps for the next one)."""
    last: dict = dataclasses.field(default_factory=dict)
    now: dict = dataclasses.field(default_factory=dict)

    def get(self, key, make: Callable[[], T]) -> T:
        """The part of this key: the last report's, or make() when it had none."""
        if key not in self.now:
            self.now[key] = self.last[key] if key in self.last else make()
        return self.now[key]


@dataclasses.dataclass
class ReportState:
    """One report's memory (see the module docstring)."""
    results: Results | None = None
    page_keys: dict[str, str] = dataclasses.field(default_factory=dict)     # cell_id -> key
    figure_keys: dict[str, str] = dataclasses.field(default_factory=dict)   # file name -> key
    compared: list[tuple[str, str]] = dataclasses.field(default_factory=list)   # comparison pages (a, b)
    causes: object = None          # the last causes section (harness.report.causes.Causes)
    table_rows: dict[str, dict] = dataclasses.field(default_factory=dict)   # Table 3's rows by the row_keys of their cells
    index_rows: dict[int, str] = dataclasses.field(default_factory=dict)    # index.html's cell rows by row_keys
    code: str = CODE


def load_state(reports_dir: str | Path) -> ReportState:
    """The last report's state, or an empty one (none, unreadable, or written by other code)."""
    state = _load(Path(reports_dir) / STATE_FILE)
    reads = _load(Path(reports_dir) / READS_FILE)
    state = state if isinstance(state, ReportState) and state.code == CODE else ReportState()
    if isinstance(reads, tuple) and len(reads) == 3 and reads[0] == CODE:
        try:
            state = dataclasses.replace(state, results=_with_series(*reads[1:]))
        except Exception:  # noqa: BLE001 (written by another version of a library: read the folders again)
            pass
    return state


def _load(path: Path):
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except Exception:  # noqa: BLE001 (a state from another pandas, a torn file...: start cold)
        return None


def save_state(reports_dir: str | Path, state: ReportState) -> Path:
    """Write the state but its collect (save_reads writes that, as soon as the collect is done)."""
    blob = pickle.dumps(dataclasses.replace(state, results=None), protocol=pickle.HIGHEST_PROTOCOL)
    return atomic_write(Path(reports_dir) / STATE_FILE, blob, durable=False)


def save_reads(reports_dir: str | Path, results: Results) -> Path:
    """Write what the next collect reuses: how each folder read (a kept folder's row is in the table),
    and the cells' series as one array per curve (an array per cell and curve cost a second to
    pickle and another to load at 10,000 cells)."""
    packed = _pack_series(results.series)
    results = dataclasses.replace(results, series={}, reads={
        name: FolderRead(read.signature, {"cell_id": read.row["cell_id"]} if isinstance(read.row, dict) else read.row,
                         None, read.files) for name, read in results.reads.items()})
    blob = pickle.dumps((CODE, results, packed), protocol=pickle.HIGHEST_PROTOCOL)
    return atomic_write(Path(reports_dir) / READS_FILE, blob, durable=False)


_CURVES = ("iter", "loss_total", "grad_norm", "clipped", "loss_spikes", "grad_spikes")   # CellSeries' arrays


def _pack_series(series: Mapping[str, CellSeries]) -> dict:
    """Each curve of all the cells in one array, the cells' ids and lengths (the cut points), their histograms."""
    ids = list(series)
    cells = [series[c] for c in ids]
    return {"ids": ids, "lengths": [len(s) for s in cells],
            "curves": {c: np.concatenate([getattr(s, c) for s in cells]) for c in _CURVES} if cells else {},
            "hists": [(s.side_hist, s.mad_hist) for s in cells]}


class PackedSeries(Mapping):
    """cell_id -> CellSeries cut from _pack_series' arrays when first asked for (a report after one
    change draws tens of cells; building all 10,000 cost a quarter of a second)."""

    def __init__(self, packed: dict):
        self._packed = packed
        ends = np.cumsum(packed["lengths"])
        self._at = {cell: (k, int(end) - n, int(end)) for k, (cell, n, end)
                    in enumerate(zip(packed["ids"], packed["lengths"], ends))}

    def __getitem__(self, cell_id: str) -> CellSeries:
        k, start, end = self._at[cell_id]
        side_hist, mad_hist = self._packed["hists"][k]
        return CellSeries(**{c: self._packed["curves"][c][start:end] for c in _CURVES},
                          side_hist=side_hist, mad_hist=mad_hist)

    def __contains__(self, cell_id) -> bool:   # without building the series
        return cell_id in self._at

    def __iter__(self):
        return iter(self._at)

    def __len__(self) -> int:
        return len(self._at)


def _with_series(results: Results | None, packed: dict | None) -> Results | None:
    """Results whose series are the packed ones (cut when asked for)."""
    if results is None or not packed or not packed.get("ids"):
        return results
    return dataclasses.replace(results, series=PackedSeries(packed))
