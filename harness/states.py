"""The one vocabulary of cell states, shared by status.json, outcomes, status, progress and collect.

A `str` enum: members compare equal to the plain strings stored in status.json, so
JSON files written before this module existed read back unchanged.
"""
import enum

__all__ = ["CellState", "FINISHED", "ENDED_WELL"]


class CellState(str, enum.Enum):
    QUEUED = "queued"            # status.json: known to the run, not launched yet
    RUNNING = "running"          # status.json: launched; `.incomplete` marks it
    DONE = "done"                # status.json: trained and evaluated
    FAILED = "failed"            # status.json: crashed or rejected; the reason holds the log tail
    DIVERGED = "diverged"        # status.json: a loss or gradient went non-finite (result.json says where)
    SKIPPED = "skipped"          # status.json: cannot run here (the reason says why)
    CACHED = "cached"            # this run only: done in an earlier run, not rerun
    INTERRUPTED = "interrupted"  # this run only: stopped after a checkpoint; `.incomplete` stays, next run resumes
    UNKNOWN = "unknown"          # a reader's verdict: status.json missing or names no known state
    STALE = "stale"              # a reader's verdict: a result the code that would run it now did not make

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, text) -> "CellState":
        """The state a status.json string names; UNKNOWN for anything else."""
        try:
            return cls(text)
        except ValueError:
            return cls.UNKNOWN


FINISHED = (CellState.DONE, CellState.FAILED, CellState.DIVERGED)  # a result exists: kept unless --retry-failed
# a run with only these exits OK (a stale cell is kept, like a cached one, and listed as stale)
ENDED_WELL = (CellState.DONE, CellState.CACHED, CellState.SKIPPED, CellState.STALE)
