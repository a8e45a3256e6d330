"""The one interface every executor implements (local, docker, ray).

The core never branches on an executor's name: it reads `capabilities`, builds the
executor from its declared `settings_model` (harness/executors/settings.py), asks it
how to `schedule` the cells (how many at once, CPU threads each), and calls `submit` /
`poll` / `cancel` / `close`. A cell's whole output crosses this boundary as files in its
run folder (see docs/run-folder.md), so an executor only has to start
`python -m model.train --config RUN_DIR/cell.yaml --out RUN_DIR` somewhere (on a
cluster node: harness/executors/node.py) and report how it ended.
"""
import abc
import dataclasses
import importlib.metadata
import os
import sys
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Optional, Sequence

from harness.states import CellState

__all__ = ["ExecutorError", "Capabilities", "Schedule", "Submission", "Outcome", "Executor", "trainer_command", "trainer_env",
           "host_schedule"]


def trainer_env() -> dict:
    """Variables every executor gives the trainer: the harness version, for env.json's provenance."""
    try:
        version = importlib.metadata.version("repro-unsup3d")
    except importlib.metadata.PackageNotFoundError:   # run from a source tree that was never installed
        version = "unknown"
    return {"REPRO_HARNESS_VERSION": version}


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


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How an executor runs a set of cells: this many at once, with this many CPU threads each."""
    jobs: int
    threads: int


def host_schedule(cells: Sequence, cores: int, jobs: Optional[int]) -> Schedule:
    """The schedule of an executor that runs cells on this host (local, docker).

    Without `jobs`: CPU cells one per core, each with one thread (on this repo's 2-core
    box that ran more steps per second than one cell with all the threads:
    benches/bench_train_step.py --compare-jobs); any GPU cell among them: one at a time,
    since how many fit on a GPU is the user's call. The cores are divided among the
    cells at once; an OMP_NUM_THREADS the user set is an upper bound.
    """
    if jobs is None:
        jobs = cores if cells and all(c.stack.cuda is None for c in cells) else 1
    threads = max(1, cores // max(1, jobs))
    cap = os.environ.get("OMP_NUM_THREADS", "")
    return Schedule(jobs=jobs, threads=min(threads, int(cap)) if cap.isdigit() and int(cap) > 0 else threads)


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
    settings_model: ClassVar[Optional[type]] = None  # its ExecutorSettings subclass; None: nothing to set
    threads: int = 0    # CPU threads per cell (0: the environment's default); `schedule` sets it

    @classmethod
    def create(cls, settings=None) -> "Executor":
        """Build the executor for one `repro run` from its validated settings (connects, if it has to).

        Raises:
            ExecutorError: what it needs is missing or does not answer (one line).
        """
        return cls() if settings is None else cls(settings)

    def schedule(self, cells: Sequence, cores: int, jobs: Optional[int] = None) -> Schedule:
        """How many of `cells` to run at once (`jobs` if the user gave it) and the CPU threads of each.

        `cores` are this host's; an executor whose cells run elsewhere sizes them by
        where they run. Remembers the threads for the cells it then submits.
        """
        plan = host_schedule(cells, cores, jobs)
        self.threads = plan.threads
        return plan

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
