"""Score a run folder's last checkpoint: `python -m model.score RUN_DIR`.

For a run stopped early (or to re-score one): rebuilds our model from the run's
config.json, loads checkpoints/last.pt and writes eval.json, eval_scores.csv and
samples/test.png exactly as the trainer does at the end of a run.
"""
import json
import os
import sys

from . import compat
from .config import resolve
from .data import make_loaders
from .evaluate import evaluate_into
from .numerics import settle
from .runtime import CHECKPOINT, build_model, data_dir_for, device_for

__all__ = ["score_checkpoint"]


def score_checkpoint(run_dir, log=print):
    """Score run_dir's last checkpoint into run_dir; returns the eval.json summary."""
    with open(os.path.join(run_dir, "config.json")) as f:
        cfg = resolve(json.load(f))
    device = device_for(cfg)
    cfg = settle(cfg, device)[0]
    # scores do not use the losses: no VGG16 weights needed (the image's may not be here)
    model = build_model(dict(cfg, perceptual="off"), device)
    model.nets.load_state_dict(compat.load_checkpoint(os.path.join(run_dir, CHECKPOINT))["model"])
    loader = make_loaders(cfg, data_dir_for(cfg, run_dir, log), splits=("test",))["test"]
    return evaluate_into(cfg, model, loader, device, run_dir).summary


if __name__ == "__main__":
    print(score_checkpoint(sys.argv[1]))
