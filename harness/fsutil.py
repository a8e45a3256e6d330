"""Crash-safe file writes: a reader sees the old file or the new one, never half of one."""
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Tuple

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "read_json_object"]


def atomic_write(path, data, durable: bool = True) -> Path:
    """Write bytes or text to `path` via temp file + fsync + os.replace (+ fsync of the folder).

    durable=False skips both fsyncs (still atomic for readers): for files regenerated at will,
    such as report pages, where 10,000 fsyncs would cost more than the pages.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # never leave temp files behind, even on Ctrl-C
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_dir(path.parent)
    return path


def atomic_write_text(path: Path, text: str) -> None:
    """Atomically write `text` (see atomic_write)."""
    atomic_write(path, text)


def atomic_write_json(path: Path, data: Any) -> None:
    """Atomically write `data` as indented, key-sorted JSON."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json_object(path: Path) -> Tuple[Any, str]:
    """A JSON object file as (dict, "") or (None, why): missing, empty, torn, not an object; never raises."""
    value, why = _read_json_why(path)
    if not why and not isinstance(value, dict):
        return None, "not a JSON object"
    return value, why


def _read_json_why(path: Path) -> Tuple[Any, str]:
    try:
        with open(path, "rb") as fh:   # a str or a Path (a Path per file costs at 10,000 folders)
            data = fh.read()
    except (FileNotFoundError, NotADirectoryError):
        return None, "missing"
    except OSError as exc:
        return None, "unreadable (%s)" % exc.strerror
    if not data.strip():
        return None, "empty"
    try:
        return json.loads(data), ""
    except ValueError:
        return None, "not valid JSON (torn write?)"


def _fsync_dir(folder: Path) -> None:
    # the rename itself is only durable once the directory entry is flushed
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
