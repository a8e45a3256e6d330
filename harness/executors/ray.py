"""Run cells as Ray tasks on a cluster of hosts: one study, many GPU machines (docs/scale-out.md).

Each cell is one Ray task that reserves what the cell needs (GPUs for a CUDA stack,
CPUs, memory, and an `sm_XY` custom resource when the stack supports only some GPU
architectures and the cluster's nodes advertise theirs). On the node where it lands
the task runs the cell with the executor that node would use by itself: local for a
cpu stack in this environment, docker (restricted to the GPU Ray assigned) otherwise.
Ray never runs inside the old images.

Run folders either live on a path every node mounts (`shared`, the default: the
task writes straight into RUN_DIR and a retried cell resumes from its checkpoint),
or the head sends the folder to the task as tar bytes and writes back what the task
returns (harness/executors/node.py). Either way the head's results/ ends with the normal
run-folder contract.

A task whose worker or node dies is launched again (up to `retries` times, each
launch counted in the outcome's `attempts`, which the scheduler adds to status.json's
`attempt`); a cell the trainer itself failed is not.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import socket
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import pydantic

from harness.executors import node
from harness.executors.base import Capabilities, Executor, ExecutorError, Outcome, Schedule, Submission
from harness.executors.settings import ExecutorSettings
from harness.states import CellState
from model.exitcodes import EXIT_TERMINATED

__all__ = ["RayExecutor", "RaySettings", "arch_resource"]

log = logging.getLogger("repro")
_INSTALL_HINT = "ray is not installed in this environment: pip install '.[ray]'"


class RaySettings(ExecutorSettings):
    address: str = pydantic.Field("", description="Ray cluster to join, HOST:PORT or 'auto' ('': RAY_ADDRESS, "
                                                  "else a Ray on this host).")
    gpus: float = pydantic.Field(1.0, ge=0, description="GPUs a CUDA stack's cell reserves (cpu stacks reserve none).")
    cpus: float = pydantic.Field(1.0, gt=0, description="CPUs every cell reserves; also its torch threads.")
    memory_gb: float = pydantic.Field(0.0, ge=0, description="Memory a cell reserves, GiB (0: none).")
    shared: bool = pydantic.Field(True, description="Run folders sit on a path every node mounts (false: sent to "
                                                    "the node and back as tar bytes).")
    retries: int = pydantic.Field(2, ge=0, description="Relaunches of a cell whose worker or node died.")
    connect_timeout_s: float = pydantic.Field(5.0, gt=0, description="An address that does not answer a TCP "
                                                                     "connect in this long is refused.")
    cancel_grace_s: float = pydantic.Field(30.0, ge=0, description="Ctrl-C: seconds to let cancelled trainers "
                                                                   "checkpoint.")


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


class RayExecutor(Executor):
    name = "ray"
    # the cluster, not this host, decides GPUs and images: feasibility asks the nodes at run time
    capabilities = Capabilities(isolated_fs=False, gpu=True, async_submit=True, needs_image=False, remote=True)
    settings_model = RaySettings

    def __init__(self, settings: RaySettings = RaySettings()):
        """Join (or start) the Ray cluster.

        Raises:
            ExecutorError: ray is not installed, or the address does not answer (one line each).
        """
        self.settings = settings
        self.threads = max(1, int(settings.cpus))   # a cell's torch threads: the CPUs it reserves
        self._ray = _import_ray()
        self._owns_connection = not self._ray.is_initialized()
        if self._owns_connection:
            _connect(self._ray, settings)
        self._remote = self._ray.remote(max_retries=0)(_cell_task)  # retries are ours: they count in `attempts`
        self._cluster = self._ray.cluster_resources()
        self.placements: dict = {}   # cell_id -> (host, node id) of the launch now running

    def schedule(self, cells: Sequence, cores: int, jobs: Optional[int] = None) -> Schedule:
        """Sized by the cluster, not by this head: as many cells at once as its CPUs hold (Ray queues
        GPU cells until a GPU is free), each with the threads of the CPUs it reserves."""
        held = int(self._cluster.get("CPU", 1) // self.settings.cpus)
        return Schedule(jobs=jobs or max(1, held), threads=self.threads)

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
        gpus = self.settings.gpus if cell.stack.needs_gpu else 0
        resources = {}
        if gpus:
            arch = arch_resource(cell.stack.gpu_capabilities, self._cluster)
            if arch:
                resources[arch] = gpus
        options = dict(num_gpus=gpus, num_cpus=self.settings.cpus, resources=resources,
                       num_returns="streaming")
        if self.settings.memory_gb:
            options["memory"] = int(self.settings.memory_gb * 2 ** 30)
        payload = None if self.settings.shared else node.pack_folder(sub.run_dir, skip=node.HARNESS_FILES)
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
            node.unpack_folder(item["folder"], sub.run_dir)
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
    outcome, folder = node.run_cell(cell, Path(run_dir), threads, [str(g) for g in ray.get_gpu_ids()], payload)
    yield {"outcome": outcome, "folder": folder}


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
                            "--port %s` there, or fix --ray-address" % (address, e.strerror or e, port)) from None


def _last_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[-1] if text else type(error).__name__
