"""Run cells through an executor, at most `jobs` at a time, recording each end in its folder.

Per cell: prepare the folder (cell.json, cell.yaml, `.incomplete`, status running),
submit, poll until it ends, classify (done/failed/diverged), finish (status, marker
removed). On Ctrl-C the running cells are cancelled and keep their marker, so the
next `repro run` resumes them from their checkpoints.
"""
import logging
import time
from collections import deque
from pathlib import Path
from typing import Collection, Dict, List, Sequence, Tuple

from harness.cells import Cell
from harness.executors.base import Executor, Outcome, Submission
from harness.cellresult import CellResult, classify
from harness.progress import Progress
from harness.runfolder import finish, prepare, set_aside_results
from harness.states import CellState

__all__ = ["run_cells"]

log = logging.getLogger("repro")
POLL_S = 0.5   # how often running cells are checked (and progress redrawn)


def run_cells(cells: Sequence[Cell], executor: Executor, results: Path, *, jobs: int, threads: int,
              progress: Progress, stop_on_first_error: bool = False,
              fresh: Collection[str] = ()) -> List[CellResult]:
    """Run `cells`; return one CellResult each (in the order they ended). Cells whose id is in
    `fresh` train from scratch: their old files are set aside (RUN_DIR/.previous) as they launch.

    Raises:
        KeyboardInterrupt: after cancelling the running cells (their folders stay resumable).
    """
    pending = deque(cells)
    active: Dict[str, Tuple[Cell, Submission, dict, float]] = {}
    out: List[CellResult] = []
    try:
        while pending or active:
            while pending and len(active) < max(1, jobs):
                cell = pending.popleft()
                launched = _launch(cell, executor, results, threads, progress, cell.cell_id in fresh)
                if isinstance(launched, CellResult):
                    out.append(launched)
                else:
                    active[cell.cell_id] = launched
            for result in _reap(executor, active, progress):
                out.append(result)
                if stop_on_first_error and not result:
                    log.error("stopping: %s %s (--stop-on-first-error); queued cells not started",
                              result.name, result.state)
                    pending.clear()
            progress.tick()
            if active:
                time.sleep(POLL_S)
    except BaseException:
        executor.cancel([sub for _, sub, _, _ in active.values()])
        raise
    finally:
        progress.close()
    return out


def _launch(cell: Cell, executor: Executor, results: Path, threads: int, progress: Progress, fresh: bool):
    run_dir = results / cell.cell_id
    if fresh:  # else the trainer would resume the old code's final checkpoint
        set_aside_results(run_dir)
    status = prepare(run_dir, cell, threads=threads, executor=executor.name)
    progress.started(cell, run_dir)
    try:
        sub = executor.submit(cell, run_dir)
    except Exception as e:  # an executor bug or a missing binary: record it on the cell, go on
        log.exception("could not start %s", cell.name)
        return _record(cell, run_dir, status, Outcome(exit_code=None, reason="%s: %s" % (type(e).__name__, e)),
                       time.monotonic(), progress)
    return cell, sub, status, time.monotonic()


def _reap(executor: Executor, active: dict, progress: Progress):
    """Yield a CellResult for every active submission that has ended."""
    subs = [sub for _, sub, _, _ in active.values()]
    still = {sub.cell_id for sub in executor.poll(subs)}
    for cell_id in [c for c in active if c not in still]:
        cell, sub, status, t0 = active.pop(cell_id)
        outcome = sub.outcome or Outcome(exit_code=None, reason="executor lost the submission")
        yield _record(cell, sub.run_dir, status, outcome, t0, progress)


def _record(cell: Cell, run_dir: Path, status: dict, outcome: Outcome, t0: float, progress: Progress) -> CellResult:
    state, reason = classify(outcome, run_dir)
    if state != CellState.INTERRUPTED:  # an interrupted cell keeps its marker: the next run resumes it
        finish(run_dir, status, state, reason, extra_attempts=outcome.attempts - 1)
    progress.ended(cell, state, reason)
    return CellResult(cell.cell_id, cell.name, state, reason, time.monotonic() - t0)




