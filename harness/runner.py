"""`repro run` as a pipeline of small tasks (see harness/workflow.py).

load_study -> expand_matrix -> select_cells -> plan_cells -> check_settings -> honor_dry_run ->
lock_results -> check_incomplete -> record_skipped -> run_cells -> print_summary ->
final_reduce. Each task gets the previous one's value and the frozen RunConfig and
returns the next value or an ExitCode (after logging one line).
"""
import contextlib
import dataclasses
import enum
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from harness import executors
from harness.cells import Cell, CellConfigError, expand, planned_numerics
from harness.executors.base import Executor, ExecutorError
from harness.executors.settings import load_settings
from harness.exitcodes import ExitCode
from harness.feasibility import why_not_runnable
from harness.host import Host, probe
from harness.lock import LockedError, ResultsLock
from harness.matrix import SWEPT_AXES, MatrixError, Study
from harness.matrix import load_study as _load_study_file
from harness.cellresult import CellResult
from harness.progress import Progress
from harness.runfolder import RunRecord, mark_skipped, read_run_folder
from harness.staleness import CHECKED_STATES, CodeNow
from harness.states import FINISHED, CellState
from harness.scheduler import run_cells as _run_cells
from harness.workflow import execute

__all__ = ["RunConfig", "Action", "Plan", "Planned", "RUN_TASKS", "run",
           "load_study", "expand_matrix", "select_cells", "plan_cells", "check_settings", "honor_dry_run",
           "lock_results",
           "check_incomplete", "record_skipped", "run_cells", "print_summary", "final_reduce"]

log = logging.getLogger("repro")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything `repro run` was asked to do (built by the CLI, read by every task)."""
    matrix: Path = Path("matrix.yml")      # the study file
    results: Path = Path("results")        # one folder per cell below it
    executor: Optional[str] = None         # None = each stack's own executor
    only: Tuple[str, ...] = ()             # KEY=VALUE filters (same key: any of; keys: all of)
    cells: Tuple[str, ...] = ()            # cell id prefixes
    jobs: Optional[int] = None             # cells at once (None: each executor's schedule says)
    executor_settings: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)  # executor ->
    # setting -> value given on the command line (harness/executors/settings.py; None: not given)
    retry_failed: bool = False             # rerun failed/diverged cells
    rerun_stale: bool = False              # retrain cells whose code changed since they ran (a selection does too)
    dry_run: bool = False                  # print the plan, run nothing
    stop_on_first_error: bool = False      # do not start more cells after a failure
    tty: Optional[bool] = None             # progress style; None = ask stderr
    resources: contextlib.ExitStack = dataclasses.field(default_factory=contextlib.ExitStack, compare=False)


class Action(str, enum.Enum):
    """What this run does with a cell (the --dry-run column); a plan, not a CellState."""
    RUN = "run"                  # never started
    RESUME = "resume"            # `.incomplete` left by a crash: go on from the checkpoint
    RETRY = "retry"              # failed/diverged before, --retry-failed
    RERUN = "rerun"              # stale and asked to, or interrupted under other code: old files set aside, trained anew
    RESCORE = "rescore"          # done, but eval.json unreadable: evaluated again from its final checkpoint
    CACHED = "cached"            # done before: reported, not rerun
    STALE = "stale"              # done before with other code: reported (with what changed), not rerun
    KEPT_FAILED = "kept-failed"  # failed/diverged before: reported, not rerun
    SKIP = "skip"                # cannot run here (the reason says why)

    def __str__(self) -> str:
        return self.value


_RUNS = (Action.RUN, Action.RESUME, Action.RETRY, Action.RERUN, Action.RESCORE)
# the state a cell that is not run ends this run in (kept-failed: the one recorded before)
_SETTLED = {Action.CACHED: CellState.CACHED, Action.SKIP: CellState.SKIPPED, Action.STALE: CellState.STALE}


@dataclasses.dataclass
class Planned:
    """What this run will do with one cell."""
    cell: Cell
    action: Action
    reason: str = ""
    executor: str = ""
    earlier: CellState = CellState.UNKNOWN  # kept-failed: the state recorded before (failed | diverged)

    @property
    def runs(self) -> bool:
        return self.action in _RUNS

    @property
    def settled_state(self) -> CellState:
        """The state a cell that does not run ends this run in."""
        return _SETTLED.get(self.action, self.earlier)


@dataclasses.dataclass
class Plan:
    host: Host
    items: List[Planned]
    results: List[CellResult] = dataclasses.field(default_factory=list)
    settings: Dict[str, Any] = dataclasses.field(default_factory=dict)  # executor -> its validated settings


# ---------------------------------------------------------------------------
# tasks

def load_study(_, *, config: RunConfig):
    """Read and validate the matrix file (exit 2 with file:line:key lines on mistakes)."""
    try:
        return _load_study_file(config.matrix)
    except MatrixError as e:
        for line in str(e).splitlines():
            log.error(line)
        return ExitCode.CONFIG_ERROR


def expand_matrix(study: Study, *, config: RunConfig):
    """All cells of the study (exit 2 when the trainer rejects a combination)."""
    try:
        cells = expand(study)
    except CellConfigError as e:
        log.error(str(e))
        return ExitCode.CONFIG_ERROR
    if study.description:
        log.info("%s: %s (%d cells)", study.source, study.description, len(cells))
    return cells


def select_cells(cells: List[Cell], *, config: RunConfig):
    """Apply --only KEY=VALUE and --cell PREFIX (exit 3 on unknown keys/ids or no match)."""
    filters = _parse_only(config.only)
    if isinstance(filters, str):
        log.error(filters)
        return ExitCode.SELECTION_ERROR
    chosen = [c for c in cells if all(_axis_text(c, k) in vals for k, vals in filters.items())]
    if config.cells:
        unknown = [p for p in config.cells if not any(c.cell_id.startswith(p) for c in cells)]
        if unknown:
            log.error("unknown cell id(s): %s (`repro run --dry-run` lists the ids)", ", ".join(unknown))
            return ExitCode.SELECTION_ERROR
        chosen = [c for c in chosen if any(c.cell_id.startswith(p) for p in config.cells)]
    if not chosen:
        log.error("the selection matched no cell of %s (`repro run --dry-run` lists them)", config.matrix)
        return ExitCode.SELECTION_ERROR
    return chosen


def plan_cells(cells: List[Cell], *, config: RunConfig) -> Plan:
    """Decide per cell: run, resume, retry, rerun, rescore, cached, stale, kept-failed or skip (with why)."""
    host, code = probe(), CodeNow()
    return Plan(host=host, items=[_plan_one(c, host, code, config) for c in cells])


def check_settings(plan: Plan, *, config: RunConfig):
    """Validate the settings of every executor that has cells to run (exit 2 with one line on a bad value)."""
    for name in sorted({item.executor for item in plan.items if item.runs}):
        model = executors.load(name).settings_model
        try:
            plan.settings[name] = load_settings(name, model, config.executor_settings.get(name)) if model else None
        except ExecutorError as e:
            log.error(str(e))
            return ExitCode.CONFIG_ERROR
    return plan


def honor_dry_run(plan: Plan, *, config: RunConfig):
    """--dry-run: print the plan and stop (a flag, not an executor: it plans with the real
    executors' capabilities, so its run/skip verdicts are the ones a real run would reach)."""
    if not config.dry_run:
        return plan
    for item in plan.items:
        print("%s  %-40s %-11s %s" % (item.cell.cell_id, item.cell.name, item.action,
                                      item.reason or ("executor " + item.executor if item.runs else "")))
        print("%14s%s" % ("", planned_numerics(item.cell)))
    counts = _count(plan.items)
    print("%d cells: %s" % (len(plan.items), ", ".join("%d %s" % (n, a) for a, n in counts.items())))
    return ExitCode.OK


def lock_results(plan: Plan, *, config: RunConfig):
    """Hold results/.lock for the rest of the run (exit 4 naming the holder if taken)."""
    try:
        config.resources.enter_context(ResultsLock(config.results))
    except LockedError as e:
        log.error(str(e))
        return ExitCode.LOCKED
    return plan


def check_incomplete(plan: Plan, *, config: RunConfig):
    """Cells left `.incomplete` by a crash resume; a folder holding another cell is refused."""
    for item in plan.items:
        run_dir = config.results / item.cell.cell_id
        recorded = read_run_folder(run_dir).cell
        if recorded and recorded.get("cell_id") != item.cell.cell_id:
            log.error("%s holds cell %s, not %s; move that folder away and run again",
                      run_dir, recorded.get("cell_id"), item.cell.cell_id)
            return ExitCode.CONFIG_ERROR
    resumed = [i.cell.name for i in plan.items if i.action == Action.RESUME]
    if resumed:
        log.info("resuming %d interrupted cell(s) from their checkpoints: %s", len(resumed), ", ".join(resumed))
    return plan


def record_skipped(plan: Plan, *, config: RunConfig) -> Plan:
    """Write status skipped (with why) for cells that cannot run here, unless a result exists."""
    for item in plan.items:
        if item.action != Action.SKIP:
            continue
        run_dir = config.results / item.cell.cell_id
        record = read_run_folder(run_dir)
        if record.state not in FINISHED and not record.incomplete:
            mark_skipped(run_dir, item.cell, item.reason)
        plan.results.append(CellResult(item.cell.cell_id, item.cell.name, CellState.SKIPPED, item.reason))
    return plan


def run_cells(plan: Plan, *, config: RunConfig) -> List[CellResult]:
    """Run the cells that need it, each executor scheduling its own; cached, stale and kept-failed
    cells are reported as they are."""
    for item in plan.items:
        if item.action in (Action.CACHED, Action.STALE, Action.KEPT_FAILED):
            plan.results.append(CellResult(item.cell.cell_id, item.cell.name, item.settled_state, item.reason))
    by_executor: Dict[str, List[Cell]] = {}
    for item in plan.items:
        if item.runs:
            by_executor.setdefault(item.executor, []).append(item.cell)
    started = _start_executors(by_executor, plan, config)
    if isinstance(started, ExitCode):
        return started
    progress = Progress(total=len(plan.items), jobs=max([s.jobs for _, s in started.values()] or [1]),
                        tty=config.tty)
    for item in plan.items:
        if not item.runs:
            progress.settled(item.settled_state)
    # set aside at launch, not here: a run stopped before a cell starts leaves that cell's results in place
    fresh = frozenset(item.cell.cell_id for item in plan.items if item.action == Action.RERUN)
    for name, cells in by_executor.items():
        executor, schedule = started[name]
        plan.results += _run_cells(cells, executor, config.results, jobs=schedule.jobs, threads=schedule.threads,
                                   progress=progress, stop_on_first_error=config.stop_on_first_error,
                                   fresh=fresh)
    return plan.results


def _start_executors(by_executor: Dict[str, List[Cell]], plan: Plan, config: RunConfig):
    """name -> (executor, its schedule) for every executor with cells to run; an executor that cannot
    start (ray missing, a cluster or engine that does not answer) is one line and exit 2, before any
    folder is touched."""
    started = {}
    for name, cells in by_executor.items():
        try:
            executor: Executor = executors.load(name).create(plan.settings[name])
        except ExecutorError as e:
            log.error(str(e))
            return ExitCode.CONFIG_ERROR
        config.resources.callback(executor.close)
        started[name] = (executor, executor.schedule(cells, plan.host.cores, config.jobs))
    return started


def print_summary(results: List[CellResult], *, config: RunConfig) -> List[CellResult]:
    """One line per cell that did not end well or is stale, then the counts."""
    for r in results:
        if (not r and r.state != CellState.INTERRUPTED) or r.state == CellState.STALE:
            print("%-8s %s  %s: %s" % (r.state, r.cell_id, r.name, (r.reason or "").splitlines()[0]
                                       if r.reason else ""), file=sys.stderr)
    counts: Dict[str, int] = {}
    for r in results:
        counts[r.state] = counts.get(r.state, 0) + 1
    log.info("%d cells: %s; results in %s (`repro status`, `repro report`)", len(results),
             ", ".join("%d %s" % (n, s) for s, n in sorted(counts.items())), config.results)
    return results


def final_reduce(results: List[CellResult], *, config: RunConfig):
    """OK when every cell is done, cached or skipped; CELLS_FAILED otherwise."""
    return ExitCode.OK if all(results) else ExitCode.CELLS_FAILED


RUN_TASKS = (load_study, expand_matrix, select_cells, plan_cells, check_settings, honor_dry_run, lock_results,
             check_incomplete, record_skipped, run_cells, print_summary, final_reduce)


def run(config: RunConfig) -> int:
    """Run the `repro run` pipeline; the results lock and executors are released at the end."""
    with config.resources:
        return execute(RUN_TASKS, config)


# ---------------------------------------------------------------------------
# helpers

def _parse_only(only) -> "Dict[str, set] | str":
    filters: Dict[str, set] = {}
    for item in only:
        for part in filter(None, item.split(",")) if "=" in item and item.count("=") > 1 else [item]:
            key, sep, value = part.partition("=")
            if not sep or key not in SWEPT_AXES:
                return "--only %r: expected KEY=VALUE with KEY one of %s" % (part, ", ".join(SWEPT_AXES))
            filters.setdefault(key, set()).add(value.lower() if value.lower() in ("true", "false") else value)
    return filters


def _axis_text(cell: Cell, key: str) -> str:
    """A cell's value on an axis as --only spells it; a factor axis the study does not sweep
    reads the cell's config (true/false in YAML's spelling)."""
    value = cell.axis[key] if key in cell.axis else cell.config.get(key)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _plan_one(cell: Cell, host: Host, code: CodeNow, config: RunConfig) -> Planned:
    name = config.executor or cell.stack.executor
    record = read_run_folder(config.results / cell.cell_id)
    state = record.state
    if state in FINISHED and state != CellState.DONE and not config.retry_failed:
        first = ((record.status or {}).get("reason") or "").splitlines()[:1]
        return Planned(cell, Action.KEPT_FAILED, "%s earlier (%s); --retry-failed reruns it" % (
            state, first[0] if first else "no reason recorded"), name, earlier=state)
    action, reason = _wanted(record, code, config)
    if action in (Action.CACHED, Action.STALE):
        return Planned(cell, action, reason, name)
    why = why_not_runnable(cell, executors.load(name), host, name)
    if why:
        return Planned(cell, Action.SKIP, why, name)
    return Planned(cell, action, reason, name)


def _wanted(record: RunRecord, code: CodeNow, config: RunConfig) -> Tuple[Action, str]:
    """What this run would do with a cell's folder, before asking whether it can run here."""
    state = record.state
    stale = code.check(record.env) if state in CHECKED_STATES else None
    if stale is not None and stale.stale:
        # asking for cells by name or axis value asks for them to be current
        if config.rerun_stale or config.cells or config.only:
            return Action.RERUN, "stale: " + stale.reason()
        return Action.STALE, "%s; --rerun-stale reruns it" % stale.reason()
    if state == CellState.DONE:
        why = record.needs_rescore()
        return (Action.RESCORE, why + ": evaluating its final checkpoint again") if why else (Action.CACHED, "")
    if state in FINISHED:
        return Action.RETRY, ""
    if record.incomplete and record.env:
        moved = code.check(record.env)
        if moved.stale:  # resuming would finish one result with two codes
            return Action.RERUN, "its checkpoint is from other code (%s): trained from scratch" % moved.reason()
    return (Action.RESUME if record.incomplete else Action.RUN), ""


def _count(items: List[Planned]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for i in items:
        counts[str(i.action)] = counts.get(str(i.action), 0) + 1
    return counts
