"""Shims for torch APIs newer than 1.2, the oldest stack the study runs on.

model/ must run on Python 3.6/3.7 + PyTorch 1.2 (the CUDA 9.2/10.0 images) as well as
on current torch. Each function picks the modern API when present and otherwise a
slower path built only from ops that exist in torch 1.2. Keep this a flat module of
small functions; each comment names the torch version that needs the fallback.
"""
import torch

__all__ = ["scatter_min_int64"]


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
