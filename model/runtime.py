"""What every trainer (ours, the authors') sets up the same way before its loop.

Device, seeding, the data folder, the nets with their precision and speed options, the perceptual
state, checkpoint names and the two ways a loop ends early (Diverged, Terminated; the
exit codes they map to are model.exitcodes, kept torch-free for the harness). Python 3.6 / PyTorch 1.2 compatible.
"""
import os
import random

import numpy as np
import torch

from . import compat
from .config import STANDIN, VGG_ENV, VGG_FROM_IMAGE, ConfigError
from .losses import STANDIN_SEED, load_vgg_state, standin_vgg_state
from .numerics import apply_speed
from .photogeo import PhotoGeoAutoencoder
from .precision import emulate_tf32_conv, emulate_tf32_matmul
from .runfiles import write_json

__all__ = ["CHECKPOINT", "Diverged", "Terminated", "device_for", "seed_everything", "data_dir_for", "perceptual_setup",
           "set_precision", "perturb_init", "build_model", "write_diverged"]

CHECKPOINT = os.path.join("checkpoints", "last.pt")  # our trainer's; theirs keeps checkpoints/*.pth


class Diverged(Exception):
    """A loss or gradient went non-finite: where (iteration), in which network, and why."""

    def __init__(self, iteration, network, reason):
        Exception.__init__(self, reason)
        self.iteration, self.network, self.reason = iteration, network, reason


class Terminated(Exception):
    """SIGTERM arrived: the loop stops at the next step boundary."""


def device_for(cfg):
    """The torch device the cell asks for; a cuda cell without a GPU is a ConfigError."""
    if cfg["device"] == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' requested but no CUDA GPU is visible; use device: cpu or auto")
    if cfg["device"] == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg["device"])


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def data_dir_for(cfg, out_dir, log):
    """The cell's data folder; the built-in faces are generated once into a cache beside the run."""
    if cfg["dataset"] != "builtin":
        return cfg["data_dir"]
    from .builtin_data import ensure_builtin
    cache = cfg["data_dir"] or os.path.join(os.path.dirname(os.path.abspath(out_dir)), ".data")
    return ensure_builtin(cfg, cache, log=log)


STANDIN_REASON = ("STAND-IN: VGG16 relu3_3 with seeded random weights (torchvision's init, seed %d), "
                  "not ImageNet's" % STANDIN_SEED)


def perceptual_setup(cfg, environ=None):
    """Settle the perceptual loss where the cell runs: on iff its VGG16 weights are there.

    vgg_weights: image names the file in $REPRO_VGG_WEIGHTS (set by the CUDA and
    cpu-torch1.8 images), which only this side can look at.

    Returns:
        (cfg with perceptual 'on' or 'off', the VGG16 state dict or None, why: for env.json)

    Raises:
        ConfigError: perceptual 'on' with vgg_weights: image and no weights file here.
    """
    if cfg["perceptual_net"] == STANDIN:
        return dict(cfg, perceptual="on"), standin_vgg_state(), STANDIN_REASON
    path, missing = _vgg_file(cfg, os.environ if environ is None else environ)
    setting = cfg["perceptual"]
    if setting == "auto":
        setting = "on" if path else "off"
    if setting == "off":
        why = missing or ("no vgg_weights given" if not cfg["vgg_weights"] else "perceptual: off in config")
        return dict(cfg, perceptual="off"), None, why
    if not path:
        raise ConfigError("perceptual: 'on' needs VGG16 weights, but %s" % missing)
    return dict(cfg, perceptual="on"), load_vgg_state(path), "vgg16 weights from %s" % os.path.realpath(path)


def _vgg_file(cfg, environ):
    """(path of the VGG16 weights or None, why there are none: '' unless vgg_weights: image)."""
    if cfg["vgg_weights"] != VGG_FROM_IMAGE:
        return cfg["vgg_weights"], ""
    path = environ.get(VGG_ENV)
    if not path:
        return None, "vgg_weights: image, and this environment sets no %s (see docker/README.md)" % VGG_ENV
    if not os.path.isfile(path):
        return None, ("vgg_weights: image, but %s=%s is no file: the image was built without VGG16 "
                      "weights (docker/README.md says how to add them)" % (VGG_ENV, path))
    return path, ""


def set_precision(cfg, modules, device):
    """TF32 on CPU, emulated (model/precision.py): conv operands in `modules`, and the matmuls of
    model/geometry.py. cfg is settled by model.numerics; on a GPU the real flags are set by
    model.numerics.apply_flags instead."""
    on_cpu = device.type != "cuda"
    if cfg["tf32"] is True and on_cpu:
        for module in modules:
            emulate_tf32_conv(module)
    emulate_tf32_matmul(cfg["tf32_matmul"] is True and on_cpu)


def perturb_init(cfg, net_d):
    """perturb_init: move the first weight of netD (ours or theirs) up by one float32 ulp, after
    seeding: the chaos-floor control, the smallest change to a run that is still a change."""
    if not cfg["perturb_init"]:
        return
    with torch.no_grad():
        first = next(net_d.parameters()).view(-1)
        first[:1] = compat.next_float_up(first[:1])


def build_model(cfg, device, vgg_state=None):
    """Our PhotoGeoAutoencoder on device with the cell's precision (cfg settled by model.numerics;
    vgg_state: perceptual_setup)."""
    model = PhotoGeoAutoencoder(cfg, vgg_state).to(device)
    set_precision(cfg, [model], device)
    perturb_init(cfg, model.nets["netD"])
    apply_speed(cfg, model.nets)
    return model


def write_diverged(out_dir, diverged):
    """result.json of a diverged run: the iteration and network that went non-finite."""
    write_json(os.path.join(out_dir, "result.json"),
               {"state": "diverged", "iteration": diverged.iteration, "network": diverged.network,
                "reason": diverged.reason})
