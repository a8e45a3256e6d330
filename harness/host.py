"""What this machine offers a cell: GPUs (and their compute capability), a Docker daemon, cores.

Probed once per command with short timeouts; never imports torch (slow, and the
harness must not depend on the trainer's environment).
"""
import dataclasses
import os
import shutil
import socket
import subprocess
from typing import Dict, Optional, Tuple

__all__ = ["Gpu", "Host", "probe", "probe_gpus", "built_images", "usable_cores"]


@dataclasses.dataclass(frozen=True)
class Gpu:
    name: str
    capability: str   # "8.6"
    index: str = ""   # nvidia-smi's index, what --gpus device= takes


@dataclasses.dataclass(frozen=True)
class Host:
    hostname: str
    cores: int
    gpus: Tuple[Gpu, ...] = ()
    docker: bool = False      # a Docker daemon answers
    docker_why: str = ""      # why not, one line
    images: Optional[Dict[str, str]] = None  # stack images built here: repro-unsup3d tag -> image id; None: not looked


def probe() -> Host:
    """Look at this machine (nvidia-smi, docker info, CPU count)."""
    docker, why = _docker()
    return Host(hostname=socket.gethostname(), cores=usable_cores(), gpus=probe_gpus(), docker=docker, docker_why=why,
                images=built_images() if docker else None)


def usable_cores() -> int:
    """The CPUs this process may use (taskset / cgroup cpusets), not the whole box."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def probe_gpus() -> Tuple[Gpu, ...]:
    """The GPUs nvidia-smi lists (none without nvidia-smi): the one GPU probe the harness has."""
    if not shutil.which("nvidia-smi"):
        return ()
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,name,compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError):
        return ()
    if out.returncode != 0:
        return ()
    gpus = []
    for line in out.stdout.splitlines():
        index, _, rest = line.partition(",")
        parts = [p.strip() for p in rest.rsplit(",", 1)]
        if len(parts) == 2:
            gpus.append(Gpu(name=parts[0], capability=parts[1], index=index.strip()))
    return tuple(gpus)


def _docker() -> Tuple[bool, str]:
    if not shutil.which("docker"):
        return False, "the docker CLI is not installed"
    try:
        out = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        return False, "docker did not answer (%s)" % e.__class__.__name__
    if out.returncode != 0:
        return False, "no Docker daemon answers (start dockerd, or check DOCKER_HOST)"
    return True, ""


def built_images() -> Optional[Dict[str, str]]:
    """Tag -> image id (sha256:..., what env.json records) of the repro-unsup3d images the engine
    has; None when it cannot say."""
    if not shutil.which("docker"):
        return None
    try:
        out = subprocess.run(["docker", "images", "--no-trunc", "--format", "{{.Tag}} {{.ID}}", "repro-unsup3d"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return dict(line.split(None, 1) for line in out.stdout.splitlines() if len(line.split()) == 2)
