"""An executor that runs nothing: `repro run --executor dryrun` prints the plan (like --dry-run).

It implements the full interface, ending each submission at once, so it also
serves as the simplest executor in contract tests.
"""
from pathlib import Path
from typing import Iterable, Iterator

from harness.executors.base import Capabilities, Executor, Outcome, Submission, register

__all__ = ["DryRunExecutor"]


@register
class DryRunExecutor(Executor):
    name = "dryrun"
    capabilities = Capabilities(gpu=True, async_submit=False, dry_run=True)

    def submit(self, cell, run_dir: Path) -> Submission:
        return Submission(cell_id=cell.cell_id, run_dir=Path(run_dir),
                          outcome=Outcome(exit_code=None, state="skipped", reason="dry run"))

    def poll(self, subs: Iterable[Submission]) -> Iterator[Submission]:
        return iter([s for s in subs if s.outcome is None])

    def cancel(self, subs: Iterable[Submission]) -> None:
        pass
