"""Results are values: how a cell ended, decided in one place from exit code + result.json."""
import dataclasses
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from harness.executors.base import Outcome
from harness.fsutil import read_json
from harness.rundir import DIVERGED, DONE, FAILED, log_tail

__all__ = ["CellResult", "classify", "INTERRUPTED", "EXIT_DONE", "EXIT_CONFIG", "EXIT_DIVERGED", "EXIT_TERMINATED"]

# the trainer's exit codes (docs/run-folder.md)
EXIT_DONE, EXIT_CONFIG, EXIT_DIVERGED, EXIT_TERMINATED = 0, 2, 3, 143
INTERRUPTED = "interrupted"   # not a status.json state: the cell keeps `.incomplete` and resumes next run


@dataclasses.dataclass
class CellResult:
    """One cell's end state in this run; true when it ended well (done, cached or skipped)."""
    cell_id: str
    name: str
    state: str            # done | failed | diverged | skipped | cached | interrupted
    reason: str = ""
    duration: float = 0.0  # seconds of this attempt (0 for cached/skipped)

    def __bool__(self) -> bool:
        return self.state in ("done", "cached", "skipped")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "CellResult":
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


def classify(outcome: Outcome, run_dir: Path) -> Tuple[str, str]:
    """Map an ended submission to (state, reason) using the trainer's result.json and log.

    Args:
        outcome: what the executor saw (exit code, or its own verdict).
        run_dir: the cell's folder.

    Returns:
        (done|failed|diverged|skipped|interrupted, one-line-or-log-tail reason).
    """
    if outcome.state:
        return outcome.state, outcome.reason
    result = read_json(run_dir / "result.json")
    result = result if isinstance(result, dict) else {}
    code = outcome.exit_code
    if code == EXIT_DONE and result.get("state") == DONE:
        return DONE, ""
    if code == EXIT_TERMINATED:
        return INTERRUPTED, "terminated by SIGTERM after saving a checkpoint; the next run resumes it"
    if code == EXIT_DIVERGED or result.get("state") == DIVERGED:
        return DIVERGED, _diverged_reason(result)
    return FAILED, _failed_reason(code, result, run_dir, outcome.reason)


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
    elif code == EXIT_CONFIG:
        head = "trainer rejected the config (exit 2)"
    elif code < 0:
        head = "trainer killed by signal %d" % -code
    else:
        head = "trainer exited with code %d" % code
    tail = log_tail(run_dir / "stdout.log", 20)
    return head + ("\n" + tail if tail else "")
