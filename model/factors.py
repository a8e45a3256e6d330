"""The study's factors, declared once: each one's values, default, id history, env.json key.

A factor is a trainer key that a study may sweep to look for a cause of a changed
result. The study schema (harness/matrix.py), cell ids (harness/cells.py), the
collected columns, `repro compare`'s design keys and the causes report all read
this table; tests/test_factors.py ties it to model.config.DEFAULTS.

The numerics factors also take the value `stack`: what the cell's PyTorch and the
authors' code do by default, settled where the cell runs (`in_force`), because it
depends on the torch version and the GPU there. Torch-free (the harness imports it);
Python 3.6 compatible.
"""
from collections import namedtuple

__all__ = ["STACK", "SCHEMA_ONE", "COMPILE_MODES", "SPEED", "Factor", "FACTORS", "FACTOR_NAMES", "NUMERICS",
           "IN_FORCE_KEYS", "by_name", "later_keys", "torch_version", "in_force", "describe_in_force"]

STACK = "stack"          # a numerics factor's value: as this stack ships (see in_force)
SCHEMA_ONE = "schema 1"  # `before` of a key every cell has hashed since cell ids began
# torch.compile's modes (reduce-overhead: CUDA graphs, no effect on CPU; max-autotune: benchmarks kernels)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")

# name: trainer key; values: allowed values (None: any number > 0); default: model.config.DEFAULTS'
# value; before: the value cells had before the key existed (a key at that value is left out of
# the cell id, so adding a factor never renames existing cells); in_force: the env.json
# "in_force" key recording what the cell ran with (None: the config value itself); help: one line
Factor = namedtuple("Factor", "name values default before in_force help")

FACTORS = (
    Factor("tf32", (False, True, STACK), False, SCHEMA_ONE, "tf32_conv",
           "TF32 convolutions (cudnn.allow_tf32); on CPU emulated by rounding conv operands"),
    Factor("tf32_matmul", (False, True, STACK), False, False, "tf32_matmul",
           "TF32 matmul/bmm (cuda.matmul.allow_tf32); on CPU emulated in our geometry's matmuls"),
    Factor("align_corners", (True, False, STACK), True, SCHEMA_ONE, "align_corners",
           "grid_sample's align_corners for ours and for the authors' bare calls"),
    Factor("deterministic", (False, True, STACK), False, SCHEMA_ONE, "deterministic",
           "true: cuDNN deterministic + torch.use_deterministic_algorithms; stack: cuDNN only, as the "
           "authors' utils set it on a GPU"),
    Factor("cudnn_benchmark", (None, True, False, STACK), None, None, "cudnn_benchmark",
           "cuDNN autotuner; null: as each implementation sets it (ours off, the authors' on a GPU)"),
    Factor("renderer", ("torch", "nmr", STACK), "torch", SCHEMA_ONE, "renderer",
           "torch (pure PyTorch, anywhere) | nmr (neural_renderer, CUDA) | stack: NMR where the image has it"),
    Factor("cpu_isa", ("native", "avx512", "avx2", "default"), "native", "native", None,
           "CPU kernel set (model/cpu_isa.py)"),
    Factor("lr", None, 1e-4, SCHEMA_ONE, None, "Adam learning rate"),
    Factor("perturb_init", (False, True), False, False, None,
           "the chaos floor: netD's first weight moved up by one float32 ulp after seeding"),
    Factor("perceptual_net", ("vgg16", "standin"), "vgg16", "vgg16", None,
           "the perceptual loss's features: vgg16 (ImageNet weights, vgg_weights) | standin (VGG16 with "
           "seeded random weights, a STAND-IN where no weights exist; ours only)"),
    # speed options that may change the arithmetic (issue 30); impl ours only (model/numerics.py)
    Factor("compile", ("off",) + COMPILE_MODES, "off", "off", None,
           "torch.compile of the five networks (torch >= 2.0): off | one of its modes"),
    Factor("memory_format", ("contiguous", "channels_last"), "contiguous", "contiguous", None,
           "the five networks' weights and activations: contiguous (NCHW) | channels_last (NHWC kernels)"),
    Factor("optimizer_impl", ("loop", "foreach", "fused"), "loop", "loop", None,
           "Adam's kernels: loop (per parameter, the original's) | foreach (multi-tensor) | fused"),
)
FACTOR_NAMES = tuple(f.name for f in FACTORS)
NUMERICS = tuple(f.name for f in FACTORS if f.values and STACK in f.values)
SPEED = ("compile", "memory_format", "optimizer_impl")  # the speed options, each at its default = off
# what env.json's "in_force" records for every cell, whatever its config said
IN_FORCE_KEYS = ("tf32_conv", "tf32_matmul", "align_corners", "cudnn_benchmark", "deterministic", "renderer")


def by_name(name):
    for factor in FACTORS:
        if factor.name == name:
            return factor
    raise KeyError(name)


def later_keys():
    """Factor -> the value it had before it existed (keys hashed since schema 1 left out)."""
    return dict((f.name, f.before) for f in FACTORS if f.before != SCHEMA_ONE)


def torch_version(text):
    """'1.11.0+cu113' -> (1, 11); None for an unparsable version."""
    try:
        major, minor = str(text).split("+")[0].split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return None


def _ampere(capability):
    # TF32 exists on compute capability 8.0 and later
    return capability is not None and float(capability) >= 8.0


def _stack_default(name, version, capability, impl, nmr):
    """What PyTorch `version` and the authors' code do with `name` by default (capability None: CPU)."""
    gpu = capability is not None
    if name == "tf32_conv":      # cuDNN TF32 defaults on from 1.7 (the flag's first release)
        return _ampere(capability) and version >= (1, 7)
    if name == "tf32_matmul":    # cuBLAS TF32 defaulted on in 1.7 to 1.11, off from 1.12
        return _ampere(capability) and (1, 7) <= version < (1, 12)
    if name == "align_corners":  # a bare grid_sample: True up to 1.2, False from 1.3
        return version < (1, 3)
    if name == "cudnn_benchmark":  # the authors' setup_runtime turns it on when CUDA is there
        return gpu
    if name == "deterministic":  # ... and cuDNN determinism with it
        return "cudnn" if gpu else "off"
    if name == "renderer":
        return "nmr" if gpu and nmr else "torch"
    raise KeyError(name)


def in_force(cfg, version, capability=None, nmr=False):
    """The value of each numerics setting a cell runs with (IN_FORCE_KEYS -> value).

    Args:
        cfg: the resolved trainer config (numerics keys may be `stack`).
        version: (major, minor) of the torch that runs the cell.
        capability: the GPU's compute capability ('8.0'), None on CPU.
        nmr: whether neural_renderer can be imported there.
    """
    def explicit(key, value):
        if value == STACK:
            return _stack_default(key, version, capability, cfg["impl"], nmr)
        return value

    conv, matmul = explicit("tf32_conv", cfg["tf32"]), explicit("tf32_matmul", cfg["tf32_matmul"])
    gpu = capability is not None
    # on a GPU the flags only act on Ampere and later; on CPU tf32 is the emulation
    if gpu:
        conv, matmul = bool(conv) and _ampere(capability), bool(matmul) and _ampere(capability)
    benchmark = cfg["cudnn_benchmark"]
    if benchmark is None:
        benchmark = gpu and cfg["impl"] == "author"
    deterministic = cfg["deterministic"]
    deterministic = explicit("deterministic", deterministic) if deterministic == STACK else (
        "all" if deterministic else "off")
    return {"tf32_conv": bool(conv), "tf32_matmul": bool(matmul),
            "align_corners": bool(explicit("align_corners", cfg["align_corners"])),
            "cudnn_benchmark": bool(explicit("cudnn_benchmark", benchmark)),
            "deterministic": deterministic, "renderer": explicit("renderer", cfg["renderer"])}


def describe_in_force(values):
    """One short line: 'tf32 conv on, matmul off; align_corners False; benchmark on; ...'."""
    def onoff(v):
        return v if isinstance(v, str) else ("on" if v else "off")
    return "tf32 conv %s matmul %s, align_corners %s, benchmark %s, deterministic %s, renderer %s" % (
        onoff(values["tf32_conv"]), onoff(values["tf32_matmul"]), values["align_corners"],
        onoff(values["cudnn_benchmark"]), values["deterministic"], values["renderer"])
