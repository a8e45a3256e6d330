"""Keep the memory a training step frees for the next step (glibc malloc settings).

A step allocates and frees hundreds of tensors of 0.1-4 MB (the renderer's per-face
tables, the geometry's point grids, the networks' activations). By default glibc serves
a block above its mmap threshold with fresh pages from the kernel and hands the free top
of its heap back once it exceeds the trim threshold, so every step page-faults again on
memory it freed a moment before: about 3,300 faults and 6-8 ms of kernel time per
`cpu-small` step at one thread on the 2-core EPYC VM, more while other processes load it.
With both thresholds raised the pages stay mapped: about 20 faults a step, for a peak
RSS 70 MiB higher (494 -> 564 MiB in benches/bench_train_step.py). No number changes:
where a tensor lands does not enter any kernel's arithmetic (PyTorch aligns every CPU
block to 64 bytes either way), which tests/test_step_speedups.py checks on whole training
steps. Torch-free, Python 3.6.
"""
import ctypes
import sys

__all__ = ["keep_freed_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit: blocks up to 32 MiB come from the heap
TRIM_THRESHOLD = 1 << 30   # free heap top kept mapped up to 1 GiB


def keep_freed_memory():
    """Raise glibc's mmap and trim thresholds for this process; returns whether it could.

    False where there is no glibc `mallopt` (macOS, musl's stub, Windows): nothing changes there.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and
                mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
