"""Named exit codes of every `repro` command, in one place so scripts can branch on them."""
import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    OK = 0                # everything selected ran (or was already done / skipped with a reason)
    CELLS_FAILED = 1      # at least one cell failed or diverged
    CONFIG_ERROR = 2      # bad matrix file, schema or trainer key
    SELECTION_ERROR = 3   # --only / --cell matched nothing or named unknown keys/ids
    LOCKED = 4            # another `repro run` holds the results folder (STYLE.md's INCOMPLETE slot)
    INTERRUPTED = 130     # Ctrl-C / SIGTERM; run folders stay resumable
