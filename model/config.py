"""Every knob of a training cell, with its default and why, in one place.

A cell config is YAML: `preset` picks a block of differences from the defaults
below, then the file's own keys override those. Unknown keys, bad values and
missing paths raise ConfigError, whose message is one line naming the key.
Runs on Python 3.6+ (the old CUDA images), hence plain dicts, no dataclasses.
"""
import math
import os
import re

import yaml

from .factors import FACTORS, NUMERICS, STACK

__all__ = ["ConfigError", "DEFAULTS", "PRESETS", "DATASET_CROP", "VGG_FROM_IMAGE", "VGG_ENV", "STANDIN", "is_host_path", "resolve",
           "load_config", "YamlLoader", "load_yaml"]


CHANNELS_PER_GROUP = 4  # GroupNorm in the networks: the original's ratio at nf 64 (16 groups)
# vgg_weights: image = the weights file the cell's image carries, named by $REPRO_VGG_WEIGHTS
# (docker/fetch-vgg.sh puts it there at build time). Only where the cell runs is it known
# whether that file exists, so the host neither checks it nor settles `perceptual: auto`.
VGG_FROM_IMAGE = "image"
VGG_ENV = "REPRO_VGG_WEIGHTS"
STANDIN = "standin"  # perceptual_net: seeded random VGG16 weights (model/losses.py standin_vgg_state)


class ConfigError(ValueError):
    """A user mistake in a cell config; str() is one line naming the key."""


# ---------------------------------------------------------------------------
# defaults: values of the original's train_synface.yml unless the comment says so
DEFAULTS = {
    # I/O and scale
    "preset": "cpu-small",       # 'paper' | 'cpu-small' | 'tiny' (see PRESETS)
    "impl": "ours",              # 'ours' | 'author' (the original code, via model.author_adapter)
    "author_code_dir": None,     # impl=author: checkout of elliottwu/unsup3d (None: model/author_code.py's lookup)
    "device": "auto",            # 'auto' (cuda if available) | 'cpu' | 'cuda'
    "threads": 0,                # torch CPU threads, 0 = torch's default
    "log_every": 1,              # iterations between train.jsonl lines
    "checkpoint_every": 100,     # iterations between resumable checkpoints (plus end of every epoch)
    "num_sample_images": 8,      # images in each decomposition grid
    # data
    "dataset": "builtin",        # 'builtin' (procedural faces, generated) | 'synface' | 'celeba'
    "data_dir": None,            # synface/celeba: folder with train/ val/ test/; builtin: cache folder (default RUN_DIR/../.data)
    "builtin_version": 5,        # builtin: generator version (model/builtin_data.py): 5 textured backdrop, 4 flat grey
    "builtin_seed": 0,           # builtin: data seed, shared by all training seeds
    "builtin_num_train": 2000,   # builtin: images per split
    "builtin_num_val": 100,
    "builtin_num_test": 200,
    "builtin_max_yaw": 30.0,     # builtin: |yaw| of rendered views, degrees (pitch to 1/3, roll to 1/4 of it; the model covers 60)
    "builtin_max_shift": 0.0,    # builtin: |x/y translation| of views, scene units; 0 = centred, as synface crops (the model covers 0.1)
    "builtin_noise": 0.02,       # builtin: std of Gaussian pixel noise, in [0, 1] intensity units
    "builtin_background": 0.5,   # builtin_version 4: albedo of the flat backdrop behind the faces, 0 (black) to 1
    "image_size": 64,            # pixels; 64 in the paper, any power of two >= 16
    "crop": None,                # before resize: int = centre crop, [y0, x0, h, w] = a box; None = the original's
                                 # crop for the dataset (DATASET_CROP: synface 170 of its 256px; builtin, celeba none)
    "num_workers": 0,            # DataLoader workers; 0 keeps runs deterministic and simple
    # networks (paper sizes; presets shrink them)
    "nf": 64,                    # base width of depth/albedo nets
    "zdim": 256,                 # bottleneck of depth/albedo nets
    "conf_nf": 64,               # confidence net width
    "conf_zdim": 128,            # confidence net bottleneck
    "enc_nf": 32,                # light and view encoders width
    "use_conf_map": True,        # predict confidence maps (the original: True)
    # photo-geometric model
    "min_depth": 0.9,
    "max_depth": 1.1,
    "border_depth": None,        # None = 0.7*max_depth + 0.3*min_depth, as the original
    "xyz_rotation_range": 60.0,  # degrees, view rotation is tanh * this
    "xy_translation_range": 0.1,
    "z_translation_range": 0.0,  # train_synface.yml sets 0 (the class default is 0.1)
    "fov": 10.0,                 # degrees, camera field of view
    "rot_center_depth": 1.0,
    "renderer": "torch",         # 'torch' (pure PyTorch, anywhere) | 'nmr' (neural_renderer, CUDA only) | 'stack'
    "renderer_near": 0.1,        # NMR near/far planes as the original sets them
    "renderer_far": 10.0,
    "align_corners": True,       # grid_sample; True = PyTorch <= 1.2's default the original relied on | 'stack'
    # losses
    "lam_perc": 1.0,
    "lam_flip": 0.5,
    "lam_depth_sm": 0.0,         # the original's depth smoothness term (0 for faces, used for synthetic cars)
    "perceptual": "auto",        # 'auto' (on iff the VGG16 weights are there) | 'on' | 'off'
    "vgg_weights": None,         # torchvision's vgg16 ImageNet state dict: a host path, or 'image' (VGG_FROM_IMAGE)
    "perceptual_net": "vgg16",   # 'vgg16' (the weights above) | 'standin': seeded random VGG16 weights, no file needed
    # optimisation
    "batch_size": 64,
    "num_epochs": 30,
    "lr": 1e-4,                  # Adam, betas (0.9, 0.999)
    "weight_decay": 5e-4,        # the original's Adam weight decay
    "clip": "none",              # 'none' | 'norm' (clip_grad_norm_ over all params) | 'value' (clip_grad_value_)
    "clip_threshold": 5.0,       # the report's 5; max norm for 'norm', max |g| for 'value'
    "seed": 0,
    # numerics (model/factors.py): 'stack' = what the cell's PyTorch and the authors' code do by default
    "deterministic": False,      # cuDNN deterministic + deterministic algorithms (CUBLAS workspace) | 'stack'
    "cudnn_benchmark": None,     # GPU: cuDNN's autotuner; None = as each implementation sets it (ours off, the authors' on) | 'stack'
    "tf32": False,               # TF32 convolutions: GPU the cuDNN flag; CPU emulated by rounding conv operands | 'stack'
    "tf32_matmul": False,        # TF32 matmul/bmm: GPU the cuBLAS flag; CPU emulated in our geometry's matmuls | 'stack'
    "cpu_isa": "native",         # CPU kernel set: 'native' | 'avx512' | 'avx2' | 'default' (model/cpu_isa.py)
    "perturb_init": False,       # the chaos floor (Summers & Dinneen 2021): netD's first weight one ulp up at init
    # speed options that may change the numbers (model/factors.py; impl ours only), each off by default
    "compile": "off",            # torch.compile of the five networks: 'off' | a mode (factors.COMPILE_MODES)
    "memory_format": "contiguous",  # the five networks: 'contiguous' | 'channels_last'
    "optimizer_impl": "loop",    # Adam: 'loop' (per parameter, the original's) | 'foreach' | 'fused'
    # fault injection, for the harness's reliability tests
    "inject_nan_at": None,       # iteration at which netD's gradient is made NaN (None: never)
}

# Presets hold only the differences from DEFAULTS, each with its reason.
PRESETS = {
    # the original's train_synface.yml: 64x64, batch 64, 30 epochs, Adam 1e-4
    "paper": {"builtin_num_train": 20000, "builtin_num_val": 500, "builtin_num_test": 1000,
              "checkpoint_every": 500, "log_every": 10},
    # The original's model, smaller, for 2 CPU cores: 32px images and 1/4 widths cut a
    # step ~20x (800 steps; ~4 min on one thread). The original's confidence maps, xy
    # translation 0.1 and rotation range 60 stay (they need builtin_version 5's textured
    # backdrop: over the flat one sigma collapsed and no depth formed). Two settings
    # still differ, each from an A/B on seed 0 (SIDE x1e-2 / MAD deg, flat depth
    # 1.553 / 50.5; docs/instability.md):
    # - lam_depth_sm 0.1 (the original: 0): 1.436 / 19.1 -> 1.355 / 18.5;
    # - lr 2e-4 (the original: 1e-4): the budget is 1/12 of the original's steps.
    # The data's yaw stays at 20 degrees: 30 gave 1.602 / 22.6 (flat 1.476 / 47.7).
    "cpu-small": {"image_size": 32, "nf": 16, "zdim": 64, "conf_nf": 16, "conf_zdim": 32,
                  "enc_nf": 16, "batch_size": 16, "num_epochs": 8, "lr": 2e-4, "lam_depth_sm": 0.1,
                  "builtin_max_yaw": 20.0,
                  "builtin_num_train": 1600, "builtin_num_val": 32, "builtin_num_test": 128},
    # seconds-long smoke runs for tests and CI
    "tiny": {"image_size": 32, "nf": 16, "zdim": 32, "conf_nf": 16, "conf_zdim": 16,
             "enc_nf": 16, "batch_size": 4, "num_epochs": 1, "lr": 5e-4, "checkpoint_every": 4,
             "builtin_num_train": 16, "builtin_num_val": 4, "builtin_num_test": 8,
             "num_sample_images": 4},
}

# The original's crop per dataset (its experiments/train_*.yml): `crop: None` resolves to it.
# synface's release is 256px with the face in the centre 170; celeba_crop.py already cropped
# CelebA; the built-in faces are generated at image_size. To keep synface whole: crop: 256.
DATASET_CROP = {"synface": 170}

_CHOICES = {
    "preset": tuple(PRESETS),
    "impl": ("ours", "author"),
    "device": ("auto", "cpu", "cuda"),
    "dataset": ("builtin", "synface", "celeba"),
    "perceptual": ("auto", "on", "off"),
    "clip": ("none", "norm", "value"),
    "builtin_version": (4, 5),   # model/builtin_data.py: add one when the faces change
}
_CHOICES.update((f.name, f.values) for f in FACTORS if f.values)  # the factors' own values
_POSITIVE = ("batch_size", "num_epochs", "lr", "log_every", "checkpoint_every", "image_size",
             "nf", "zdim", "conf_nf", "conf_zdim", "enc_nf", "fov", "renderer_near", "renderer_far",
             "builtin_num_train", "builtin_num_test", "num_sample_images")
_NON_NEGATIVE = ("clip_threshold", "weight_decay", "threads", "num_workers", "lam_perc", "lam_flip", "lam_depth_sm",
                 "builtin_num_val", "builtin_max_yaw", "builtin_max_shift", "builtin_noise", "xyz_rotation_range",
                 "xy_translation_range", "z_translation_range", "seed", "builtin_seed")


def _check_type(key, value, default):
    if default is None or value is None or (key in NUMERICS and value == STACK):
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError("%s: expected true/false, got %r" % (key, value))
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError("%s: expected a number, got %r" % (key, value))
        return type(default)(value) if isinstance(default, float) or value == int(value) else value
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError("%s: expected a string, got %r" % (key, value))
    return value


def _validate(cfg, where):
    for key, allowed in _CHOICES.items():
        if cfg[key] not in allowed:
            raise ConfigError("%s%s: %r is not one of %s" % (where, key, cfg[key], ", ".join(map(str, allowed))))
    for key in _POSITIVE:
        if not cfg[key] > 0:
            raise ConfigError("%s%s: must be > 0, got %r" % (where, key, cfg[key]))
    for key in _NON_NEGATIVE:
        if cfg[key] < 0:
            raise ConfigError("%s%s: must be >= 0, got %r" % (where, key, cfg[key]))
    size = cfg["image_size"]
    if size < 16 or 2 ** int(round(math.log2(size))) != size:
        raise ConfigError("%simage_size: must be a power of two >= 16, got %r" % (where, size))
    for key in ("nf", "conf_nf"):
        if cfg[key] % CHANNELS_PER_GROUP:
            raise ConfigError("%s%s: must be a multiple of %d (GroupNorm's channels per group), got %r"
                              % (where, key, CHANNELS_PER_GROUP, cfg[key]))
    if not 0 <= cfg["builtin_background"] <= 1:
        raise ConfigError("%sbuiltin_background: must be in [0, 1], got %r" % (where, cfg["builtin_background"]))
    if not cfg["min_depth"] < cfg["max_depth"]:
        raise ConfigError("%smin_depth: must be below max_depth" % where)
    if cfg["dataset"] != "builtin":
        data_dir = cfg["data_dir"]
        if not data_dir:
            raise ConfigError("%sdata_dir: required for dataset %r" % (where, cfg["dataset"]))
        if not os.path.isdir(data_dir):
            raise ConfigError("%sdata_dir: no such folder %s" % (where, data_dir))
    if is_host_path("vgg_weights", cfg["vgg_weights"]) and not os.path.isfile(cfg["vgg_weights"]):
        raise ConfigError("%svgg_weights: no such file %s" % (where, cfg["vgg_weights"]))
    if cfg["perceptual_net"] == STANDIN:
        _validate_standin(cfg, where)
    elif cfg["perceptual"] == "on" and cfg["vgg_weights"] is None:
        raise ConfigError("%sperceptual: 'on' needs vgg_weights (a torchvision vgg16 state dict, or 'image')" % where)


def _validate_standin(cfg, where):
    # the stand-in is its own weights: ImageNet ones beside it would make the label a lie
    if cfg["vgg_weights"] is not None:
        raise ConfigError("%sperceptual_net: 'standin' uses seeded random weights; drop vgg_weights" % where)
    if cfg["perceptual"] == "off":
        raise ConfigError("%sperceptual_net: 'standin' needs the perceptual loss, but perceptual is 'off'" % where)
    if cfg["impl"] != "ours":
        raise ConfigError("%sperceptual_net: 'standin' is built for impl ours (the authors' code loads "
                          "torchvision's VGG16 itself)" % where)


def resolve(user, where=""):
    """Defaults <- preset <- user keys; validated. `where` prefixes errors (e.g. a file name)."""
    if not isinstance(user, dict):
        raise ConfigError("%sconfig must be a mapping of key: value" % where)
    unknown = sorted(set(user) - set(DEFAULTS))
    if unknown:
        raise ConfigError("%s%s: unknown key (known keys are listed in model/config.py)" % (where, unknown[0]))
    preset = user.get("preset", DEFAULTS["preset"])
    if preset not in PRESETS:
        raise ConfigError("%spreset: %r is not one of %s" % (where, preset, ", ".join(PRESETS)))
    cfg = dict(DEFAULTS)
    cfg.update(PRESETS[preset])
    for key, value in user.items():
        cfg[key] = _check_type(key, value, DEFAULTS[key])
    _validate(cfg, where)
    if cfg["crop"] is None:
        cfg["crop"] = DATASET_CROP.get(cfg["dataset"])
    if cfg["border_depth"] is None:
        cfg["border_depth"] = 0.7 * cfg["max_depth"] + 0.3 * cfg["min_depth"]
    if cfg["perceptual"] == "auto" and cfg["vgg_weights"] != VGG_FROM_IMAGE:
        cfg["perceptual"] = "on" if cfg["vgg_weights"] or cfg["perceptual_net"] == STANDIN else "off"
    return cfg


def is_host_path(key, value):
    """Does a path key's value name a file or folder on the host (not unset, not 'image')?"""
    return value is not None and not (key == "vgg_weights" and value == VGG_FROM_IMAGE)


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that `1e-3` is a number.

    PyYAML follows YAML 1.1, whose floats need a dot (`1.0e-3`), so `lr: 1e-3` came
    back as the string '1e-3'; YAML 1.2 (and people) read it as a number. The one
    YAML reader of cell files (load_config) and study files (harness/yamlmarks.py).
    """


# Appended after YAML 1.1's own resolvers, so ints, dotted floats, bools stay as they were.
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def load_yaml(text):
    """A YAML document (str or stream) as Python data, with YamlLoader."""
    return yaml.load(text, Loader=YamlLoader)


def load_config(path):
    """Read a cell YAML file and resolve it; errors name the file and the key."""
    where = "%s: " % path
    if not os.path.isfile(path):
        raise ConfigError("%sno such config file" % path)
    with open(path) as f:
        try:
            user = load_yaml(f) or {}
        except yaml.YAMLError as e:
            raise ConfigError("%sinvalid YAML (%s)" % (where, str(e).splitlines()[0]))
    return resolve(user, where)
