"""Crash-safe run-folder files: atomic JSON, append-only JSONL that survives a kill."""
import json
import os

__all__ = ["write_bytes", "write_json", "write_text", "JsonlLog", "read_jsonl"]


def write_bytes(path, data):
    """Write via a temp file + fsync + rename: readers see the old or the new file, never half."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_text(path, text):
    write_bytes(path, text.encode("utf-8"))


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_jsonl(path):
    """Records of a JSONL file; a torn (unparseable) last line is dropped."""
    records = []
    if not os.path.isfile(path):
        return records
    with open(path) as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except ValueError:
                break  # a torn line can only be the last one written
    return records


class JsonlLog(object):
    """train.jsonl: one flushed line per record; fsync at checkpoints."""

    def __init__(self, path):
        self.path = path
        self._file = open(path, "a")

    def truncate_after(self, key, value):
        """Keep only complete records with record[key] < value (a resume redoes the rest)."""
        kept = [r for r in read_jsonl(self.path) if r.get(key, -1) < value]
        self._file.close()
        write_text(self.path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))
        self._file = open(self.path, "a")

    def append(self, record):
        self._file.write(json.dumps(record, sort_keys=True) + "\n")
        self._file.flush()

    def sync(self):
        os.fsync(self._file.fileno())

    def close(self):
        self._file.close()
