"""Train and evaluate one cell: `python -m model.train --config CELL.yaml --out RUN_DIR`.

The only entry point executors use (locally, in containers, on Ray nodes). It
writes the run-folder contract (docs/run-folder.md): config.json, env.json,
train.jsonl, checkpoints/last.pt, result.json, eval.json, eval_scores.csv,
samples/. A run folder with a checkpoint resumes where it stopped; SIGTERM
saves a checkpoint at the next step and exits 143.

Exit codes: 0 done, 2 config/data error (one line on stderr), 3 diverged.
"""
import argparse
import os
import random
import signal
import sys
import time
from collections import OrderedDict

import numpy as np
import torch

from . import compat
from .allocator import keep_freed_memory
from .config import ConfigError, load_config
from .cpu_isa import reexec_with_cpu_isa
from .data import DataError, make_loaders, start_epoch
from .env import fingerprint, write_env
from .numerics import apply_flags, settle
from .evaluate import evaluate_into, save_samples
from .exitcodes import EXIT_DIVERGED, EXIT_DONE, EXIT_TERMINATED, EXIT_USAGE
from .runfiles import JsonlLog, write_json
from .runtime import (CHECKPOINT, Diverged, Terminated, build_model, data_dir_for, device_for,
                      perceptual_setup, seed_everything, write_diverged)
from .step import guarded_step, progress_line, should_log

__all__ = ["main", "train", "train_step", "make_optimizer"]


def make_optimizer(cfg, model):
    """One Adam over all networks == the original's one Adam per network (Adam is per-parameter)."""
    params = [p for p in model.nets.parameters() if p.requires_grad]
    return compat.adam(params, cfg["optimizer_impl"], lr=cfg["lr"], betas=(0.9, 0.999),
                       weight_decay=cfg["weight_decay"])


# ---------------------------------------------------------------------------
# checkpoints

def save_checkpoint(path, model, optimizer, position, elapsed):
    state = {
        "model": model.nets.state_dict(),
        "optimizer": optimizer.state_dict(),
        "position": position,  # {"epoch", "batch" (next batch in epoch), "iteration"}
        "elapsed": elapsed,
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
        "config": model.cfg,
    }
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, model, optimizer):
    state = compat.load_checkpoint(path)
    model.nets.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return state["position"], state["elapsed"]


# ---------------------------------------------------------------------------
# the loop

def _images(batch, device):
    return (batch[0] if isinstance(batch, (list, tuple)) else batch).to(device)


def train_step(cfg, model, optimizer, images, iteration):
    """One guarded optimisation step (model.step); returns the train.jsonl record (without position fields)."""
    out = model(images)
    losses = OrderedDict(("loss_" + k, v) for k, v in out.losses.items())
    return guarded_step(cfg, model.nets, [optimizer], losses, iteration)


def train(cfg, out_dir, log=print):
    """Run (or resume) training, then evaluation; returns the exit code."""
    device = device_for(cfg)
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    asked = cfg
    cfg, in_force = settle(cfg, device)
    apply_flags(in_force)
    seed_everything(cfg["seed"])
    os.makedirs(os.path.join(out_dir, "checkpoints"), exist_ok=True)
    data_dir = data_dir_for(cfg, out_dir, log)
    loaders = make_loaders(cfg, data_dir)
    cfg, vgg_state, perceptual_why = perceptual_setup(cfg)
    model = build_model(cfg, device, vgg_state)
    optimizer = make_optimizer(cfg, model)
    write_json(os.path.join(out_dir, "config.json"), dict(asked, perceptual=cfg["perceptual"]))
    write_env(out_dir, fingerprint(cfg, device, perceptual_why, in_force))

    ckpt = os.path.join(out_dir, CHECKPOINT)
    position, elapsed = {"epoch": 0, "batch": 0, "iteration": 0}, 0.0
    if os.path.isfile(ckpt):
        position, elapsed = load_checkpoint(ckpt, model, optimizer)
        log("resuming from %s at epoch %d, iteration %d" % (ckpt, position["epoch"], position["iteration"]))
    train_log = JsonlLog(os.path.join(out_dir, "train.jsonl"))
    train_log.truncate_after("iter", position["iteration"])  # lines past the checkpoint are redone

    stop = {"signal": None}
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.update(signal=signum))
    try:
        _run_epochs(cfg, model, optimizer, loaders, out_dir, position, elapsed, train_log, stop, device, log)
    except Diverged as d:
        write_diverged(out_dir, d)
        log("DIVERGED: %s" % d.reason)
        return EXIT_DIVERGED
    except Terminated:
        log("terminated: checkpoint saved at iteration %d; rerun to resume" % position["iteration"])
        return EXIT_TERMINATED
    finally:
        train_log.close()
    scores = evaluate_into(cfg, model, loaders["test"], device, out_dir)
    write_json(os.path.join(out_dir, "result.json"), {"state": "done", "iteration": position["iteration"]})
    log("done: " + scores.summary_line())
    return EXIT_DONE


def _run_epochs(cfg, model, optimizer, loaders, out_dir, position, elapsed, train_log, stop, device, log):
    ckpt = os.path.join(out_dir, CHECKPOINT)
    loader = loaders["train"]
    per_epoch = -(-len(loader.dataset) // cfg["batch_size"])  # the last batch may be partial
    total = per_epoch * cfg["num_epochs"]
    start = time.time() - elapsed
    model.train()
    while position["epoch"] < cfg["num_epochs"]:
        start_epoch(loader, position["epoch"], skip_batches=position["batch"])
        for batch in loader:
            tic = time.time()
            record = train_step(cfg, model, optimizer, _images(batch, device), position["iteration"])
            record.update(epoch=position["epoch"], iter=position["iteration"],
                          seconds=time.time() - tic, time=time.time() - start)
            position["iteration"] += 1
            position["batch"] += 1
            if should_log(position["iteration"], cfg):
                train_log.append(record)
            line = progress_line(record, position["iteration"], total)
            if line:
                log(line)
            if position["iteration"] % cfg["checkpoint_every"] == 0 or stop["signal"]:
                save_checkpoint(ckpt, model, optimizer, position, time.time() - start)
                train_log.sync()
            if stop["signal"]:
                raise Terminated()
        position["epoch"] += 1
        position["batch"] = 0
        save_checkpoint(ckpt, model, optimizer, position, time.time() - start)
        train_log.sync()
        save_samples(cfg, model, loaders["val"], device,
                     os.path.join(out_dir, "samples", "epoch%03d.png" % position["epoch"]))
        model.train()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="cell YAML (keys: model/config.py)")
    parser.add_argument("--out", required=True, help="run folder (created; resumed if it has a checkpoint)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        # the kernel set is fixed when torch first dispatches: restart with it before any work
        reexec_with_cpu_isa(cfg["cpu_isa"], ["--config", args.config, "--out", args.out])
        os.makedirs(args.out, exist_ok=True)
        keep_freed_memory()  # speed only: no number changes (model/allocator.py)
        if cfg["impl"] == "author":
            from .author_adapter import train_author
            return train_author(cfg, args.out)
        return train(cfg, args.out, log=lambda msg: print(msg, flush=True))
    except (ConfigError, DataError) as e:
        print("error: %s" % e, file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
