"""The env.json fingerprint: everything about the stack and code that can change a result."""
import json
import os
import platform
import socket
import subprocess
import sys

import torch

from . import compat
from .codedigest import imported_code
from .factors import SPEED
from .runfiles import write_json

__all__ = ["fingerprint", "write_env"]

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _git_sha():
    root = PROJECT_ROOT
    sha = os.environ.get("REPRO_GIT_SHA")
    if sha:
        return sha
    try:
        out = subprocess.check_output(["git", "-C", root, "rev-parse", "HEAD"], stderr=subprocess.DEVNULL)
        return out.decode().strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _gpu(device):
    if device.type != "cuda":
        return {"gpu_name": None, "gpu_capability": None, "driver": None}
    major, minor = torch.cuda.get_device_capability(device)
    driver = None
    try:
        out = subprocess.check_output(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                      stderr=subprocess.DEVNULL)
        driver = out.decode().split("\n")[0].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return {"gpu_name": torch.cuda.get_device_name(device), "gpu_capability": "%d.%d" % (major, minor),
            "driver": driver}


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _cpu():
    """The CPU and the kernels torch runs on it, and what forced them lower (model/cpu_isa.py)."""
    cpu = {"cpu_model": _cpu_model(), "cpu_count": os.cpu_count(),
           "ATEN_CPU_CAPABILITY": os.environ.get("ATEN_CPU_CAPABILITY"),
           "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA")}
    cpu.update(compat.cpu_kernels())
    return cpu


def fingerprint(cfg, device, perceptual_reason, in_force, author_code_dir=None):
    """A flat dict of versions, flags and provenance for env.json.

    cfg is settled (model.numerics.settle); in_force is that settle's record: the numerics
    the cell ran with, whatever its config asked (`stack` values included). `code` holds a
    digest of every model/ file imported by now (and of the authors' files, for
    `impl: author`): model.codedigest says what a digest covers and why.
    """
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": compat.cudnn_version(),
        "device": str(device),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "in_force": dict(in_force),
        "tf32": cfg["tf32"],
        "tf32_mode": ("cuda-flags" if device.type == "cuda" else "cpu-emulated") if cfg["tf32"] else "off",
        "torch_threads": torch.get_num_threads(),
        "renderer": cfg["renderer"],
        "align_corners": cfg["align_corners"],
        "perceptual": cfg["perceptual"],
        "speed": dict((key, cfg[key]) for key in SPEED),  # compile, memory_format, optimizer_impl
        "perceptual_reason": perceptual_reason,
        "image_digest": os.environ.get("REPRO_IMAGE_DIGEST"),
        "image": os.environ.get("REPRO_IMAGE"),
        "git_sha": _git_sha(),
        "harness_version": os.environ.get("REPRO_HARNESS_VERSION"),
        "code": imported_code(PROJECT_ROOT, author_code_dir),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "argv": sys.argv,
    }
    env.update(compat.tf32_flags())
    env.update(_gpu(device))
    env.update(_cpu())
    return env


def write_env(out_dir, env):
    """Write env.json; a launch that resumes a checkpoint made by other code says which files changed.

    The checkpoint's weights were trained by the earlier code, so the cell mixes two
    versions: `code_changed_mid_run` lists the files (kept across later resumes).
    """
    path = os.path.join(out_dir, "env.json")
    earlier = _read_object(path) if _has_checkpoint(out_dir) else {}
    changed = set(earlier.get("code_changed_mid_run") or [])
    before, now = earlier.get("code") or {}, env.get("code") or {}
    if before:
        changed.update(k for k in set(before) | set(now) if k in before and before.get(k) != now.get(k))
    if changed:
        env = dict(env, code_changed_mid_run=sorted(changed))
    write_json(path, env)


def _has_checkpoint(out_dir):
    folder = os.path.join(out_dir, "checkpoints")
    return os.path.isdir(folder) and any(not n.endswith(".tmp") for n in os.listdir(folder))


def _read_object(path):
    try:
        with open(path) as f:
            value = json.load(f)
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
