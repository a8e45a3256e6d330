"""The one interface every executor implements (local, docker, ray).

The core never branches on an executor's name: it reads `capabilities` and calls
`submit` / `poll` / `cancel` / `close`. A cell's whole output crosses this boundary
as files in its run folder (see docs/run-folder.md), so an executor only has to
start `python -m model.train --config RUN_DIR/cell.yaml --out RUN_DIR` somewhere
and report how it ended.
"""
import abc
import dataclasses
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from harness.states import CellState

__all__ = ["ExecutorError", "Capabilities", "Submission", "Outcome", "Executor", "trainer_command"]


def trainer_command(run_dir: Path, python: str = sys.executable) -> list:
    """The one way every executor starts a cell (DESIGN.md): python -m model.train --config ... --out ..."""
    return [python, "-m", "model.train", "--config", str(run_dir / "cell.yaml"), "--out", str(run_dir)]


class ExecutorError(RuntimeError):
    """A user-fixable problem starting an executor; str() is one line ending in the fix."""


@dataclasses.dataclass(frozen=True)
class Capabilities:
    isolated_fs: bool = False   # the cell sees only its bind-mounted run folder
    gpu: bool = False           # can give a cell a GPU
    async_submit: bool = True   # submit() returns before the cell ends
    needs_image: bool = False   # the cell's stack must name a built image
    remote: bool = False        # cells run on other hosts (a cluster): this host's GPUs/docker do not matter


@dataclasses.dataclass
class Outcome:
    """How a finished submission ended, before the run folder is read."""
    exit_code: Optional[int]    # None when the process never started
    reason: str = ""            # one line for status.json when it did not end well
    state: Optional[CellState] = None  # executor-decided (SKIPPED, FAILED); None: from the exit code
    attempts: int = 1           # launches this submission took (an executor that relaunches a lost cell counts them)


@dataclasses.dataclass
class Submission:
    cell_id: str
    run_dir: Path
    external_id: str = ""       # pid, container id, ray object ref...
    handle: Any = None          # executor-private
    outcome: Optional[Outcome] = None  # set by poll() once the cell has ended


class Executor(abc.ABC):
    name = "base"
    capabilities = Capabilities()

    @classmethod
    def create(cls, *, threads: int = 0) -> "Executor":
        """Build the executor for one `repro run`; `threads` = CPU threads per cell (0 = default)."""
        return cls()

    @abc.abstractmethod
    def submit(self, cell, run_dir: Path) -> Submission:
        """Start the cell's training run writing into run_dir; return at once."""

    @abc.abstractmethod
    def poll(self, subs: Iterable[Submission]) -> Iterator[Submission]:
        """Set `.outcome` on the submissions that ended; yield those still active."""

    @abc.abstractmethod
    def cancel(self, subs: Iterable[Submission]) -> None:
        """Stop the given submissions, leaving their run folders resumable."""

    def close(self) -> None:
        """Release executor resources (clients, clusters)."""
