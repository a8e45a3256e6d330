"""What runs on a cluster node, shared by every executor that sends cells to other hosts.

A cluster executor (Ray here; Slurm through submitit would be another) only places a
cell on a node and carries its outcome back. On the node, `run_cell` runs it the way
that node would by itself: the local executor for a cpu stack of this environment,
docker (restricted to the GPUs the cluster assigned) otherwise. Without a shared
filesystem the head sends the run folder as tar bytes (`pack_folder`) and gets back
what the cell wrote, never the harness-owned files, whose head copies are authoritative.
"""
import dataclasses
import io
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Iterable, Optional, Sequence, Tuple

from harness.executors.base import Executor, Outcome
from harness.runfolder import MARKER

__all__ = ["HARNESS_FILES", "run_cell", "node_executor", "pack_folder", "unpack_folder"]

HARNESS_FILES = ("status.json", MARKER)   # the head's copies are authoritative: never sent back
_POLL_S = 0.05                             # how often the node checks its trainer


def run_cell(cell, run_dir: Path, threads: int, gpus: Sequence[str],
             payload: Optional[bytes] = None) -> Tuple[dict, Optional[bytes]]:
    """Run one cell here; returns (its Outcome as a dict, the folder as tar bytes when `payload` was given).

    `payload`: the head's run folder as tar bytes (no shared filesystem): the cell runs in
    a scratch copy, and what it wrote comes back. Ctrl-C (a cluster's cancel) stops the
    trainer resumably and propagates.
    """
    if payload is None:
        return dataclasses.asdict(_run_here(cell, Path(run_dir), threads, gpus)), None
    scratch = Path(tempfile.mkdtemp(prefix="repro-node-"))
    try:
        work = scratch / Path(run_dir).name
        unpack_folder(payload, work)
        outcome = _run_here(cell, work, threads, gpus)
        return dataclasses.asdict(outcome), pack_folder(work, skip=HARNESS_FILES)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def node_executor(cell, threads: int, gpus: Sequence[str]) -> Executor:
    """local for a cpu stack of this environment, else docker on the given GPU(s)."""
    if cell.stack.image == "local" and not cell.stack.needs_gpu:
        from harness.executors.local import LocalExecutor
        return LocalExecutor(threads=threads)
    from harness.executors.docker import DockerExecutor
    from harness.executors.settings import load_settings
    settings = load_settings("docker", DockerExecutor.settings_model, {"gpus": tuple(gpus)})
    return DockerExecutor(settings, threads=threads)


def _run_here(cell, run_dir: Path, threads: int, gpus: Sequence[str]) -> Outcome:
    executor = node_executor(cell, threads, gpus)
    try:
        sub = executor.submit(cell, run_dir)
        try:
            while sub.outcome is None and list(executor.poll([sub])):
                time.sleep(_POLL_S)
        except BaseException:  # a cluster's cancel raises KeyboardInterrupt here
            executor.cancel([sub])
            raise
    finally:
        executor.close()
    return sub.outcome


def pack_folder(folder: Path, skip: Iterable[str] = ()) -> bytes:
    """A run folder as gzip'd tar bytes (names relative to the folder), leaving out `skip`."""
    skip = set(skip)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(Path(folder).rglob("*")):
            rel = path.relative_to(folder)
            if path.is_file() and rel.parts[0] not in skip:
                tar.add(path, arcname=str(rel), recursive=False)
    return buf.getvalue()


def unpack_folder(data: bytes, folder: Path) -> None:
    """Write tar bytes from pack_folder into `folder` (files replaced, others kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(folder, filter="data")
