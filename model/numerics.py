"""The numerics a cell runs with, settled and switched on in one place for both trainers.

`settle` turns every `stack` value (model/factors.py) into what this torch, this GPU
and this image do by default, and refuses what cannot run here; `apply_flags` sets
the cuDNN/cuBLAS switches to those values. Our trainer (model/train.py) and the
authors' (model/author_adapter.py, after their setup_runtime) call both, so the two
cannot differ on a flag. env.json records the result under "in_force".

The speed options (compile, memory_format, optimizer_impl; factors.SPEED) are settled
here too: refused where this torch lacks them, and for the authors' code, which builds
its own networks and Adams; `apply_speed` switches them on for our networks.
Python 3.6 / PyTorch 1.2 compatible.
"""
import os
import shutil

import torch

from . import compat
from .config import DEFAULTS, ConfigError
from .factors import IN_FORCE_KEYS, SPEED, STACK, in_force, torch_version

__all__ = ["settle", "apply_flags", "apply_speed"]


def _capability(device):
    if device.type != "cuda":
        return None
    return "%d.%d" % torch.cuda.get_device_capability(device)


def _nmr_importable():
    try:
        from .renderer import import_neural_renderer
        import_neural_renderer()
        return True
    except Exception:  # noqa: BLE001 - any failure means this image has no working NMR
        return False


def settle(cfg, device):
    """The cell's config with concrete numerics values, and the in-force record for env.json.

    Raises:
        ConfigError: a value this torch or device cannot run (named, one line).
    """
    nmr = cfg["renderer"] == STACK and device.type == "cuda" and _nmr_importable()
    values = in_force(cfg, torch_version(torch.__version__) or (0, 0), _capability(device), nmr)
    if cfg["tf32_matmul"] is True and device.type != "cuda" and cfg["impl"] == "author":
        raise ConfigError("tf32_matmul: true is emulated on CPU in our geometry only, not in the authors' "
                          "renderer; use impl: ours, or run the cell on a GPU")
    if not values["align_corners"] and not compat.GRID_SAMPLE_HAS_ALIGN:
        raise ConfigError("align_corners: False needs PyTorch >= 1.3 (this is %s)" % torch.__version__)
    _check_speed(cfg, device)
    settled = dict(cfg, tf32=values["tf32_conv"], tf32_matmul=values["tf32_matmul"],
                   align_corners=values["align_corners"], cudnn_benchmark=values["cudnn_benchmark"],
                   deterministic=values["deterministic"] != "off", renderer=values["renderer"])
    return settled, dict((k, values[k]) for k in IN_FORCE_KEYS)


def apply_flags(values):
    """Set cuDNN/cuBLAS determinism, autotuning and TF32 to the settled values.

    Set on CPU too (they change no CPU kernel), so that env.json's flags read as settled.
    """
    compat.set_deterministic(cudnn=values["deterministic"] != "off", algorithms=values["deterministic"] == "all")
    compat.set_cudnn_benchmark(values["cudnn_benchmark"])
    compat.set_tf32(conv=values["tf32_conv"], matmul=values["tf32_matmul"])


def _cxx_compiler():
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def _check_speed(cfg, device):
    """Refuse, in one line, a speed option this torch, this machine or the cell's impl cannot run."""
    for key in SPEED:
        if cfg["impl"] == "author" and cfg[key] != DEFAULTS[key]:
            raise ConfigError("%s: %r applies to impl: ours only (the authors' code builds its own networks "
                              "and Adams); leave it at %r" % (key, cfg[key], DEFAULTS[key]))
    if cfg["compile"] != "off":
        if not compat.HAS_COMPILE:
            raise ConfigError("compile: %r needs PyTorch >= 2.0 (this is %s)" % (cfg["compile"], torch.__version__))
        if device.type == "cpu" and not _cxx_compiler():
            raise ConfigError("compile: %r on CPU needs a C++ compiler (g++, or $CXX); none found" % cfg["compile"])
    if cfg["memory_format"] == "channels_last" and not compat.HAS_CHANNELS_LAST:
        raise ConfigError("memory_format: channels_last needs PyTorch >= 1.5 (this is %s)" % torch.__version__)
    impls = compat.adam_impls(device)
    if cfg["optimizer_impl"] not in impls:
        raise ConfigError("optimizer_impl: %r is not in PyTorch %s on %s (it has %s)"
                          % (cfg["optimizer_impl"], torch.__version__, device.type, ", ".join(impls)))


def _channels_last_inside(net):
    """Run `net` on NHWC tensors (weights and input) and hand back NCHW ones, so only its kernels change."""
    def to_nhwc(module, inputs):
        return tuple(x.contiguous(memory_format=torch.channels_last) for x in inputs)

    def to_nchw(module, inputs, output):
        if isinstance(output, tuple):
            return tuple(y.contiguous() for y in output)
        return output.contiguous()

    net.to(memory_format=torch.channels_last)
    net.register_forward_pre_hook(to_nhwc)
    net.register_forward_hook(to_nchw)


def apply_speed(cfg, nets):
    """Switch the settled speed options on for our networks (a ModuleDict); Adam's is make_optimizer's."""
    for net in nets.values():
        if cfg["memory_format"] == "channels_last":
            _channels_last_inside(net)
        if cfg["compile"] != "off":
            compat.compile_module(net, cfg["compile"])
