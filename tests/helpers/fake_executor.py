"""A third executor, written as a new cluster executor would be: one module with its settings,
its schedule and the shared node side (harness/executors/node.py).

It "places" each cell on one of `nodes` simulated nodes, where node.node_executor runs
it as that node would by itself. `lose_first_launch` makes every cell's first launch
vanish as on a lost node: the cell is launched again and its outcome counts two attempts.
"""
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import pydantic

from harness.executors import node
from harness.executors.base import Capabilities, Executor, Outcome, Schedule, Submission
from harness.executors.settings import ExecutorSettings

__all__ = ["FakeClusterExecutor", "FakeSettings"]


class FakeSettings(ExecutorSettings):
    nodes: int = pydantic.Field(3, gt=0, description="Simulated nodes, one cell each at a time.")
    cpus: int = pydantic.Field(1, gt=0, description="Threads of each cell on its node.")
    lose_first_launch: bool = pydantic.Field(False, description="The first launch of every cell is lost.")


class FakeClusterExecutor(Executor):
    name = "fake"
    capabilities = Capabilities(isolated_fs=False, gpu=False, async_submit=True, needs_image=False, remote=True)
    settings_model = FakeSettings

    def __init__(self, settings: FakeSettings = FakeSettings()):
        self.settings, self.threads = settings, settings.cpus

    def schedule(self, cells: Sequence, cores: int, jobs: Optional[int] = None) -> Schedule:
        return Schedule(jobs=jobs or self.settings.nodes, threads=self.threads)   # the cluster's size, not `cores`

    def submit(self, cell, run_dir: Path) -> Submission:
        sub = Submission(cell_id=cell.cell_id, run_dir=Path(run_dir), handle={"cell": cell, "launches": 0})
        self._launch(sub)
        return sub

    def poll(self, subs: Iterable[Submission]) -> Iterator[Submission]:
        for sub in subs:
            task = sub.handle
            if task["lost"]:
                self._launch(sub)
            elif not list(task["executor"].poll([task["sub"]])):
                self._take(sub)
            if sub.outcome is None:
                yield sub

    def cancel(self, subs: Iterable[Submission]) -> None:
        for sub in subs:
            if sub.outcome is None and not sub.handle["lost"]:
                sub.handle["executor"].cancel([sub.handle["sub"]])
                list(sub.handle["executor"].poll([sub.handle["sub"]]))
                self._take(sub)

    def _launch(self, sub: Submission) -> None:
        task = sub.handle
        task["launches"] += 1
        task["lost"] = self.settings.lose_first_launch and task["launches"] == 1
        if not task["lost"]:
            task["executor"] = node.node_executor(task["cell"], self.threads, gpus=())
            task["sub"] = task["executor"].submit(task["cell"], sub.run_dir)

    def _take(self, sub: Submission) -> None:
        task = sub.handle
        task["executor"].close()
        sub.outcome = Outcome(task["sub"].outcome.exit_code, task["sub"].outcome.reason, task["sub"].outcome.state,
                              attempts=task["launches"])
