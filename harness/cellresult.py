"""How a cell ended in this run (`CellResult`), decided in one place from the executor's `Outcome` and result.json."""
import dataclasses
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from harness.executors.base import Outcome
from harness.fsutil import read_json_object
from harness.runfolder import log_tail
from harness.states import ENDED_WELL, CellState
from model.exitcodes import EXIT_DIVERGED, EXIT_DONE, EXIT_TERMINATED, EXIT_USAGE

__all__ = ["CellResult", "classify"]


@dataclasses.dataclass
class CellResult:
    """One cell's end state in this run; true when it ended well (done, cached or skipped)."""
    cell_id: str
    name: str
    state: CellState      # done | failed | diverged | skipped | cached | interrupted
    reason: str = ""
    duration: float = 0.0  # seconds of this attempt (0 for cached/skipped)

    def __bool__(self) -> bool:
        return self.state in ENDED_WELL


def classify(outcome: Outcome, run_dir: Path) -> Tuple[CellState, str]:
    """Map an ended submission to (state, reason) using the trainer's result.json and log.

    Args:
        outcome: what the executor saw (exit code, or its own verdict).
        run_dir: the cell's folder.

    Returns:
        (done|failed|diverged|skipped|interrupted, one-line-or-log-tail reason).
    """
    if outcome.state:
        return CellState(outcome.state), outcome.reason
    result = read_json_object(run_dir / "result.json")[0] or {}
    code = outcome.exit_code
    if code == EXIT_DONE and result.get("state") == CellState.DONE:
        return CellState.DONE, ""
    if code == EXIT_TERMINATED:
        return CellState.INTERRUPTED, "terminated by SIGTERM after saving a checkpoint; the next run resumes it"
    if code == EXIT_DIVERGED or result.get("state") == CellState.DIVERGED:
        return CellState.DIVERGED, _diverged_reason(result)
    return CellState.FAILED, _failed_reason(code, result, run_dir, outcome.reason)


def _diverged_reason(result: Dict[str, Any]) -> str:
    parts = ["iteration %s" % result["iteration"]] if "iteration" in result else []
    parts += ["network %s" % result["network"]] if result.get("network") else []
    parts += [str(result["reason"])] if result.get("reason") else []
    return ", ".join(parts) or "diverged (result.json gives no detail)"


def _failed_reason(code: Optional[int], result: Dict[str, Any], run_dir: Path, why: str) -> str:
    if code is None:
        head = "did not start: %s" % (why or "unknown")
    elif code == EXIT_DONE:
        head = "trainer exited 0 but wrote no result.json saying done"
    elif code == EXIT_USAGE:
        head = "trainer rejected the config (exit 2)"
    elif code < 0:
        head = "trainer killed by signal %d" % -code
    else:
        head = "trainer exited with code %d" % code
    tail = log_tail(run_dir / "stdout.log", 20)
    return head + ("\n" + tail if tail else "")
