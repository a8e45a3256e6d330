"""A real one-cell study on the `tiny` preset and its prepared run folder, for executor tests."""
import time
from pathlib import Path

from harness.cells import expand
from harness.matrix import load_study
from harness.cellresult import classify
from harness.runfolder import prepare

__all__ = ["MATRIX", "make_cell", "run_to_end", "wait_ended", "wait_for"]

MATRIX = """\
axes:
  stack:
    - name: {stack}
      image: local
      torch: "2.13.0"
  seed: [0]
  preset: [tiny]
config: {config}
"""


def make_cell(tmp_path: Path, stack: str = "cpu", config: str = "{}", executor: str = "local", threads: int = 1,
              matrix: str = MATRIX):
    """The Cell of a one-cell study (`matrix` with {stack} and {config} filled in) and its run
    folder, prepared as the scheduler would."""
    path = tmp_path / "m.yml"
    path.write_text(matrix.format(stack=stack, config=config))
    (cell,) = expand(load_study(path))
    run_dir = tmp_path / "results" / cell.cell_id
    prepare(run_dir, cell, threads=threads, executor=executor)
    return cell, run_dir


def run_to_end(executor, cell, run_dir, limit: float = 300):
    """submit + poll until the cell ends; returns (submission, state, reason) as the harness reads them."""
    sub = executor.submit(cell, run_dir)
    wait_ended(executor, sub, limit)
    state, reason = classify(sub.outcome, run_dir)
    return sub, state, reason


def wait_ended(executor, sub, limit: float = 300) -> None:
    """Poll a submission until the executor says it ended (sub.outcome is then set)."""
    deadline = time.monotonic() + limit
    while list(executor.poll([sub])):
        assert time.monotonic() < deadline, "cell did not end in %ds" % limit
        time.sleep(0.3)


def wait_for(predicate, timeout: float = 180, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError("timed out waiting for " + what)
