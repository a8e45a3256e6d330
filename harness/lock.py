"""One `repro run` per results folder: an fcntl lock on results/.lock.

The lock file also records who holds it (pid, host, start time) so the refusal can
name the holder, and `repro status` can tell a live run from a crashed one.
The kernel drops the lock when the holder dies, even on `kill -9`.
"""
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Optional

__all__ = ["ResultsLock", "LockedError", "holder", "held_by_live_process"]

LOCK_NAME = ".lock"


class LockedError(RuntimeError):
    """Another process holds the results folder; str() is one line with what to do."""


class ResultsLock:
    """Context manager: exclusive, non-blocking lock of a results folder."""

    def __init__(self, results: Path):
        self.path = Path(results) / LOCK_NAME
        self._fd: Optional[int] = None

    def __enter__(self) -> "ResultsLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            info = holder(self.path.parent) or {}
            raise LockedError(
                "%s is in use by another `repro run` (pid %s on %s, since %s); wait for it to "
                "finish, watch it with `repro status --results %s`, or use another --results folder"
                % (self.path.parent, info.get("pid", "?"), info.get("host", "?"),
                   info.get("started", "?"), self.path.parent))
        # write the holder in place: the file is ours now, and readers tolerate a partial one
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "started": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def holder(results: Path) -> Optional[dict]:
    """The recorded holder of the lock ({pid, host, started}), or None."""
    try:
        return json.loads((Path(results) / LOCK_NAME).read_text() or "null")
    except (OSError, ValueError):
        return None


def held_by_live_process(results: Path) -> bool:
    """True when a `repro run` on this host holds the folder now (no lock taken: no race)."""
    info = holder(results)
    if not info or info.get("host") != socket.gethostname():
        return bool(info)  # another host: trust the record
    try:
        os.kill(int(info["pid"]), 0)
    except (ProcessLookupError, ValueError, KeyError, TypeError):
        return False
    except PermissionError:
        return True
    return True
