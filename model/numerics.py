"""The numerics a cell runs with, settled and switched on in one place for both trainers.

`settle` turns every `stack` value (model/factors.py) into what this torch, this GPU
and this image do by default, and refuses what cannot run here; `apply_flags` sets
the cuDNN/cuBLAS switches to those values. Our trainer (model/train.py) and the
authors' (model/author_adapter.py, after their setup_runtime) call both, so the two
cannot differ on a flag. env.json records the result under "in_force".
Python 3.6 / PyTorch 1.2 compatible.
"""
import torch

from . import compat
from .config import ConfigError
from .factors import IN_FORCE_KEYS, STACK, in_force, torch_version

__all__ = ["settle", "apply_flags"]


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
