"""Run the original Unsup3D code (elliottwu/unsup3d) unmodified on any stack.

Their files are never edited or copied: `load_author_code(code_dir, ...)` puts
`code_dir` on sys.path, installs stand-ins for what their imports need and
cannot get here, imports their `unsup3d` package, and then rebinds two names
*inside their modules' namespaces* (never globally):

  module / name                      why
  ---------------------------------  ----------------------------------------------
  torchvision (sys.modules)          not installable beside CPU torch, absent from the
                                     CUDA images; vgg16(pretrained=True) would download.
                                     transforms.CenterCrop, transforms.functional.{crop,
                                     resize, hflip, to_tensor} on PIL, models.vgg16 with
                                     given (or seeded random) weights, utils.make_grid.
  cv2 (sys.modules, if missing)      only their video/image writers use it (test paths
                                     the adapter avoids); calling it raises.
  matplotlib (sys.modules, if        their meters plot metrics.pdf each epoch; a no-op
  missing; Agg backend otherwise)    pyplot when matplotlib is absent.
  collections.Iterable               removed in Python 3.10; their meters use it.
  neural_renderer (sys.modules)      NMR builds only with CUDA: `neural_renderer_shim`,
                                     backed by model.renderer's torch rasterizer, unless
                                     the real NMR is requested and importable.
  unsup3d.trainer.torch.load         torch >= 2.6 loads weights_only=True by default;
                                     their checkpoints hold a MetricsTrace object.
  unsup3d.dataloaders.get_*_loader   their get_data_loaders never passes cfgs num_workers on
                                     (always 4 workers); pinned to the cell's num_workers.
  unsup3d.model.nn.functional        grid_sample without align_corners means True before
    .grid_sample                     torch 1.4 and False after; the adapter pins it to the
                                     cell's align_corners.

Python 3.6 / PyTorch 1.2 compatible (the old CUDA images run this too).
"""
import collections
try:
    import collections.abc as _abc
except ImportError:  # Python 2 layout never applies here
    _abc = collections
import hashlib
import importlib
import inspect
import os
import subprocess
import sys
import types

import torch
import torch.nn.functional as F

from ..author_code import AUTHOR_COMMIT  # the pinned elliottwu/unsup3d commit

__all__ = ["AUTHOR_COMMIT", "load_author_code", "author_code_info", "SHIM_STATE"]

# Per-process settings the rebinding shims read at call time.
SHIM_STATE = {
    "align_corners": True,      # what their bare grid_sample calls get
    "vgg_state": None,          # torchvision vgg16 state dict for models.vgg16 (None: random init)
    "num_workers": None,        # DataLoader workers for their loaders (None: their default, 4)
    "used": {},                 # shim name -> what it does, for env.json
}


class _Proxy(types.ModuleType):
    """A module that forwards every attribute to `target` except the ones set on it."""

    def __init__(self, target, **overrides):
        types.ModuleType.__init__(self, getattr(target, "__name__", "proxy"))
        object.__setattr__(self, "_target", target)
        for key, value in overrides.items():
            object.__setattr__(self, key, value)

    def __getattr__(self, name):
        return getattr(object.__getattribute__(self, "_target"), name)


# ---------------------------------------------------------------------------
# torchvision

def _vgg16(pretrained=False, **_):
    """torchvision.models.vgg16 layout (features 0..30; classifier omitted: unused)."""
    from .vgg import VGG16
    net = VGG16()
    if SHIM_STATE["vgg_state"] is not None:
        net.load_torchvision(SHIM_STATE["vgg_state"])
    return net


def _make_torchvision():
    from . import tvshim
    tv = types.ModuleType("torchvision")
    tv.__path__ = []  # a package, so `import torchvision.transforms as tfs` works
    tv.__version__ = "0.0-repro-shim"
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    for name in ("crop", "resize", "hflip", "to_tensor", "center_crop"):
        setattr(functional, name, getattr(tvshim, name))
    transforms.functional = functional
    transforms.CenterCrop = tvshim.CenterCrop
    models = types.ModuleType("torchvision.models")
    models.vgg16 = _vgg16
    utils = types.ModuleType("torchvision.utils")
    utils.make_grid = tvshim.make_grid
    tv.transforms, tv.models, tv.utils = transforms, models, utils
    return {"torchvision": tv, "torchvision.transforms": transforms,
            "torchvision.transforms.functional": functional, "torchvision.models": models,
            "torchvision.utils": utils}


# ---------------------------------------------------------------------------
# cv2, matplotlib

def _unavailable(what):
    def fail(*args, **kwargs):
        raise RuntimeError("%s is not available here (repro shim); the adapter avoids their "
                           "save_results/video paths" % what)
    return fail


class _AnyAttr(types.ModuleType):
    """Every attribute is a function; `fn` decides what it does."""

    def __init__(self, name, fn):
        types.ModuleType.__init__(self, name)
        object.__setattr__(self, "_fn", fn)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return object.__getattribute__(self, "_fn")


def _install_cv2(used):
    try:
        import cv2  # noqa: F401
        used["cv2"] = "real"
    except ImportError:
        sys.modules["cv2"] = _AnyAttr("cv2", _unavailable("cv2"))
        used["cv2"] = "stub (raises if called; only their image/video writers use it)"


def _install_matplotlib(used):
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        import matplotlib
        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
        used["matplotlib"] = "real (%s backend)" % matplotlib.get_backend()
    except ImportError:
        mpl = types.ModuleType("matplotlib")
        mpl.__path__ = []
        plt = _AnyAttr("matplotlib.pyplot", lambda *a, **k: None)
        mpl.pyplot = plt
        sys.modules["matplotlib"], sys.modules["matplotlib.pyplot"] = mpl, plt
        used["matplotlib"] = "no-op stub (metrics.pdf not drawn)"


# ---------------------------------------------------------------------------
# renderer

def _install_renderer(backend, used):
    """backend 'nmr': the real neural_renderer (CUDA); 'torch': our drop-in."""
    if backend == "nmr":
        from model.renderer import import_neural_renderer
        nr = import_neural_renderer()  # raises RendererError with the reason
        sys.modules["neural_renderer"] = nr
        used["neural_renderer"] = "real NMR %s" % getattr(nr, "__version__", "")
    else:
        from . import neural_renderer_shim
        sys.modules["neural_renderer"] = neural_renderer_shim
        used["neural_renderer"] = "drop-in backed by model.renderer torch rasterizer (render_depth)"


# ---------------------------------------------------------------------------
# rebinding inside their modules

def _torch_load_compat(*args, **kwargs):
    if "weights_only" not in kwargs and \
            "weights_only" in inspect.signature(torch.load).parameters:
        kwargs["weights_only"] = False
    return torch.load(*args, **kwargs)


_HAS_ALIGN = "align_corners" in inspect.signature(F.grid_sample).parameters


def _grid_sample_compat(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    if align_corners is None:
        align_corners = SHIM_STATE["align_corners"]
    if _HAS_ALIGN:
        return F.grid_sample(input, grid, mode=mode, padding_mode=padding_mode,
                             align_corners=align_corners)
    if not align_corners:
        raise ValueError("align_corners: False needs PyTorch >= 1.3 (this is %s)" % torch.__version__)
    return F.grid_sample(input, grid, mode=mode, padding_mode=padding_mode)


def _with_workers(loader_fn):
    def wrapped(*args, **kwargs):
        if SHIM_STATE["num_workers"] is not None:
            kwargs["num_workers"] = SHIM_STATE["num_workers"]
        return loader_fn(*args, **kwargs)
    wrapped._repro_shim = True
    return wrapped


def _rebind(package, used):
    trainer = sys.modules[package + ".trainer"]
    if not isinstance(trainer.torch, _Proxy):
        trainer.torch = _Proxy(torch, load=_torch_load_compat)
    model = sys.modules[package + ".model"]
    if not isinstance(model.nn, _Proxy):
        functional = _Proxy(torch.nn.functional, grid_sample=_grid_sample_compat)
        model.nn = _Proxy(torch.nn, functional=functional)
    loaders = sys.modules[package + ".dataloaders"]
    for name in ("get_image_loader", "get_paired_image_loader"):
        original = getattr(loaders, name)
        if not getattr(original, "_repro_shim", False):
            setattr(loaders, name, _with_workers(original))
    used["num_workers"] = "their loaders get the cell's num_workers (their get_data_loaders drops it: 4)"
    used["torch.load"] = "weights_only=False for their checkpoint loads (unsup3d.trainer only)"
    used["grid_sample"] = "align_corners=%s for their bare calls (unsup3d.model only)" \
        % SHIM_STATE["align_corners"]


# ---------------------------------------------------------------------------
# entry point

_LOADED = {}


def load_author_code(code_dir, renderer="torch", align_corners=True, vgg_state=None, num_workers=None):
    """Import their `unsup3d` package from `code_dir` with the shims; returns the package.

    Idempotent per (code_dir, renderer); align_corners and vgg_state apply to later calls
    (their model's grid_sample and the next vgg16() build).
    """
    code_dir = os.path.abspath(code_dir)
    SHIM_STATE["align_corners"] = bool(align_corners)
    SHIM_STATE["vgg_state"] = vgg_state
    SHIM_STATE["num_workers"] = num_workers
    used = SHIM_STATE["used"]
    key = (code_dir, renderer)
    if key in _LOADED:
        used["grid_sample"] = "align_corners=%s for their bare calls (unsup3d.model only)" \
            % SHIM_STATE["align_corners"]
        return _LOADED[key]
    if _LOADED:
        raise RuntimeError("author code already loaded from %s; one copy per process"
                           % list(_LOADED)[0][0])
    if not os.path.isfile(os.path.join(code_dir, "unsup3d", "model.py")):
        raise ImportError("no unsup3d/model.py under %s" % code_dir)
    if not hasattr(collections, "Iterable"):
        collections.Iterable = _abc.Iterable
        used["collections.Iterable"] = "alias of collections.abc.Iterable (Python >= 3.10)"
    sys.modules.update(_make_torchvision())
    used["torchvision"] = "shim (PIL transforms, vgg16 from vgg_weights or random, make_grid)"
    _install_cv2(used)
    _install_matplotlib(used)
    _install_renderer(renderer, used)
    if "unsup3d" in sys.modules:
        loaded_from = os.path.dirname(os.path.dirname(os.path.abspath(sys.modules["unsup3d"].__file__)))
        if loaded_from != code_dir:
            raise RuntimeError("another unsup3d is already imported from %s" % loaded_from)
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    package = importlib.import_module("unsup3d")
    for name in ("trainer", "model", "networks", "utils", "meters", "dataloaders", "renderer"):
        importlib.import_module("unsup3d." + name)
    _rebind("unsup3d", used)
    _LOADED[key] = package
    return package


def author_code_info(code_dir):
    """Provenance of the author code for env.json: git commit (if a checkout), the
    pinned commit named in PROVENANCE.md, and a sha256 over their source files."""
    code_dir = os.path.abspath(code_dir)
    info = {"author_code_dir": code_dir, "author_pinned_commit": AUTHOR_COMMIT}
    commit = None
    if os.path.exists(os.path.join(code_dir, ".git")):
        try:
            commit = subprocess.check_output(["git", "-C", code_dir, "rev-parse", "HEAD"],
                                             stderr=subprocess.DEVNULL).decode().strip()
        except (OSError, subprocess.CalledProcessError):
            commit = None
    if commit is None:
        for name in ("COMMIT", "PROVENANCE.md"):
            path = os.path.join(code_dir, name)
            if os.path.isfile(path):
                with open(path) as f:
                    text = f.read()
                if AUTHOR_COMMIT in text:
                    commit = AUTHOR_COMMIT
                    break
    info["author_commit"] = commit
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(os.path.join(code_dir, "unsup3d")):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                digest.update(os.path.relpath(path, code_dir).encode())
                with open(path, "rb") as f:
                    digest.update(f.read())
    info["author_code_sha256"] = digest.hexdigest()
    info["author_commit_matches_pin"] = commit == AUTHOR_COMMIT
    return info
