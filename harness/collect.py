"""Read every run folder under results/ into one tidy table (one row per cell).

`collect(results_dir)` returns one `Results` value: the table, the folders it skipped
and why. It reads each folder through harness.runfolder (the one reader), treats every
file as possibly missing, empty or torn, and never raises on a bad folder. The report
renders from `Results` alone: what a page needs of a cell is a column (its config as
`config_json`, its files as paths), never a second read of the folder's JSON files.

Columns of the table (`COLUMNS`, in this order; unknown extra axes follow as
`axis.<name>`):

- identity: `cell_id`, `name`, `run_dir` (absolute path of the folder)
- axes (`AXES`): `stack, impl, clip, clip_threshold, seed, dataset, preset`,
  then the factor axes (`FACTOR_AXES`: tf32, align_corners, deterministic, cpu_isa, lr),
  from cell.json's axes or else the resolved config.json;
  the stack as the matrix declared it: `stack_cuda`, `stack_torch`
- status: `state` (a `harness.states.CellState` value; unknown when
  status.json is missing), `reason`, `attempt`, `started`, `ended`, `wall_s`
  (ended - started)
- how training ended (result.json): `diverged_iter`, `diverged_net`
- `stale` (bool; None for a cell without a result) and `stale_reason` ("model/step.py changed"):
  the code that would run the cell now differs from the code it ran (harness/staleness.py)
- env fingerprint (env.json, the keys model/env.py writes; `ENV_FIELDS`),
  strings: `env.python, env.torch, env.cuda, env.cudnn, env.device, env.gpu,
  env.capability, env.driver, env.tf32, env.tf32_mode, env.deterministic,
  env.cudnn_benchmark, env.cublas_workspace, env.image_digest, env.git_sha,
  env.host, env.cpu_model, env.cpu_capability, env.blas, env.onednn`; `env_json` keeps the whole file for the report's details
- `config_json`: the resolved config the trainer ran (config.json, else cell.json's), whole,
  as JSON text (`Results.configs()` parses it)
- `perceptual` (bool, None when unknown) and `perceptual_reason`
- numerics in force (env.json "in_force", model/factors.py): `in_force.tf32_conv`,
  `in_force.tf32_matmul`, `in_force.align_corners`, `in_force.cudnn_benchmark`,
  `in_force.deterministic`, `in_force.renderer` (text; None before env.json recorded them)
- evaluation (eval.json, `EVAL_FIELDS`): `side_mean, side_std, mad_mean, mad_std` (MAD
  the exact angle), `mad_published_mean, mad_published_std` (the original's formula:
  Table 3's MAD), `n_images, n_unscored` (scored; empty mask), `flat_side_mean`,
  `flat_mad_mean`, `flat_mad_published_mean` (the flat-depth baseline the trainer scores
  beside), `mad_published_floor` (identical depths, by the published formula)
  (SIDE in plain units; reports multiply by 100)
- training log (train.jsonl): `train_lines` (good lines read), `train_torn`
  (a torn last line was dropped), `last_iter`, `final_loss`, `n_spikes`,
  `first_spike_iter`, `max_grad_norm` (pre-clip, global), `clipped_frac`,
  `train_s` (the last line's `time`)
- files for the report: `train_log`, `samples_grid` (the final decomposition
  grid PNG: samples/test.png, else the last by name), both absolute paths or None
- `problems`: "; "-joined notes on files that were missing, empty or torn
  (`RunRecord.notes`, harness/runfolder.py, plus unreadable log lines)

Spikes (harness/spikes.py, the one definition): `n_spikes` (loss or pre-clip
gradient norm over k x its running median, k = SPIKE_FACTOR or collect's
`spike_factor`), `n_loss_spikes`, `n_grad_spikes`, `first_spike_iter`,
`first_nonfinite_iter`, `spike_network` (largest network gradient there).
"""
from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import re
from pathlib import Path
from typing import Mapping, Sequence

import msgspec
import msgspec.structs
import numpy as np
import pandas as pd

from harness import spikes
from harness.cellseries import CellSeries
from harness.forkmap import forkmap
from harness.fsutil import atomic_write
from harness.matrix import AXES, FACTOR_AXES
from harness.runfolder import (EVAL_SCORES, TRAIN_LOG, RunRecord, folder_signature, json_object, read_run_folder,
                               read_scores)
from harness.staleness import CHECKED_STATES, CodeNow
from harness.states import CellState
from model.factors import IN_FORCE_KEYS, later_keys

__all__ = [
    "AXES", "COLUMNS", "ENV_FIELDS",
    "RUNS_CSV", "RUNS_PARQUET", "FolderRead", "Results", "Skipped", "TrainLog", "collect", "configs_of", "write_table", "read_train_logs",
]


# env.json column -> the key model/env.py writes (the trainer and the author adapter share it)
ENV_FIELDS = {
    "python": "python",
    "torch": "torch",
    "cuda": "cuda",
    "cudnn": "cudnn",
    "device": "device",
    "gpu": "gpu_name",
    "capability": "gpu_capability",
    "driver": "driver",
    "tf32": "tf32",
    "tf32_mode": "tf32_mode",  # off | cuda-flags | cpu-emulated
    "deterministic": "cudnn_deterministic",
    "cudnn_benchmark": "cudnn_benchmark",
    "cublas_workspace": "CUBLAS_WORKSPACE_CONFIG",
    "image_digest": "image_digest",
    "git_sha": "git_sha",
    "host": "host",
    "cpu_model": "cpu_model",            # the CPU kernels: the CPU analogue of the GPU and CUDA
    "cpu_capability": "cpu_capability",  # ATen's kernel set (AVX2, AVX512, DEFAULT)
    "blas": "blas",
    "onednn": "onednn",
}

# eval.json keys read as numbers (model/evaluate.py Scores): mad_* is the exact angle,
# mad_published_* the original's formula (Table 3's MAD), mad_published_floor what identical
# depths score by it, n_unscored the test images with an empty mask
EVAL_FIELDS = ("side_mean", "side_std", "mad_mean", "mad_std", "mad_published_mean", "mad_published_std",
               "n_images", "n_unscored", "flat_side_mean", "flat_mad_mean", "flat_mad_published_mean",
               "mad_published_floor")

COLUMNS = (
    ("cell_id", "name", "run_dir") + AXES + FACTOR_AXES + ("stack_cuda", "stack_torch")
    + ("state", "reason", "attempt", "started", "ended", "wall_s", "diverged_iter", "diverged_net")
    + ("stale", "stale_reason")
    + tuple("env." + key for key in ENV_FIELDS) + tuple("in_force." + key for key in IN_FORCE_KEYS)
    + ("env_json", "config_json", "perceptual", "perceptual_reason")
    + EVAL_FIELDS
    + ("train_lines", "train_torn", "last_iter", "final_loss", "n_spikes", "n_loss_spikes", "n_grad_spikes",
       "first_spike_iter", "first_nonfinite_iter", "spike_network", "max_grad_norm", "clipped_frac", "train_s")
    + ("train_log", "samples_grid", "problems")
)

RUNS_PARQUET, RUNS_CSV = "runs.parquet", "runs.csv"   # write_table's files, in results/

# Only these train.jsonl keys are parsed; everything else on a line is ignored.
_LOG_FIELDS = spikes.LOG_FIELDS


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A folder under results/ that is not (readable as) a run folder."""
    folder: str   # name under results/
    reason: str   # one line: why it was skipped

    def __str__(self) -> str:
        return f"{self.folder}: {self.reason}"


@dataclasses.dataclass(frozen=True)
class FolderRead:
    """One folder as collect read it, kept so that the next collect reads only folders that changed."""
    signature: str | None          # runfolder.folder_signature when it was read (None: read it again)
    row: dict | Skipped            # its row without the stale columns (those depend on the code now); a read
                                   # kept by the report's state holds only cell_id (its row is in Results.table)
    series: CellSeries | None      # what its page and the figures draw (None without a train log)
    files: frozenset[str] = frozenset()   # the names in the folder (its page links the raw files)


@dataclasses.dataclass(frozen=True)
class Results:
    """What `collect` read: one row per cell, what the pages draw, and the folders that were not run folders."""
    root: Path                      # the results/ folder read
    table: pd.DataFrame             # COLUMNS (+ axis.* extras), one row per cell
    skipped: tuple[Skipped, ...]    # folders under root that are not (readable as) run folders
    spike_factor: float             # k the spike columns were computed with
    series: Mapping[str, CellSeries] = dataclasses.field(default_factory=dict)   # cell_id -> curves, histograms
    reads: dict[str, FolderRead] = dataclasses.field(default_factory=dict)    # folder name -> how it was read
    reread: int = 0                 # folders read this time (the others came from `previous`)

    def configs(self) -> list[dict]:
        """Each row's resolved config as a dict, in table order ({} when unknown)."""
        return configs_of(self.table)


def configs_of(rows: pd.DataFrame) -> list[dict]:
    """The `config_json` column of some rows of the table as dicts ({} where unknown)."""
    if "config_json" not in rows:
        return [{} for _ in range(len(rows))]
    return [json_object(text) for text in rows["config_json"]]


@dataclasses.dataclass
class TrainLog:
    """The parsed numeric columns of one train.jsonl (NaN where a key was absent)."""
    columns: dict[str, np.ndarray]
    lines: int = 0        # good lines parsed
    torn: bool = False    # a torn last line was dropped
    bad: int = 0          # complete lines that were not JSON objects (skipped)
    error: str = ""       # why nothing could be read ("" when fine)


# --------------------------------------------------------------------------- small files

def _as_text(value) -> str | None:
    """A value as one short string for a text column (lists and dicts as JSON)."""
    if value is None:
        return None
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _env_columns(env: dict | None) -> dict:
    env = env or {}
    row = {"env." + column: _as_text(env.get(key)) for column, key in ENV_FIELDS.items()}
    # what the cell ran with (model/factors.py): `stack` values as this stack settled them
    in_force = env.get("in_force") if isinstance(env.get("in_force"), dict) else {}
    row.update({"in_force." + key: _as_text(in_force.get(key)) for key in IN_FORCE_KEYS})
    row["env_json"] = json.dumps(env, sort_keys=True) if env else None
    return row


def _perceptual(env: dict | None, config: dict) -> tuple[bool | None, str | None]:
    """Whether the perceptual loss was used: env.json (what ran) beats the resolved config."""
    env = env or {}
    setting = env.get("perceptual", config.get("perceptual"))
    used = {"on": True, "off": False}.get(setting)  # 'auto' is resolved by the trainer; unknown stays None
    reason = env.get("perceptual_reason")
    return used, (str(reason) if reason else None)


def _natural_key(name: str):
    """grid_2.png before grid_10.png."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _last_grid(run_dir: str, files: frozenset[str]) -> str | None:
    if "samples" not in files:
        return None
    try:
        names = [e.name for e in os.scandir(os.path.join(run_dir, "samples"))
                 if e.name.lower().endswith(".png") and e.is_file()]
    except OSError:
        return None
    if not names:
        return None
    # test.png is the trainer's final grid; epochNNN.png are the per-epoch ones
    last = "test.png" if "test.png" in names else max(names, key=_natural_key)
    return os.path.join(run_dir, "samples", last)


# --------------------------------------------------------------------------- one folder

def _axes_columns(cell: dict, config: dict) -> dict:
    """Known axes as plain columns (config fills gaps), others as axis.<name>."""
    axes = cell.get("axes") if isinstance(cell.get("axes"), dict) else {}
    # a factor axis a study did not sweep is still in the resolved config: compare can group by it;
    # a config written before a factor existed ran it at the factor's earlier value
    earlier = later_keys()
    row = {key: axes.get(key, config.get(key, earlier.get(key))) for key in AXES + FACTOR_AXES}
    row.update({f"axis.{key}": value for key, value in axes.items() if key not in AXES + FACTOR_AXES})
    stack = cell.get("stack") if isinstance(cell.get("stack"), dict) else {}
    if row["stack"] is None:
        row["stack"] = stack.get("name")
    row["stack_cuda"] = _as_text(stack.get("cuda"))
    row["stack_torch"] = _as_text(stack.get("torch"))
    return row


def _status_columns(record: RunRecord) -> dict:
    """state/reason/times from status.json (the harness owns it); where it diverged from result.json."""
    status, result = record.status or {}, record.result or {}
    return {
        "state": record.state.value,
        "reason": str(status.get("reason") or "") or None,
        "attempt": status.get("attempt"),
        "started": _as_text(status.get("started")),
        "ended": _as_text(status.get("ended")),
        "wall_s": record.elapsed_s() if status.get("ended") else None,
        "diverged_iter": result.get("iteration") if result.get("state") == CellState.DIVERGED else None,
        "diverged_net": result.get("network"),
    }


def _eval_columns(ev: dict | None) -> dict:
    ev = ev or {}
    return {key: _number(ev.get(key)) for key in EVAL_FIELDS}


def _number(value) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return float("nan")


def _stale_columns(row: dict, code: CodeNow, checked: dict) -> dict:
    """Whether the row's cell ran other code than would run it now (checked: env_json -> answer)."""
    if CellState.parse(row["state"]) not in CHECKED_STATES:
        return {"stale": None, "stale_reason": None}
    env = row["env_json"]
    if env not in checked:  # most cells of a study share one env.json text
        staleness = code.check(json_object(env) if env else None)
        checked[env] = {"stale": staleness.stale, "stale_reason": staleness.reason() or None}
    return checked[env]


def _read_folder(record: RunRecord, path: str, name: str) -> dict | Skipped:
    """One run folder -> a partial row (train log columns come later), or Skipped."""
    why_not = record.not_a_run_folder()
    if why_not:
        return Skipped(name, why_not)
    config = record.cell_config
    perceptual, perceptual_reason = _perceptual(record.env, config)
    log = os.path.join(path, TRAIN_LOG)
    return {
        "cell_id": str(record.cell.get("cell_id") or name), "name": record.cell.get("name"), "run_dir": path,
        **_axes_columns(record.cell, config), **_status_columns(record),
        **_env_columns(record.env), "config_json": json.dumps(config, sort_keys=True) if config else None,
        "perceptual": perceptual, "perceptual_reason": perceptual_reason,
        **_eval_columns(record.eval),
        "train_log": log if record.train.why != "missing" else None, "samples_grid": _last_grid(path, record.files),
        "problems": record.notes(),
    }


# --------------------------------------------------------------------------- train.jsonl

def _complete_lines(data: bytes) -> tuple[bytes, bool]:
    """Drop a torn last line (append-only writer died mid-line); keep a whole one."""
    cut = data.rfind(b"\n") + 1
    tail = data[cut:]
    if not tail.strip():
        return data[:cut], False
    try:
        json.loads(tail)
        return data[:cut] + tail + b"\n", False
    except ValueError:
        return data[:cut], True


def _python_parse(body: bytes, fields: Sequence[str]) -> tuple[dict[str, np.ndarray], int, int]:
    """Slow, forgiving path: line by line, skipping lines that are not JSON objects."""
    rows, bad = [], 0
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        else:
            bad += 1
    columns = {f: np.array([_number(r.get(f)) if not isinstance(r.get(f), bool) else float(r[f])
                            for r in rows], dtype=float) for f in fields}
    return columns, len(rows), bad


@functools.lru_cache(maxsize=8)
def _line_decoder(fields: tuple[str, ...]) -> msgspec.json.Decoder:
    """Decodes a JSON array of log records, keeping only `fields` (null or absent: None)."""
    line = msgspec.defstruct("LogLine", [(f, (bool if f == "clipped" else float) | None, None) for f in fields])
    return msgspec.json.Decoder(list[line])


def _fast_parse(body: bytes, fields: Sequence[str]) -> tuple[dict[str, np.ndarray], int] | None:
    """Fast path: the whole log as one JSON array, only `fields` decoded (msgspec: 2-3x pyarrow here).

    Returns (columns, lines read), or None when the log cannot be read this way (a bad or blank line, NaN or Infinity
    as Python's json writes them, a key of another type); callers fall back to `_python_parse`.
    """
    try:
        rows = _line_decoder(tuple(fields)).decode(b"[" + body.rstrip(b"\n").replace(b"\n", b",") + b"]")
    except msgspec.MsgspecError:
        return None
    # one record per line straight into a structured array (half the time of a list of tuples)
    table = np.fromiter(map(msgspec.structs.astuple, rows), dtype=[(f, float) for f in fields], count=len(rows))
    return {f: np.ascontiguousarray(table[f]) for f in fields}, len(rows)   # None (null, absent) -> NaN


def read_train_logs(paths: Sequence[str | os.PathLike | None],
                    fields: Sequence[str] = _LOG_FIELDS) -> list[TrainLog | None]:
    """Read many train.jsonl files, numeric columns only, tolerating torn tails.

    Args:
        paths: one path (or None) per cell.
        fields: keys to keep; booleans (`clipped`) become 0.0/1.0, absent keys NaN.

    Returns:
        One TrainLog per path, None where the path was None or the file is missing.
    """
    out: list[TrainLog | None] = [None] * len(paths)
    for i, path in enumerate(paths):
        if path is None:
            continue
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            out[i] = TrainLog({f: np.empty(0) for f in fields}, error=f"unreadable ({exc})")
            continue
        out[i] = _parse_train_log(data, fields)
    return out


def _parse_train_log(data: bytes, fields: Sequence[str] = _LOG_FIELDS) -> TrainLog:
    """One train.jsonl's bytes -> its TrainLog (a torn last line dropped, bad lines skipped)."""
    body, torn = _complete_lines(data)
    parsed = _fast_parse(body, fields)
    if parsed is not None:
        return TrainLog(*parsed, torn=torn)
    columns, lines, bad = _python_parse(body, fields)
    return TrainLog(columns, lines=lines, torn=torn, bad=bad)


def _log_columns(log: TrainLog | None, spike_factor: float, masks: tuple | None) -> dict:
    """Summaries of one train log for the tidy table (masks: spikes.spike_masks of its columns)."""
    if log is None or log.error:
        return {"train_lines": 0, "train_torn": False}
    cols = log.columns
    n = len(cols["loss_total"])
    loss, it = cols["loss_total"], cols["iter"]
    grad = cols["grad_norm"][np.isfinite(cols["grad_norm"])] if n else np.empty(0)
    times = cols["time"][np.isfinite(cols["time"])] if n else np.empty(0)
    # max() of an all-inf-or-NaN gradient means the norm blew up: report inf
    blew_up = n and np.isinf(cols["grad_norm"]).any()
    return {
        "train_lines": log.lines, "train_torn": log.torn,
        "last_iter": float(np.nanmax(it)) if n and np.isfinite(it).any() else np.nan,
        "final_loss": float(loss[-1]) if n else np.nan,
        **spikes.spike_stats(cols, spike_factor, masks),
        "max_grad_norm": np.inf if blew_up else (float(grad.max()) if grad.size else np.nan),
        "train_s": float(times[-1]) if times.size else np.nan,
    }


def _add_divergence(row: dict) -> None:
    """The trainer stops before logging the non-finite step; result.json names it instead."""
    if row.get("diverged_iter") is not None and not np.isfinite(row.get("first_nonfinite_iter", np.nan)):
        row["first_nonfinite_iter"] = float(row["diverged_iter"])
    if not row.get("spike_network") and row.get("diverged_net"):
        row["spike_network"] = row["diverged_net"]


def _log_problems(log: TrainLog | None) -> list[str]:
    """What the full parse found beyond the folder's notes (those cover missing, empty, torn)."""
    if log is None:
        return []
    notes = [f"{TRAIN_LOG} {log.error}"] if log.error else []
    if log.bad:
        notes.append(f"{TRAIN_LOG} {log.bad} unreadable lines skipped")
    return notes


# --------------------------------------------------------------------------- table

def collect(results_dir: str | os.PathLike, spike_factor: float = spikes.SPIKE_FACTOR,
            previous: Results | None = None, jobs: int | None = None) -> Results:
    """Read every run folder under results_dir into one row per cell.

    Args:
        results_dir: the study's results/ folder (missing: an empty table).
        spike_factor: k of the spike definition (harness/spikes.py).
        previous: an earlier collect of the same folder: its folders whose signature
            (runfolder.folder_signature) is unchanged are not read again.
        jobs: reader processes (default: one per usable core; harness.forkmap).

    Returns:
        Results: the table (COLUMNS and any `axis.*` extras, rows sorted by stack, impl,
        clip, seed, cell_id), each cell's series, and the folders skipped with why.
    """
    root = os.path.abspath(results_dir)
    try:
        entries = sorted((e for e in os.scandir(root) if e.is_dir()), key=lambda e: e.name)
    except FileNotFoundError:
        entries = []
    reusable = previous is not None and str(previous.root) == root and previous.spike_factor == spike_factor
    known = previous.reads if reusable else {}
    kept = _row_positions(previous.table) if reusable else {}   # folder name -> its row in the last table
    signatures = {e.name: folder_signature(e.path) for e in entries}
    reads = {name: known[name] for name, signature in signatures.items()
             if signature is not None and name in known and known[name].signature == signature
             and (isinstance(known[name].row, Skipped) or name in kept)}
    todo = [(e.path, e.name, signatures[e.name]) for e in entries if e.name not in reads]
    fresh = dict(zip((name for _, name, _ in todo), forkmap(_read_folders, todo, spike_factor, jobs)))
    reads.update(fresh)
    rows, again, skipped, series = [], [], [], _Series(previous.series if reusable else {})
    for name in sorted(reads):
        got = reads[name]
        if isinstance(got.row, Skipped):
            skipped.append(got.row)
            continue
        if name in fresh:
            rows.append(got.row)
            series.add_read(got.row["cell_id"], got.series)
        else:
            again.append(kept[name])
            series.add_kept(got.row["cell_id"], got.series)
    table = _with_stale(_frame(rows, previous.table.iloc[again] if again else None))
    table.attrs["spike_factor"] = spike_factor    # the report's footnote names the k it used
    return Results(root=Path(root), table=table, skipped=tuple(skipped), spike_factor=spike_factor,
                   series=series, reads=reads, reread=len(todo))


class _Series(Mapping):
    """cell_id -> CellSeries of a collect: the ones read now, and the kept folders' from the last collect's
    series (the report's state builds one only when it is asked for: a report draws tens, not 10,000)."""

    def __init__(self, last: Mapping):
        self._last, self._now = last, {}

    def add_read(self, cell_id: str, series: CellSeries | None) -> None:
        if series is not None:
            self._now[cell_id] = series

    def add_kept(self, cell_id: str, series: CellSeries | None) -> None:
        if series is not None or cell_id in self._last:
            self._now[cell_id] = series   # None: the last collect's, when asked for

    def __getitem__(self, cell_id: str) -> CellSeries:
        found = self._now[cell_id]
        return self._last[cell_id] if found is None else found

    def __contains__(self, cell_id) -> bool:   # without building the series
        return cell_id in self._now

    def __iter__(self):
        return iter(self._now)

    def __len__(self) -> int:
        return len(self._now)


def _read_folders(todo: list[tuple[str, str, str | None]], spike_factor: float) -> list[FolderRead]:
    """(path, name, signature) of some folders -> how each reads (a forkmap worker's share)."""
    return [_read_one(path, name, signature, spike_factor) for path, name, signature in todo]


def _read_one(path: str, name: str, signature: str | None, spike_factor: float) -> FolderRead:
    """One folder, each file read once: its row, with the train log's columns, and its series."""
    record = read_run_folder(Path(path), whole_log=True)
    row = _read_folder(record, path, name)
    if isinstance(row, Skipped):
        return FolderRead(signature, row, None, record.files)
    if record.log is not None:
        log = _parse_train_log(record.log)
    else:   # missing (None), or there but unreadable: read_train_logs says why
        log = read_train_logs([row["train_log"]])[0]
    usable = log is not None and not log.error and log.lines
    masks = spikes.spike_masks(log.columns, spike_factor) if usable else None
    row.update(_log_columns(log, spike_factor, masks))
    _add_divergence(row)
    row["problems"] = "; ".join(row["problems"] + _log_problems(log)) or None
    has_scores = usable and EVAL_SCORES in record.files   # a failed read_csv costs ~1 ms
    scores = read_scores(path) if has_scores else None
    series = CellSeries.from_log(log.columns, masks, scores) if usable else None
    return FolderRead(signature, row, series, record.files)


def _row_positions(table: pd.DataFrame) -> dict[str, int]:
    """Folder name -> row number of a table collect made (its run_dir column names the folder)."""
    return {os.path.basename(run_dir): k for k, run_dir in enumerate(table["run_dir"])} if len(table) else {}


def _frame(rows: list[dict], kept: pd.DataFrame | None = None) -> pd.DataFrame:
    """The table of rows read now and, when given, the rows of a table collect made before (kept as they are)."""
    extras = sorted(k for k in set().union(*rows) if k.startswith("axis.")) if rows else []
    if kept is not None:
        extras = sorted(set(extras) | {c for c in kept.columns if c.startswith("axis.")})
    df = _records(rows, list(COLUMNS) + extras)
    if kept is not None:   # in folder order, as a collect from scratch has them before sorting
        df = _concat(kept.reindex(columns=df.columns), df) if rows else kept.reindex(columns=df.columns)
        df = df.sort_values("run_dir", kind="stable")
    if df.empty:
        return df
    order = [c for c in ("stack", "impl", "clip", "seed", "cell_id") if df[c].notna().any()]
    df = df.sort_values(order, key=lambda s: s.map(str), kind="stable").reset_index(drop=True)
    # one block per dtype (a copy consolidates the column-wise changes above): the report adds
    # columns to slices of it, which pandas warns about, once per slice, on a fragmented frame
    return df.copy()


def _records(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    df = pd.DataFrame.from_records(rows, columns=columns)
    # plain Python strings: pandas' Arrow-backed text columns cost a conversion per value read,
    # seconds over a 10,000-row report's pages and tables
    return df.astype({c: object for c, dtype in df.dtypes.items() if isinstance(dtype, pd.StringDtype)})


def _concat(kept: pd.DataFrame, fresh: pd.DataFrame) -> pd.DataFrame:
    """Two tables as one, each column typed as if all its rows had been read at once (pd.concat
    would make a column of floats in one part and Nones in the other object, not float)."""
    df = pd.concat([kept, fresh], ignore_index=True)
    return df.assign(**{c: fixed for c in df.columns if (fixed := _as_read_at_once(df[c], kept[c], fresh[c])) is not None})


def _as_read_at_once(column: pd.Series, kept: pd.Series, fresh: pd.Series) -> pd.Series | None:
    """The column as from_records types it from all its values, where concatenating the parts did not (else None)."""
    if kept.dtype != fresh.dtype and not (kept.dtype == object and fresh.dtype == object):
        if all(_numeric_or_missing(part) for part in (kept, fresh)):
            return column.astype(float)   # ints, floats and missing values read at once: floats
        return _records([{column.name: v} for v in column.tolist()], [column.name])[column.name]
    if column.dtype != object:
        return None
    missing = column.isna().to_numpy()
    if not missing.any() or set(map(type, column[~missing].tolist())) != {str}:
        return None
    return column.where(~missing, np.nan)   # a text column: from_records' text type holds NaN where a value is missing


def _numeric_or_missing(part: pd.Series) -> bool:
    """Ints or floats (not bools), or nothing but missing values."""
    if part.dtype.kind in "iuf":
        return True
    return part.dtype == object and bool(part.isna().all())


def _with_stale(table: pd.DataFrame) -> pd.DataFrame:
    """The stale columns, from the code now (the kept rows' were computed against the code then)."""
    if table.empty:
        return table
    code, checked = CodeNow(), {}
    values = [_stale_columns({"state": state, "env_json": env}, code, checked)
              for state, env in zip(table["state"], table["env_json"])]
    return table.assign(stale=[v["stale"] for v in values], stale_reason=[v["stale_reason"] for v in values])


def _parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns that mix types (seed 0 in one cell, "0" in another) become text."""
    df = df.copy()
    for col in df.columns[df.dtypes == object]:
        values = df[col].tolist()
        if len(set(map(type, values)) - {type(None)}) < 2:   # most columns: text or None (a quick look)
            continue
        kinds = {type(v) for v in values if v is not None and v == v}
        if len(kinds) > 1:
            df[col] = df[col].map(lambda v: None if v is None or v != v else str(v))
    return df


def write_table(df: pd.DataFrame, results_dir: str | os.PathLike) -> list[Path]:
    """Write results/runs.parquet and results/runs.csv atomically.

    Returns:
        The two paths written.
    """
    root = Path(results_dir)
    safe = _parquet_safe(df)
    buf = io.BytesIO()
    safe.to_parquet(buf, index=False)
    return [atomic_write(root / RUNS_PARQUET, buf.getvalue()),
            atomic_write(root / RUNS_CSV, safe.to_csv(index=False))]

