"""The env.json fingerprint: everything about the stack that can change a result."""
import os
import platform
import socket
import subprocess
import sys

import torch

from . import compat

__all__ = ["fingerprint"]


def _git_sha():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


def fingerprint(cfg, device, perceptual_reason, in_force):
    """A flat dict of versions, flags and provenance for env.json.

    cfg is settled (model.numerics.settle); in_force is that settle's record: the numerics
    the cell ran with, whatever its config asked (`stack` values included).
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
        "perceptual_reason": perceptual_reason,
        "image_digest": os.environ.get("REPRO_IMAGE_DIGEST"),
        "image": os.environ.get("REPRO_IMAGE"),
        "git_sha": _git_sha(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "argv": sys.argv,
    }
    env.update(compat.tf32_flags())
    env.update(_gpu(device))
    env.update(_cpu())
    return env
