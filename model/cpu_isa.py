"""The CPU kernel set a run may use: the CPU analogue of "same code, other kernels".

PyTorch picks its CPU kernels (ATen: default / avx2 / avx512) and oneDNN its instruction
set once per process, from the machine, unless `ATEN_CPU_CAPABILITY` and
`ONEDNN_MAX_CPU_ISA` force a lower one. Both are read when torch first dispatches, so the
trainer sets them by re-executing itself with them in its environment before any work:
`cpu_isa` then means the same thing under every executor. Torch-free (Python 3.6).
"""
import os
import sys

__all__ = ["CPU_ISAS", "isa_environment", "reexec_with_cpu_isa"]

# config value -> (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA); "native" forces nothing
CPU_ISAS = {
    "native": (None, None),
    "avx512": ("avx512", "AVX512_CORE"),
    "avx2": ("avx2", "AVX2"),
    "default": ("default", "SSE41"),   # ATen's scalar kernels; oneDNN's lowest x86 level
}
_MARK = "REPRO_CPU_ISA"               # set in the re-executed process: never loop


def isa_environment(cpu_isa):
    """The environment variables that force `cpu_isa` (empty for 'native')."""
    if cpu_isa not in CPU_ISAS:
        raise ValueError("cpu_isa %r: expected one of %s" % (cpu_isa, ", ".join(sorted(CPU_ISAS))))
    aten, onednn = CPU_ISAS[cpu_isa]
    return {} if aten is None else {"ATEN_CPU_CAPABILITY": aten, "ONEDNN_MAX_CPU_ISA": onednn}


def reexec_with_cpu_isa(cpu_isa, argv=None):
    """Re-execute this Python process with `cpu_isa`'s variables set, unless they already are.

    Returns only when nothing had to change; otherwise the process image is replaced.
    """
    wanted = isa_environment(cpu_isa)
    if os.environ.get(_MARK) == cpu_isa or all(os.environ.get(k) == v for k, v in wanted.items()):
        return
    env = dict(os.environ, **wanted)
    env[_MARK] = cpu_isa
    argv = list(sys.argv if argv is None else argv)
    os.execve(sys.executable, [sys.executable, "-m", "model.train"] + argv[1:], env)
