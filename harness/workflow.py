"""Run a command as a pipeline of small tasks (nox's `workflow.execute`).

Each task has the signature `task(prev, *, config) -> next | ExitCode`: it gets the
previous task's return value and the frozen command config. A task that returns an
`ExitCode` (or any int) ends the pipeline with that code, so every step can refuse
with one logged line and no traceback.
"""
import logging
from typing import Any, Callable, Sequence

from harness.exitcodes import ExitCode

__all__ = ["Task", "execute"]

Task = Callable[..., Any]
log = logging.getLogger("repro")


def execute(tasks: Sequence[Task], config: Any) -> int:
    """Run `tasks` in order, chaining return values.

    Args:
        tasks: task functions `(prev, *, config)`.
        config: the command's frozen config, passed to every task.

    Returns:
        The first int a task returns, else ExitCode.OK; INTERRUPTED on Ctrl-C.
    """
    value: Any = None
    try:
        for task in tasks:
            value = task(value, config=config)
            # bool is an int subclass, but no task means "exit" by returning True/False
            if isinstance(value, int) and not isinstance(value, bool):
                return int(value)
    except KeyboardInterrupt:
        log.error("interrupted; run folders are left resumable (run the same command again)")
        return int(ExitCode.INTERRUPTED)
    return int(ExitCode.OK)
