"""Run cells as Ray tasks on a cluster of hosts: one study, many GPU machines (docs/scale-out.md).

Each cell is one Ray task that reserves what the cell needs (GPUs for a CUDA stack,
CPUs, memory, and an `sm_XY` custom resource when the stack supports only some GPU
architectures and the cluster's nodes advertise theirs). On the node where it lands
the task runs the cell with the executor that node would use by itself: local for a
cpu stack in this environment, docker (restricted to the GPU Ray assigned) otherwise.
Ray never runs inside the old images.

Run folders either live on a path every node mounts (`shared_fs`, the default: the
task writes straight into RUN_DIR and a retried cell resumes from its checkpoint),
or the head sends the folder to the task as tar bytes and writes back what the task
returns. Either way the head's results/ ends with the normal run-folder contract.

A task whose worker or node dies is launched again (up to `retries` times, each
launch counted in the outcome's `attempts`, which the scheduler adds to status.json's
`attempt`); a cell the trainer itself failed is not.
"""
from __future__ import annotations

import dataclasses
import io
import logging
import os
import shutil
import socket
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator

from harness.executors.base import Capabilities, Executor, ExecutorError, Outcome, Submission
from harness.runfolder import MARKER
from harness.states import CellState
from model.exitcodes import EXIT_TERMINATED

__all__ = ["RayExecutor", "RaySettings", "arch_resource", "pack_folder", "unpack_folder"]

log = logging.getLogger("repro")
_INSTALL_HINT = "ray is not installed in this environment: pip install '.[ray]'"
_HARNESS_FILES = ("status.json", MARKER)   # the head's copies are authoritative: never sent back
_TASK_POLL_S = 0.05                         # how often a task checks its trainer


@dataclasses.dataclass(frozen=True)
class RaySettings:
    address: str = ""            # cluster to join (HOST:PORT or "auto"); "" = RAY_ADDRESS, else a local Ray
    gpus_per_cell: float = 1.0   # GPUs a CUDA stack's cell reserves (cpu stacks reserve none)
    cpus_per_cell: float = 1.0   # CPUs every cell reserves
    memory_gb: float = 0.0       # memory a cell reserves, GiB; 0 = reserve none
    shared_fs: bool = True       # run folders sit on a path every node mounts; False = tar them back
    retries: int = 2             # relaunches of a cell whose worker or node died (0 = none)
    connect_timeout_s: float = 5.0  # an address that does not answer a TCP connect in this long is refused
    cancel_grace_s: float = 30.0    # Ctrl-C: seconds to let cancelled trainers checkpoint

    @classmethod
    def from_env(cls) -> "RaySettings":
        """Defaults, then REPRO_RAY_{ADDRESS,GPUS,CPUS,MEMORY_GB,SHARED,RETRIES} (--address sets the first).

        Raises:
            ExecutorError: a variable that is not a number (one line naming it).
        """
        env = os.environ
        return cls(address=env.get("REPRO_RAY_ADDRESS", cls.address),
                   gpus_per_cell=_env_number("REPRO_RAY_GPUS", cls.gpus_per_cell, float),
                   cpus_per_cell=_env_number("REPRO_RAY_CPUS", cls.cpus_per_cell, float),
                   memory_gb=_env_number("REPRO_RAY_MEMORY_GB", cls.memory_gb, float),
                   shared_fs=env.get("REPRO_RAY_SHARED", "1").lower() not in ("0", "false", "no"),
                   retries=_env_number("REPRO_RAY_RETRIES", cls.retries, int))


@dataclasses.dataclass
class _Task:
    """Executor-private state of one submission (Submission.handle)."""
    cell: object
    launches: int = 0            # launches in this run (retries included)
    ref: object = None           # the task's ObjectRefGenerator
    node: str = ""               # Ray node id where the current launch runs ("" until it reports)
    host: str = ""


def arch_resource(capabilities: Iterable[str], cluster: dict) -> str | None:
    """The `sm_XY` resource a cell must reserve so it lands on a GPU its stack supports.

    Nodes advertise their GPUs' architecture as a custom resource (`ray start
    --resources '{"sm_80": 8}'`). Ray has no "any of", so a cell takes the supported
    architecture the cluster has most of. Returns None when the stack names no
    capabilities or the cluster advertises no `sm_*` resource at all (the docker
    executor's GPU probe then still refuses an image that cannot drive the GPU).

    Raises:
        ExecutorError: the cluster advertises architectures, none of them supported.
    """
    wanted = ["sm_" + c.replace(".", "") for c in capabilities]
    offered = {k: v for k, v in cluster.items() if k.startswith("sm_")}
    if not wanted or not offered:
        return None
    present = [w for w in wanted if offered.get(w, 0) > 0]
    if not present:
        raise ExecutorError("no Ray node offers %s (the cluster has %s); start a node with a supported GPU "
                            "and `--resources '{\"%s\": N}'`" % ("/".join(wanted), ", ".join(sorted(offered)),
                                                                wanted[0]))
    return max(present, key=lambda w: offered[w])


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


class RayExecutor(Executor):
    name = "ray"
    # the cluster, not this host, decides GPUs and images: feasibility asks the nodes at run time
    capabilities = Capabilities(isolated_fs=False, gpu=True, async_submit=True, needs_image=False, remote=True)

    def __init__(self, settings: RaySettings = RaySettings(), threads: int = 0):
        """Join (or start) the Ray cluster.

        Raises:
            ExecutorError: ray is not installed, or the address does not answer (one line each).
        """
        self.settings, self.threads = settings, threads
        self._ray = _import_ray()
        self._owns_connection = not self._ray.is_initialized()
        if self._owns_connection:
            _connect(self._ray, settings)
        self._remote = self._ray.remote(max_retries=0)(_cell_task)  # retries are ours: they count in `attempts`
        self._cluster = self._ray.cluster_resources()
        self.placements: dict = {}   # cell_id -> (host, node id) of the launch now running

    @classmethod
    def create(cls, *, threads: int = 0) -> "RayExecutor":
        return cls(RaySettings.from_env(), threads=threads)

    # -- the interface -------------------------------------------------------

    def submit(self, cell, run_dir: Path) -> Submission:
        sub = Submission(cell_id=cell.cell_id, run_dir=Path(run_dir).resolve(), handle=_Task(cell=cell))
        try:
            self._launch(sub)
        except ExecutorError as e:
            sub.outcome = Outcome(exit_code=None, reason=str(e), state=CellState.FAILED)
        return sub

    def poll(self, subs: Iterable[Submission]) -> Iterator[Submission]:
        for sub in subs:
            if sub.outcome is None:
                self._advance(sub)
            if sub.outcome is None:
                yield sub

    def cancel(self, subs: Iterable[Submission]) -> None:
        """Interrupt the tasks (their trainers get SIGTERM and checkpoint), wait for them a while."""
        live = [s for s in subs if s.outcome is None and s.handle.ref is not None]
        for sub in live:
            self._ray.cancel(sub.handle.ref)
        # completed() is ready once the task (and its trainer's checkpoint) ended, not at cancel time
        refs = [s.handle.ref.completed() for s in live]
        ended = set()
        if refs:
            ended = set(self._ray.wait(refs, num_returns=len(refs), timeout=self.settings.cancel_grace_s)[0])
        for sub, ref in zip(live, refs):
            self.placements.pop(sub.cell_id, None)
            # like a local trainer stopped by SIGTERM: interrupted, resumable from its checkpoint
            sub.outcome = Outcome(exit_code=EXIT_TERMINATED if ref in ended else None,
                                  reason="" if ref in ended else "cancelled; the task did not end in %gs"
                                  % self.settings.cancel_grace_s)

    def close(self) -> None:
        if self._owns_connection and self._ray.is_initialized():
            self._ray.shutdown()

    # -- lifecycle -----------------------------------------------------------

    def _launch(self, sub: Submission) -> None:
        task: _Task = sub.handle
        cell = task.cell
        gpus = self.settings.gpus_per_cell if cell.stack.needs_gpu else 0
        resources = {}
        if gpus:
            arch = arch_resource(cell.stack.gpu_capabilities, self._cluster)
            if arch:
                resources[arch] = gpus
        options = dict(num_gpus=gpus, num_cpus=self.settings.cpus_per_cell, resources=resources,
                       num_returns="streaming")
        if self.settings.memory_gb:
            options["memory"] = int(self.settings.memory_gb * 2 ** 30)
        payload = None if self.settings.shared_fs else pack_folder(sub.run_dir, skip=_HARNESS_FILES)
        task.ref = self._remote.options(**options).remote(cell, str(sub.run_dir), self.threads, payload)
        task.launches += 1
        task.node = task.host = ""
        sub.external_id = task.ref.completed().task_id().hex()   # the Ray task id (`ray list tasks`)

    def _advance(self, sub: Submission) -> None:
        """Read what the task has yielded so far: its placement, then its result."""
        task: _Task = sub.handle
        while sub.outcome is None:
            ready, _ = self._ray.wait([task.ref], timeout=0)
            if not ready:
                return
            try:
                item = self._ray.get(next(task.ref))
            except StopIteration:
                sub.outcome = Outcome(None, "the Ray task ended without a result", CellState.FAILED)
            except self._ray.exceptions.RayTaskError as e:  # our task code raised: a bug, not a lost node
                sub.outcome = Outcome(None, "Ray task failed: %s" % _last_line(e), CellState.FAILED)
            except self._ray.exceptions.RayError as e:      # worker or node died, object lost
                self._relaunch_or_fail(sub, e)
                return
            else:
                self._take(sub, item)

    def _take(self, sub: Submission, item: dict) -> None:
        task: _Task = sub.handle
        if "node" in item:
            task.node, task.host = item["node"], item["host"]
            self.placements[sub.cell_id] = (task.host, task.node)
            here = sum(1 for h, n in self.placements.values() if n == task.node)
            log.info("ray      %s  %s  on %s (node %s, %d cell(s) running there)",
                     sub.cell_id, task.cell.name, task.host, task.node[:8], here)
            return
        self.placements.pop(sub.cell_id, None)
        if item.get("folder") is not None:
            unpack_folder(item["folder"], sub.run_dir)
        sub.outcome = Outcome(**dict(item["outcome"], attempts=task.launches))

    def _relaunch_or_fail(self, sub: Submission, error: Exception) -> None:
        task: _Task = sub.handle
        self.placements.pop(sub.cell_id, None)
        where = "on %s (node %s)" % (task.host, task.node[:8]) if task.node else "before it reported a node"
        if task.launches > self.settings.retries:
            sub.outcome = Outcome(None, "Ray lost the cell %s %d time(s), last: %s" % (
                where, task.launches, _last_line(error)), CellState.FAILED, attempts=task.launches)
            return
        log.warning("ray: %s lost %s (%s); launching it again (%d of %d retries)", task.cell.name, where,
                    type(error).__name__, task.launches, self.settings.retries)
        self._launch(sub)


# ---------------------------------------------------------------------------
# the task (runs on a worker node)

def _cell_task(cell, run_dir: str, threads: int, payload):
    """Yield {node, host} as soon as it starts, then {outcome, folder} when the cell ended."""
    import ray
    yield {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname()}
    scratch = None
    work = Path(run_dir)
    if payload is not None:  # no shared filesystem: run in a scratch copy of the head's folder
        scratch = Path(tempfile.mkdtemp(prefix="repro-ray-"))
        work = scratch / work.name
        unpack_folder(payload, work)
    try:
        outcome = _run_here(cell, work, threads, [str(g) for g in ray.get_gpu_ids()])
        folder = pack_folder(work, skip=_HARNESS_FILES) if scratch else None
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    yield {"outcome": dataclasses.asdict(outcome), "folder": folder}


def _run_here(cell, run_dir: Path, threads: int, gpus: list) -> Outcome:
    """Run the cell on this node with its own executor; Ctrl-C (ray.cancel) stops it resumably."""
    executor = _node_executor(cell, threads, gpus)
    try:
        sub = executor.submit(cell, run_dir)
        try:
            while sub.outcome is None and list(executor.poll([sub])):
                time.sleep(_TASK_POLL_S)
        except BaseException:  # ray.cancel raises KeyboardInterrupt here
            executor.cancel([sub])
            raise
    finally:
        executor.close()
    return sub.outcome


def _node_executor(cell, threads: int, gpus: list) -> Executor:
    """local for a cpu stack of this environment, else docker on the GPU(s) Ray assigned."""
    if cell.stack.image == "local" and not cell.stack.needs_gpu:
        from harness.executors.local import LocalExecutor, LocalSettings
        return LocalExecutor(LocalSettings(threads=threads))
    from harness.executors.docker import DockerExecutor, DockerSettings
    return DockerExecutor(dataclasses.replace(DockerSettings.from_env(threads), gpus=tuple(gpus)))


# ---------------------------------------------------------------------------
# helpers

def _import_ray():
    try:
        import ray
    except ImportError:
        raise ExecutorError(_INSTALL_HINT) from None
    return ray


def _connect(ray, settings: RaySettings) -> None:
    address = settings.address or os.environ.get("RAY_ADDRESS", "")
    if address and address not in ("auto", "local") and "://" not in address:
        _check_reachable(address, settings.connect_timeout_s)
    try:
        ray.init(address=address or None, logging_level=logging.WARNING, log_to_driver=False,
                 configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ExecutorError("cannot join the Ray cluster at %s: %s (is `ray start --head` running there?)"
                            % (address or "this host", _last_line(e))) from None


def _check_reachable(address: str, timeout_s: float) -> None:
    """Refuse at once, in one line, an address nothing listens on (ray.init would retry for minutes)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError("Ray address %r: expected HOST:PORT (e.g. 10.0.0.1:6379) or 'auto'" % address)
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ExecutorError("cannot reach the Ray cluster at %s: %s; start it with `ray start --head "
                            "--port %s` there, or fix --address" % (address, e.strerror or e, port)) from None


def _env_number(name: str, default, kind):
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = kind(value)
    except ValueError:
        number = -1
    if number < 0:
        raise ExecutorError("%s=%r: expected %s >= 0 (unset it for the default, %s)" % (
            name, value, "a whole number" if kind is int else "a number", default))
    return number


def _last_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[-1] if text else type(error).__name__
