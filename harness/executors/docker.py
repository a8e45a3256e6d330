"""Run each cell in its stack's Docker image: one container per cell.

The container sees the project source (read-only, at its host path, so every stack
runs the same model code), the cell's run folder (read-write, at its host path) and
the shared built-in data cache next to it (`RUN_DIR/../.data`, which is where the
trainer looks by default). It has no network, CPU/memory limits, runs as the
invoking user (files in the run folder are theirs, not root's) and, for a CUDA
stack, exactly one GPU taken from a pool of free ones, so N GPUs run N cells at once.

Before a GPU cell starts, a short probe in the same image on the same GPU records
probe.json (harness-owned: torch/CUDA/cuDNN, GPU name and capability, driver, TF32
flags) and runs a conv and a matmul: an image whose CUDA cannot drive the GPU (CUDA
9.2/10.0 on Ampere/Hopper, sm_80+) ends `skipped` with the reason instead of a fake
result. env.json stays the trainer's own fingerprint.
Containers drop every capability, cannot gain privileges and have a pids limit.

Containers are named `repro-<cell-id>`: a container left running by a killed
`repro run` is stopped (SIGTERM, so it checkpoints) before its cell is resumed.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Annotated, Iterable, Iterator, Optional, Tuple

import pydantic
import yaml

from harness import PROJECT_ROOT, host, images
from harness.executors.base import Capabilities, Executor, ExecutorError, Outcome, Submission, trainer_command, trainer_env
from harness.executors.settings import ExecutorSettings
from harness.fsutil import atomic_write_json
from harness.states import CellState
from model.config import is_host_path

__all__ = ["DockerExecutor", "DockerSettings", "GpuPool", "gpu_verdict", "PROBE_SCRIPT"]

_PROBE_MARK = "REPRO_PROBE "
PROBE_FILE = "probe.json"  # harness-owned; the trainer owns env.json

# Runs in every image, old ones included: Python 3.6+ and PyTorch 1.2 APIs only
# (newer flags are read with getattr). Prints one JSON line after _PROBE_MARK.
PROBE_SCRIPT = r'''
import json, platform, re
out = {"source": "docker-probe", "python": platform.python_version()}
try:
    import torch
    out.update(torch=torch.__version__, torch_cuda=torch.version.cuda,
               cudnn=torch.backends.cudnn.version(), cuda_available=torch.cuda.is_available())
    matmul = getattr(getattr(torch.backends, "cuda", None), "matmul", None)
    out["tf32_matmul"] = getattr(matmul, "allow_tf32", None)
    out["tf32_cudnn"] = getattr(torch.backends.cudnn, "allow_tf32", None)
    if out["cuda_available"]:
        out["gpu_name"] = torch.cuda.get_device_name(0)
        out["gpu_capability"] = "%d.%d" % torch.cuda.get_device_capability(0)
        try:  # "NVRM version: NVIDIA UNIX [Open] Kernel Module [for x86_64]  580.159.04  ..."
            with open("/proc/driver/nvidia/version") as f:
                out["driver"] = re.search(r"\s(\d+\.\d+(?:\.\d+)?)\s", f.readline()).group(1)
        except (IOError, AttributeError):
            out["driver"] = None
        try:
            x = torch.randn(2, 3, 16, 16, device="cuda")
            w = torch.randn(4, 3, 3, 3, device="cuda")
            y = torch.nn.functional.conv2d(x, w).sum() + torch.mm(x[0, 0], x[0, 1]).sum()
            torch.cuda.synchronize()
            out["gpu_ok"] = bool(torch.isfinite(y).item())
        except Exception as e:
            out["gpu_ok"], out["gpu_error"] = False, str(e).strip().splitlines()[0]
except Exception as e:
    out["error"] = "%s: %s" % (type(e).__name__, str(e).strip().splitlines()[0] if str(e).strip() else "")
print("REPRO_PROBE " + json.dumps(out))
'''


def _gpu_list(value):
    """REPRO_DOCKER_GPUS=0,2 -> ("0", "2")."""
    return tuple(g.strip() for g in value.split(",") if g.strip()) if isinstance(value, str) else value


class DockerSettings(ExecutorSettings):
    cpus: Optional[float] = pydantic.Field(
        None, ge=0, description="CPU limit per container, in cores (0: no limit; unset: the cell's share of the "
                                "host's cores, the threads the schedule gives it).")
    memory: str = pydantic.Field("8g", description="Memory limit per container, docker syntax ('': no limit).")
    shm_size: str = pydantic.Field("1g", description="Size of /dev/shm; DataLoader workers pass batches through it.")
    timeout_s: float = pydantic.Field(0.0, ge=0, description="Wall-clock seconds before a cell's container is "
                                                             "killed (0: none).")
    gpus: Optional[Annotated[Tuple[str, ...], pydantic.BeforeValidator(_gpu_list)]] = pydantic.Field(
        None, description="GPU indices cells may use, comma-separated (unset: every GPU nvidia-smi lists).")
    user: str = pydantic.Field("", description="uid:gid to run as ('': the invoking user's, so files stay theirs).")
    term_grace_s: float = pydantic.Field(30.0, ge=0, description="Cancel: seconds between SIGTERM (the trainer "
                                                                 "checkpoints) and SIGKILL.")
    probe_timeout_s: float = pydantic.Field(180.0, gt=0, description="Limit of the GPU probe container, seconds "
                                                                     "(first CUDA init can be slow).")
    pids_limit: int = pydantic.Field(4096, gt=0, description="Processes and threads per container.")


class GpuPool:
    """Free GPU indices; a GPU cell takes one for its whole life, so cells never share."""

    def __init__(self, ids: Iterable[str]):
        self.all = tuple(str(i) for i in ids)
        self._free = list(self.all)
        self._lock = threading.Lock()

    def acquire(self) -> str | None:
        """A free GPU index, or None when all are taken."""
        with self._lock:
            return self._free.pop(0) if self._free else None

    def release(self, gpu: str | None) -> None:
        if gpu is not None:
            with self._lock:
                if gpu not in self._free:
                    self._free.append(gpu)


def gpu_verdict(probe: dict) -> tuple[CellState | None, str]:
    """Decide from a probe record whether a GPU cell may run.

    Returns:
        (None, "") to run; (SKIPPED, why) when the image's CUDA cannot drive this
        GPU (never a fake result); (FAILED, why) when the probe itself broke.
    """
    if probe.get("error"):
        return CellState.FAILED, "GPU probe failed in the image: %s" % probe["error"]
    if not probe.get("cuda_available"):
        return CellState.FAILED, ("torch %s in the image sees no GPU (is the NVIDIA Container Toolkit "
                         "installed and the driver loaded?)" % probe.get("torch"))
    cuda, cap = probe.get("torch_cuda") or "?", probe.get("gpu_capability") or "0.0"
    where = "%s (sm_%s)" % (probe.get("gpu_name"), cap.replace(".", ""))
    if _major(cuda) < 11 and _major(cap) >= 8:
        # CUDA <= 10.x compilers know no sm_80+ and PyTorch 1.2 ships no PTX they could JIT
        return CellState.SKIPPED, ("CUDA %s build (PyTorch %s) cannot run on %s: CUDA 9.2/10.x have no "
                          "Ampere/Hopper kernels" % (cuda, probe.get("torch"), where))
    if not probe.get("gpu_ok"):
        err = probe.get("gpu_error") or "non-finite result"
        if "no kernel image" in err:
            return CellState.SKIPPED, "PyTorch %s (CUDA %s) has no kernels for %s: %s" % (
                probe.get("torch"), cuda, where, err)
        return CellState.FAILED, "GPU check failed on %s with CUDA %s: %s" % (where, cuda, err)
    return None, ""


def _major(version: str) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 0


@dataclasses.dataclass
class _Run:
    """Executor-private state of one submission (Submission.handle)."""
    image: images.ImageInfo
    needs_gpu: bool = False  # the cell's stack decides: one image may serve a CPU and a GPU stack
    gpu: str | None = None
    container: object = None
    log_thread: threading.Thread | None = None
    deadline: float | None = None


class DockerExecutor(Executor):
    name = "docker"
    capabilities = Capabilities(isolated_fs=True, gpu=True, async_submit=True, needs_image=True)
    settings_model = DockerSettings

    def __init__(self, settings: DockerSettings = DockerSettings(), client=None, threads: int = 0):
        """Connect to the engine (raises images.ImageError, one line, when none answers)."""
        self.settings, self.threads = settings, threads
        self.client = client or images.connect()
        self.gpus = GpuPool(settings.gpus if settings.gpus is not None else tuple(g.index for g in host.probe_gpus()))
        self._probes: dict = {}   # (image id, gpu) -> probe record; one probe per pair per run
        self._git_sha = _git_sha()

    @classmethod
    def create(cls, settings: DockerSettings = DockerSettings()) -> "DockerExecutor":
        try:
            return cls(settings)
        except images.ImageError as e:
            raise ExecutorError(str(e)) from None

    # -- the interface -------------------------------------------------------

    def submit(self, cell, run_dir: Path) -> Submission:
        """Start the cell's container, or queue it until a GPU is free; never blocks on training."""
        sub = Submission(cell_id=cell.cell_id, run_dir=Path(run_dir).resolve())
        stack = _image_stack(cell)
        try:
            sub.handle = _Run(image=images.require_image(self.client, stack),
                              needs_gpu=cell.stack.needs_gpu)
        except images.ImageError as e:  # fail fast: nothing to start
            sub.outcome = Outcome(exit_code=None, reason=str(e), state=CellState.FAILED)
            return sub
        self._try_start(sub)
        return sub

    def poll(self, subs: Iterable[Submission]) -> Iterator[Submission]:
        for sub in subs:
            if sub.outcome is None and sub.handle.container is None:
                self._try_start(sub)  # queued for a GPU
            elif sub.outcome is None:
                self._check(sub)
            if sub.outcome is None:
                yield sub

    def cancel(self, subs: Iterable[Submission]) -> None:
        """SIGTERM every running container (the trainer checkpoints and exits 143), then remove it."""
        live = [s for s in subs if s.outcome is None]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(live))) as pool:
            list(pool.map(self._stop, live))

    def close(self) -> None:
        self.client.close()

    # -- lifecycle -----------------------------------------------------------

    def _try_start(self, sub: Submission) -> None:
        run: _Run = sub.handle
        if run.needs_gpu:
            if not self.gpus.all:
                sub.outcome = Outcome(None, "stack %s needs a GPU and this host has none visible "
                                            "(nvidia-smi lists none)" % run.image.stack, CellState.FAILED)
                return
            run.gpu = self.gpus.acquire()
            if run.gpu is None:
                return  # every GPU is busy: poll() tries again
            state, reason = gpu_verdict(self._probe(run.image, run.gpu, sub.run_dir))
            if state:
                self.gpus.release(run.gpu)
                sub.outcome = Outcome(None, reason, state)
                return
        self._retire_stale(sub.cell_id)
        run.container = self.client.containers.run(
            run.image.name, trainer_command(sub.run_dir, python="python3"), detach=True,
            name=_container_name(sub.cell_id), labels={"org.repro.cell": sub.cell_id},
            **self._container_kwargs(run, _mounts(sub.run_dir)))
        sub.external_id = run.container.id
        run.log_thread = _follow_logs(run.container, sub.run_dir / "stdout.log", run.image)
        if self.settings.timeout_s:
            run.deadline = time.monotonic() + self.settings.timeout_s

    def _check(self, sub: Submission) -> None:
        """Set sub.outcome if the container ended or ran past its timeout."""
        import docker
        run: _Run = sub.handle
        try:
            run.container.reload()
        except docker.errors.NotFound:
            self._finish(sub, Outcome(None, "container %s vanished (removed outside repro)"
                                            % sub.external_id[:12], CellState.FAILED))
            return
        state = run.container.attrs["State"]
        if state["Status"] in ("exited", "dead"):
            self._finish(sub, _exit_outcome(state, self.settings.memory))
        elif run.deadline is not None and time.monotonic() > run.deadline:
            run.container.kill()
            run.container.wait(timeout=60)
            self._finish(sub, Outcome(137, "timeout after %gs" % self.settings.timeout_s, CellState.FAILED))

    def _stop(self, sub: Submission) -> None:
        run: _Run = sub.handle
        if run.container is None:
            self.gpus.release(run.gpu)
            sub.outcome = Outcome(None, "cancelled before it started")
            return
        run.container.stop(timeout=int(self.settings.term_grace_s))
        code = run.container.wait(timeout=60).get("StatusCode")
        self._finish(sub, Outcome(exit_code=code))

    def _finish(self, sub: Submission, outcome: Outcome) -> None:
        """Drain the log, give back the GPU, remove the container, record the outcome."""
        import docker
        run: _Run = sub.handle
        if run.log_thread is not None:
            run.log_thread.join(timeout=30)  # the stream ends with the container
        self.gpus.release(run.gpu)
        try:
            run.container.remove(force=True)
        except docker.errors.NotFound:
            pass
        sub.outcome = outcome

    def _retire_stale(self, cell_id: str) -> None:
        """Stop a container of this cell left by a killed `repro run` before resuming it."""
        import docker
        try:
            old = self.client.containers.get(_container_name(cell_id))
        except docker.errors.NotFound:
            return
        old.stop(timeout=int(self.settings.term_grace_s))
        old.remove(force=True)

    # -- GPU probe -----------------------------------------------------------

    def _probe(self, image: images.ImageInfo, gpu: str, run_dir: Path) -> dict:
        """Probe (image, GPU) once per executor; the record is written as the harness-owned probe.json."""
        key = (image.id, gpu)
        if key not in self._probes:
            self._probes[key] = self._run_probe(image, gpu)
        record = dict(self._probes[key], image=image.name, image_digest=image.id)
        atomic_write_json(run_dir / PROBE_FILE, record)
        return record

    def _run_probe(self, image: images.ImageInfo, gpu: str) -> dict:
        run = _Run(image=image, gpu=gpu)
        container = self.client.containers.run(image.name, ["python3", "-c", PROBE_SCRIPT],
                                               detach=True, **self._container_kwargs(run, {}))
        try:
            container.wait(timeout=self.settings.probe_timeout_s)
            logs = container.logs().decode("utf-8", "replace")
        except Exception as e:  # requests' ReadTimeout et al.: the probe hung
            return {"error": "probe did not finish in %gs (%s)" % (self.settings.probe_timeout_s,
                                                                   type(e).__name__)}
        finally:
            container.remove(force=True)
        for line in logs.splitlines():
            if line.startswith(_PROBE_MARK):
                return json.loads(line[len(_PROBE_MARK):])
        tail = [l for l in logs.splitlines() if l.strip()] or ["no output"]
        return {"error": "probe printed no record: %s" % tail[-1].strip()}

    # -- container options ---------------------------------------------------

    def _container_kwargs(self, run: _Run, volumes: dict) -> dict:
        """Options shared by the trainer and probe containers."""
        import docker
        s = self.settings
        cpus = self.threads if s.cpus is None else s.cpus   # unset: the cell's share of the host
        threads = str(max(1, int(cpus))) if cpus else "0"
        env = {"HOME": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib", "XDG_CACHE_HOME": "/tmp/.cache",
               "TORCH_HOME": "/tmp/torch", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONPATH": str(PROJECT_ROOT), "REPRO_IMAGE": run.image.name,
               "REPRO_IMAGE_DIGEST": run.image.id, "REPRO_GIT_SHA": self._git_sha, **trainer_env()}
        if cpus:  # torch sizes its pool from the host's cores, not the CPU quota
            env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        kwargs = dict(user=s.user or "%d:%d" % (os.getuid(), os.getgid()), network_mode="none",
                      environment=env, working_dir=str(PROJECT_ROOT), shm_size=s.shm_size,
                      init=True,  # docker-init forwards SIGTERM and reaps DataLoader workers
                      volumes=volumes,
                      # training needs no privilege: no capabilities, no setuid gain, a fork-bomb cap
                      cap_drop=["ALL"], security_opt=["no-new-privileges"], pids_limit=s.pids_limit)
        if cpus:
            kwargs["nano_cpus"] = int(cpus * 1e9)
        if s.memory:
            kwargs["mem_limit"] = s.memory
        if run.gpu is not None:
            kwargs["device_requests"] = [docker.types.DeviceRequest(device_ids=[run.gpu],
                                                                    capabilities=[["gpu"]])]
        return kwargs


# ---------------------------------------------------------------------------
# helpers

def _image_stack(cell) -> str:
    """The docker/<stack> an image comes from: the stack's Dockerfile folder, else its name."""
    return images.image_stack_of(cell.stack)


def _container_name(cell_id: str) -> str:
    return "repro-%s" % cell_id


def _mounts(run_dir: Path) -> dict:
    """Bind mounts {host path: {bind, mode}}, each at its host path so paths in logs match.

    Source read-only; run folder and the built-in data cache read-write; paths the
    cell's config names (data, VGG weights, author code) as the trainer needs them;
    `vgg_weights: image` is the image's own file, nothing to mount.
    """
    cfg = yaml.safe_load((run_dir / "cell.yaml").read_text()) or {}
    rw = [run_dir]
    ro = [PROJECT_ROOT]
    builtin = cfg.get("dataset", "builtin") == "builtin"
    data_dir = _config_path(cfg.get("data_dir"))
    if data_dir is None and builtin:
        data_dir = run_dir.parent / ".data"  # the trainer's default cache, shared by cells
    if data_dir is not None:
        if builtin:
            data_dir.mkdir(parents=True, exist_ok=True)  # created as the invoking user
        (rw if builtin else ro).append(data_dir)
    for key in ("vgg_weights", "author_code_dir"):
        if is_host_path(key, cfg.get(key)) and _config_path(cfg.get(key)) is not None:
            ro.append(_config_path(cfg.get(key)))
    if cfg.get("impl") == "author" and not cfg.get("author_code_dir"):
        ro.append(PROJECT_ROOT.parent / "shared")  # the trainer's default ../shared/third_party/unsup3d
    volumes = {str(p): {"bind": str(p), "mode": "ro"} for p in ro if p.exists()}
    volumes.update({str(p): {"bind": str(p), "mode": "rw"} for p in rw})
    return volumes


def _config_path(value) -> Path | None:
    """A config path made absolute the way the trainer sees it (cwd = project root)."""
    if not value:
        return None
    return (PROJECT_ROOT / os.path.expanduser(str(value))).resolve()


def _follow_logs(container, path: Path, image: images.ImageInfo) -> threading.Thread:
    """Append the container's stdout+stderr to path as it comes (a daemon thread)."""
    def pump():
        with open(path, "ab") as log:
            log.write(("--- repro docker: %s (%s) container %s ---\n"
                       % (image.name, image.id[:19], container.id[:12])).encode())
            try:
                for chunk in container.logs(stream=True, follow=True):
                    log.write(chunk)
                    log.flush()  # `repro status` tails this file while the cell runs
            except Exception as e:  # engine connection lost: say so in the log, the poll decides
                log.write(("--- repro docker: log stream ended: %s ---\n" % e).encode())
    thread = threading.Thread(target=pump, name="logs-%s" % container.id[:12], daemon=True)
    thread.start()
    return thread


def _exit_outcome(state: dict, memory: str) -> Outcome:
    """Outcome of an exited container; the harness maps exit codes (and adds the log tail)."""
    if state.get("OOMKilled"):
        return Outcome(state.get("ExitCode"), "out of memory: the container limit is %s "
                       "(raise it with --docker-memory or REPRO_DOCKER_MEMORY)" % (memory or "unset"), CellState.FAILED)
    return Outcome(exit_code=state.get("ExitCode"))


def _git_sha() -> str:
    """The project's commit, passed to the trainer: the images have no git."""
    try:
        out = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""
