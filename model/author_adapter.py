"""`impl: author`: train the original Unsup3D code, unmodified, under our run-folder contract.

`python -m model.train` dispatches here. Their code (elliottwu/unsup3d @ dc96141) is
imported from the checkout model.author_code finds (in this order: the cell's
`author_code_dir`, $REPRO_AUTHOR_CODE_DIR, <project>/third_party/unsup3d where
scripts/setup.sh fetches it, <project>/../shared/third_party/unsup3d) through
model.author_shims, and THEIR
`Trainer` + `Unsup3D` run with a cfgs dict generated from the resolved cell. What
the study needs is added from outside, on the instances, never in their files:

- their `model.backward` is replaced (bound method) by model.step.guarded_step, the
  step our trainer runs: zero_grad of their five Adams, loss_total.backward(),
  pre-clip diagnostics over netD/netA/netL/netV/netC, divergence check, clipping
  (none/norm/value at clip_threshold), step of their five Adams; one train.jsonl
  line with our key names;
- their `trainer.load_checkpoint` is wrapped to learn the resumed epoch and cut
  train.jsonl back to it (their trainer resumes per epoch from checkpoints/*.pth);
- their `trainer.save_checkpoint` is wrapped to fsync the log and draw samples;
- evaluation runs their `model.forward` on our test loader (their forward computes
  per-image acc_sie_masked / acc_normal_masked) and writes our eval.json /
  eval_scores.csv (the flat-depth baseline by our metric code), samples from their
  model's tensors via model.samples.

Fixed by their code, so set here and recorded in config.json `author_overrides`:
image size 64 and the paper widths (model.py hard-codes them), Adam weight decay
5e-4. With perceptual off their PerceptualLoss still runs (random VGG16 weights)
and is weighted by lam_perc 0. Python 3.6 / PyTorch 1.2 compatible.
"""
import argparse
import os
import signal
import sys
import time
import types
from collections import OrderedDict

import torch
import torch.nn as nn

from .author_code import find_author_code
from .config import ConfigError
from .data import make_loaders
from .env import fingerprint, write_env
from .evaluate import Unscored, join_scores, score_batch
from .exitcodes import EXIT_DIVERGED, EXIT_DONE, EXIT_TERMINATED
from .geometry import intrinsics
from .layouts import has_depth
from .networks import NETWORK_NAMES
from .renderer import RendererError
from .runfiles import JsonlLog, read_jsonl, write_json
from .numerics import apply_flags, settle
from .runtime import (Diverged, Terminated, data_dir_for, device_for, perceptual_setup, perturb_init,
                      set_precision, write_diverged)
from .samples import decomposition_rows, save_decomposition_grid
from .step import guarded_step, progress_line, should_log

__all__ = ["train_author", "author_code_dir", "author_config", "author_cfgs", "AUTHOR_FIXED"]

# what their model.py / networks.py hard-code (64x64 layers, paper widths, Adam weight decay)
AUTHOR_FIXED = OrderedDict([("image_size", 64), ("nf", 64), ("zdim", 256), ("conf_nf", 64),
                            ("conf_zdim", 128), ("enc_nf", 32), ("weight_decay", 5e-4)])


def author_code_dir(cfg):
    """The checkout of their code to import (model.author_code's lookup); ConfigError if none."""
    path, why = find_author_code(cfg.get("author_code_dir"))
    if path is None:
        raise ConfigError(why)
    return path


def author_config(cfg, log=print):
    """cfg with what their code fixes; returns (config, {key: [asked, used]})."""
    out = dict(cfg)
    overrides = OrderedDict()
    for key, value in AUTHOR_FIXED.items():
        if cfg[key] != value:
            overrides[key] = [cfg[key], value]
            out[key] = value
    if overrides:
        log("impl author: their networks are fixed, so %s" % ", ".join(
            "%s %s -> %s" % (k, a, b) for k, (a, b) in overrides.items()))
    out["impl"] = "author"
    out["author_overrides"] = overrides
    return out, overrides


def author_cfgs(cfg, data_dir, out_dir, device):
    """Their cfgs dict (the keys of their experiments/train_synface.yml) for one cell."""
    paired = has_depth(cfg["dataset"])
    return {
        # trainer
        "run_train": True, "run_test": False, "num_epochs": cfg["num_epochs"],
        "batch_size": cfg["batch_size"], "checkpoint_dir": os.path.join(out_dir, "checkpoints"),
        "save_checkpoint_freq": 1, "keep_num_checkpoint": 2, "resume": True,
        "use_logger": False, "log_freq": 1000, "archive_code": False,
        # data
        "num_workers": cfg["num_workers"], "image_size": cfg["image_size"], "crop": cfg["crop"],
        "load_gt_depth": paired, "paired_data_dir_names": ["image", "depth"],
        "paired_data_filename_diff": ["image", "depth"], "train_val_data_dir": data_dir,
        "test_data_dir": os.path.join(data_dir, "test"),
        # model
        "model_name": "unsup3d_author", "device": str(device),
        "min_depth": cfg["min_depth"], "max_depth": cfg["max_depth"], "border_depth": cfg["border_depth"],
        "xyz_rotation_range": cfg["xyz_rotation_range"], "xy_translation_range": cfg["xy_translation_range"],
        "z_translation_range": cfg["z_translation_range"], "use_conf_map": cfg["use_conf_map"],
        "lam_perc": cfg["lam_perc"] if cfg["perceptual"] == "on" else 0.0, "lam_flip": cfg["lam_flip"],
        "lam_depth_sm": cfg["lam_depth_sm"],
        "lr": cfg["lr"],
        # renderer
        "rot_center_depth": cfg["rot_center_depth"], "fov": cfg["fov"], "tex_cube_size": 2,
        "renderer_min_depth": cfg["renderer_near"], "renderer_max_depth": cfg["renderer_far"],
        "seed": cfg["seed"],
    }


# ---------------------------------------------------------------------------
# the step they run, with our diagnostics and clipping

_LOSS_KEYS = (("loss_l1", "loss_l1_im"), ("loss_l1_flip", "loss_l1_im_flip"),
              ("loss_perc", "loss_perc_im"), ("loss_perc_flip", "loss_perc_im_flip"))


def _nets(model):
    return nn.ModuleDict([(n, getattr(model, n)) for n in NETWORK_NAMES if n in model.network_names])


def author_step(cfg, model, iteration):
    """Their backward() as our guarded step: returns the train.jsonl record (no position fields)."""
    losses = OrderedDict([("loss_total", model.loss_total)])
    for key, attr in _LOSS_KEYS:
        if key.startswith("loss_perc") and cfg["perceptual"] != "on":
            continue  # weighted by 0 and computed with random VGG weights: not a loss of this run
        losses[key] = getattr(model, attr)
    optimizers = [getattr(model, name) for name in model.optimizer_names]
    return guarded_step(cfg, _nets(model), optimizers, losses, iteration)


class _Hooks(object):
    """Instance-level wrappers around their trainer and model (their classes untouched)."""

    def __init__(self, cfg, trainer, out_dir, train_log, loaders, log):
        self.cfg, self.trainer, self.model = cfg, trainer, trainer.model
        self.out_dir, self.train_log, self.loaders, self.log = out_dir, train_log, loaders, log
        self.per_epoch = len(trainer.train_loader)
        self.iteration, self.offset, self.tic, self.start = 0, 0.0, None, time.time()
        self.stop = {"signal": None}
        self._orig = {"forward": trainer.model.forward, "load": trainer.load_checkpoint,
                      "save": trainer.save_checkpoint}
        trainer.model.forward = self.forward
        trainer.model.backward = self.backward
        trainer.load_checkpoint = self.load_checkpoint
        trainer.save_checkpoint = self.save_checkpoint

    def forward(self, input):
        if torch.is_grad_enabled():
            self.tic = time.time()
        return self._orig["forward"](input)

    def backward(self):
        if self.stop["signal"]:
            raise Terminated()
        record = author_step(self.cfg, self.model, self.iteration)
        now = time.time()
        record.update(epoch=self.trainer.current_epoch, iter=self.iteration,
                      seconds=now - (self.tic or now), time=self.offset + now - self.start)
        self.iteration += 1
        if should_log(self.iteration, self.cfg):
            self.train_log.append(record)
        line = progress_line(record, self.iteration, self.per_epoch * self.cfg["num_epochs"])
        if line:
            self.log(line)

    def load_checkpoint(self, optim=True):
        epoch = self._orig["load"](optim=optim)
        self.iteration = epoch * self.per_epoch
        self.train_log.truncate_after("iter", self.iteration)  # their resume redoes the epoch
        kept = read_jsonl(self.train_log.path)
        self.offset = kept[-1]["time"] if kept else 0.0
        if epoch:
            self.log("resuming their checkpoint at epoch %d (iteration %d)" % (epoch, self.iteration))
        return epoch

    def save_checkpoint(self, epoch, optim=True):
        self._orig["save"](epoch, optim=optim)
        self.train_log.sync()
        save_author_samples(self.cfg, self.model, self.loaders.get("val"),
                            os.path.join(self.out_dir, "samples", "epoch%03d.png" % epoch))


# ---------------------------------------------------------------------------
# evaluation and samples from their model

def _their_forward(model, batch, device):
    model.set_eval()
    with torch.no_grad():
        if model.load_gt_depth:
            model.forward((batch[0].to(device), batch[1].to(device)))
        else:
            model.forward((batch[0] if isinstance(batch, (list, tuple)) else batch).to(device))
    model.set_train()


def save_author_samples(cfg, model, loader, path):
    """The decomposition grid of model.evaluate.save_samples (model.samples rows), from their model's tensors."""
    if loader is None:
        return
    batch = next(iter(loader))
    n = cfg["num_sample_images"]
    batch = [t[:n] for t in batch] if isinstance(batch, (list, tuple)) else batch[:n]
    _their_forward(model, batch, model.device)
    images = batch[0] if isinstance(batch, (list, tuple)) else batch
    save_decomposition_grid(path, decomposition_rows(cfg, images, model.canon_depth, model.canon_albedo,
                                                     model.canon_diffuse_shading, model.canon_normal,
                                                     model.recon_im))


def evaluate_author(cfg, model, loader, device):
    """Per-image SIDE and published MAD as their forward computes them (acc_sie_masked,
    acc_normal_masked); the exact angle, the flat-depth baseline and the floor by our metric
    code on their depth and normals, as a model.evaluate.Scores."""
    camera = types.SimpleNamespace(K=intrinsics(cfg["image_size"], cfg["fov"]).to(device))
    margin = (cfg["max_depth"] - cfg["min_depth"]) / 2
    parts = []
    for images, depth_image in loader:
        _their_forward(model, (images, depth_image), device)
        b = images.shape[0]
        out = types.SimpleNamespace(recon_depth=model.recon_depth, recon_normal=model.recon_normal,
                                    recon_valid=(model.recon_depth < cfg["max_depth"] + margin).float())
        with torch.no_grad():
            scores = score_batch(cfg, out, depth_image.to(device), camera)
        scores.update(side=model.acc_sie_masked[:b], mad_published=model.acc_normal_masked[:b])
        parts.append(scores)
    return join_scores(parts)


# ---------------------------------------------------------------------------
# entry point

def _perceptual(cfg):
    cfg, vgg_state, why = perceptual_setup(cfg)
    if vgg_state is None:
        why += "; their PerceptualLoss still runs on random VGG16 weights, weighted by lam_perc 0"
    return cfg, vgg_state, why


def _setup_runtime(pkg, cfg, device, in_force):
    """Their setup_runtime (seeds; on a GPU cuDNN benchmark+deterministic on), then the cell's
    settled numerics over it (the same as theirs where the cell asks for `stack`)."""
    args = argparse.Namespace(config=None, gpu=(device.index or 0) if device.type == "cuda" else None,
                              num_workers=cfg["num_workers"], seed=cfg["seed"])
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    runtime = pkg.setup_runtime(args)
    if visible is None:
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)  # theirs sets it for --gpu; keep ours as it was
        os.environ.pop("CUDA_DEVICE_ORDER", None)
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = visible
    apply_flags(in_force)
    return runtime


def train_author(cfg, out_dir, log=None):
    """Train and evaluate one `impl: author` cell into out_dir; returns the exit code."""
    if log is None:
        def log(msg):
            print(msg)
            sys.stdout.flush()
    from .author_shims import SHIM_STATE, author_code_info, load_author_code
    cfg, overrides = author_config(cfg, log)
    code_dir = author_code_dir(cfg)
    device = device_for(cfg)
    asked = cfg
    cfg, in_force = settle(cfg, device)
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    cfg, vgg_state, perceptual_why = _perceptual(cfg)
    try:
        pkg = load_author_code(code_dir, renderer=cfg["renderer"], align_corners=cfg["align_corners"],
                               vgg_state=vgg_state, num_workers=cfg["num_workers"])
    except RendererError as e:
        raise ConfigError(str(e))
    os.makedirs(os.path.join(out_dir, "checkpoints"), exist_ok=True)
    data_dir = data_dir_for(cfg, out_dir, log)
    loaders = make_loaders(cfg, data_dir, splits=("val", "test"))
    runtime = _setup_runtime(pkg, cfg, device, in_force)
    cfgs = dict(runtime, **author_cfgs(cfg, data_dir, out_dir, device))
    trainer = pkg.Trainer(cfgs, pkg.Unsup3D)
    model = trainer.model
    set_precision(cfg, [getattr(model, name) for name in model.network_names + ["PerceptualLoss"]], device)
    perturb_init(cfg, model.netD)

    write_json(os.path.join(out_dir, "config.json"), dict(asked, perceptual=cfg["perceptual"]))
    env = fingerprint(cfg, device, perceptual_why, in_force, author_code_dir=code_dir)
    env.update(author_code_info(code_dir))
    env.update({"impl": "author", "author_shims": dict(SHIM_STATE["used"]),
                "author_align_corners": SHIM_STATE["align_corners"], "author_overrides": overrides,
                "author_cfgs": cfgs, "author_resume": "per epoch (their checkpoints/checkpointNNN.pth)"})
    write_env(out_dir, env)

    train_log = JsonlLog(os.path.join(out_dir, "train.jsonl"))
    hooks = _Hooks(cfg, trainer, out_dir, train_log, loaders, log)
    signal.signal(signal.SIGTERM, lambda signum, frame: hooks.stop.update(signal=signum))
    try:
        trainer.train()
    except Diverged as d:
        write_diverged(out_dir, d)
        log("DIVERGED: %s" % d.reason)
        return EXIT_DIVERGED
    except Terminated:
        log("terminated at iteration %d; their trainer resumes from its last epoch checkpoint"
            % hooks.iteration)
        return EXIT_TERMINATED
    finally:
        train_log.close()
    if has_depth(cfg["dataset"]):
        scores = evaluate_author(cfg, model, loaders["test"], device)
        scores.summary["metric_source"] = "author forward (acc_sie_masked, acc_normal_masked)"
    else:
        scores = Unscored(cfg["dataset"], len(loaders["test"].dataset))
    scores.write(out_dir)
    save_author_samples(cfg, model, loaders["test"], os.path.join(out_dir, "samples", "test.png"))
    log("done: " + scores.summary_line())
    write_json(os.path.join(out_dir, "result.json"), {"state": "done", "iteration": hooks.iteration})
    return EXIT_DONE
