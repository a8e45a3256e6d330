"""Shims for torch APIs newer than 1.2, the oldest stack the study runs on.

model/ must run on Python 3.6/3.7 + PyTorch 1.2 (the CUDA 9.2/10.0 images) as well as
on current torch. Each function picks the modern API when present and otherwise a
slower path built only from ops that exist in torch 1.2. Keep this a flat module of
small functions; each comment names the torch version that needs the fallback.
"""
import inspect
import os

import torch
import torch.nn.functional as F

__all__ = ["nonzero_indices", "scatter_min_int64", "grid_sample", "GRID_SAMPLE_HAS_ALIGN", "load_checkpoint", "adam",
           "set_deterministic", "set_cudnn_benchmark", "next_float_up", "set_tf32", "tf32_flags", "cudnn_version"]


def nonzero_indices(mask):
    """Indices of the True entries of a 1-D bool tensor, as a (K,) int64 tensor."""
    # torch 1.5/1.6 warn on nonzero() without as_tuple, which torch < 1.3 lacks
    try:
        return torch.nonzero(mask, as_tuple=False).view(-1)
    except TypeError:
        return torch.nonzero(mask).view(-1)


def scatter_min_int64(out, index, src):
    """Return ``out`` with ``out[index[i]] = min(out[index[i]], src[i])`` for every i.

    Args:
        out: (M,) int64 buffer, holding the initial values (used as the starting minimum).
        index: (N,) int64 positions in ``out``; repeated positions are reduced by min.
        src: (N,) int64 values.

    Returns:
        The updated buffer (``out`` itself on torch >= 1.12, a new tensor before).
    """
    # torch >= 1.12 has scatter_reduce_ with 'amin'; 1.11 had an incompatible signature.
    if hasattr(out, "scatter_reduce_"):
        try:
            return out.scatter_reduce_(0, index, src, reduce="amin", include_self=True)
        except TypeError:
            pass
    return _scatter_min_int64_by_sort(out, index, src)


def _scatter_min_int64_by_sort(out, index, src):
    """torch < 1.12 fallback: sort so that each position's minimum comes first.

    Sort is not stable before torch 1.9, so the two sort keys are folded into one
    unique int64: position * N + rank of the value.
    """
    n = src.numel()
    if n == 0:
        return out
    value_order = torch.sort(src)[1]  # (N,) ascending values
    rank = torch.empty_like(value_order)
    rank[value_order] = torch.arange(n, device=src.device)
    order = torch.sort(index * n + rank)[1]  # grouped by position, smallest value first
    sorted_index = index[order]
    is_first = torch.ones(n, dtype=torch.bool, device=src.device)
    is_first[1:] = sorted_index[1:] != sorted_index[:-1]
    first = order[is_first]
    best = torch.min(out[index[first]], src[first])
    out = out.clone()
    out[index[first]] = best  # positions are unique here, so the write is deterministic
    return out


# torch 1.3 added `align_corners` to grid_sample; 1.2 behaves as align_corners=True.
GRID_SAMPLE_HAS_ALIGN = "align_corners" in inspect.signature(F.grid_sample).parameters


def grid_sample(image, grid, align_corners):
    """Bilinear grid_sample with an explicit align_corners on every torch version."""
    if GRID_SAMPLE_HAS_ALIGN:
        return F.grid_sample(image, grid, mode="bilinear", align_corners=align_corners)
    if not align_corners:
        raise ValueError("align_corners: False needs PyTorch >= 1.3 (this is %s)" % torch.__version__)
    return F.grid_sample(image, grid, mode="bilinear")


def load_checkpoint(path, map_location="cpu"):
    """torch.load of our own trusted checkpoints (they hold RNG states, not only tensors):
    torch 2.6 made weights_only=True the default, older versions lack the argument."""
    if "weights_only" in inspect.signature(torch.load).parameters:
        return torch.load(path, map_location=map_location, weights_only=False)
    return torch.load(path, map_location=map_location)


def set_deterministic(cudnn, algorithms):
    """cuDNN determinism, and deterministic algorithms everywhere where torch has them (1.8+)."""
    torch.backends.cudnn.deterministic = bool(cudnn)
    if algorithms:
        # cuBLAS needs a fixed workspace for reproducible GEMMs (CUDA >= 10.2)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if hasattr(torch, "use_deterministic_algorithms"):
        if "warn_only" in inspect.signature(torch.use_deterministic_algorithms).parameters:
            torch.use_deterministic_algorithms(bool(algorithms), warn_only=True)  # 1.11+
        else:
            torch.use_deterministic_algorithms(bool(algorithms))


def next_float_up(x):
    """The next representable value above each element (torch.nextafter from 1.7; before, by
    stepping the float32 bit pattern, which is the same for finite float32 values)."""
    if hasattr(torch, "nextafter"):
        return torch.nextafter(x, torch.full_like(x, float("inf")))
    if x.dtype != torch.float32:
        raise ValueError("next_float_up: float32 only on PyTorch < 1.7 (got %s)" % x.dtype)
    bits = x.view(torch.int32)
    step = torch.where(x > 0, bits + 1, torch.where(x < 0, bits - 1, torch.ones_like(bits)))
    return torch.where(x == 0, step.view(torch.float32).abs(), step.view(torch.float32))


def set_cudnn_benchmark(enabled):
    """cuDNN's algorithm autotuner on or off."""
    torch.backends.cudnn.benchmark = bool(enabled)


def adam(params, **options):
    """torch.optim.Adam on the multi-tensor ("foreach") kernels where this torch has them (1.12+).

    On CPU they update every parameter bit for bit as the per-parameter loop does, and
    1.1-1.8x faster over cpu-small's 88 small tensors (measured on a 2-core AVX2 machine);
    older torch gets the loop.
    """
    if "foreach" in inspect.signature(torch.optim.Adam.__init__).parameters:
        options["foreach"] = True
    return torch.optim.Adam(params, **options)


def set_tf32(conv, matmul):
    """The real cuDNN (convolutions) and cuBLAS (matmul) TF32 switches (torch 1.7+); older torch has no TF32."""
    backend = getattr(torch.backends.cuda, "matmul", None)
    if backend is not None and hasattr(backend, "allow_tf32"):
        backend.allow_tf32 = bool(matmul)
    if hasattr(torch.backends.cudnn, "allow_tf32"):
        torch.backends.cudnn.allow_tf32 = bool(conv)


def tf32_flags():
    """What the TF32 switches are now (None where this torch has none)."""
    matmul = getattr(getattr(torch.backends.cuda, "matmul", None), "allow_tf32", None)
    return {"matmul_allow_tf32": matmul,
            "cudnn_allow_tf32": getattr(torch.backends.cudnn, "allow_tf32", None)}


def cudnn_version():
    try:
        return torch.backends.cudnn.version()
    except Exception:  # some CPU builds raise instead of returning None
        return None


def cpu_kernels():
    """What CPU kernels this torch uses: ATen's capability, BLAS, oneDNN version (None where unknown).

    `torch.backends.cpu.get_cpu_capability` exists from 2.0; older builds only print it in
    `torch.__config__.show()` (1.x: "CPU capability usage: AVX2"), which also names BLAS and oneDNN.
    """
    import re
    show = ""
    try:
        show = torch.__config__.show()
    except Exception:  # noqa: BLE001 - very old builds: no config string
        pass

    def _find(pattern):
        found = re.search(pattern, show)
        return found.group(1) if found else None

    backend = getattr(torch.backends, "cpu", None)
    capability = backend.get_cpu_capability() if hasattr(backend, "get_cpu_capability") else _find(
        r"CPU capability usage: (\w+)")
    return {"cpu_capability": capability, "blas": _find(r"BLAS_INFO=(\w+)"),
            "onednn": _find(r"(?:MKL-DNN|oneDNN) (v[\d.]+)")}
