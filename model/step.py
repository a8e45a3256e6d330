"""The one guarded training step that ours and the authors' loops both run.

After the forward pass: zero the gradients, backpropagate, inject a NaN if the
cell asks for one, take the pre-clip diagnostics per network, stop on the first
non-finite loss or gradient (naming the network), clip (none|norm|value), step
the optimizers, and return the train.jsonl record. To change clipping, edit
`clip_gradients`; nothing else clips. Python 3.6 / PyTorch 1.2 compatible.
"""
from collections import OrderedDict

import numpy as np
import torch

from .networks import NETWORK_NAMES
from .runtime import Diverged

__all__ = ["guarded_step", "grad_diagnostics", "clip_gradients", "should_log", "progress_line"]

PROGRESS_EVERY = 50  # iterations between progress lines on stdout (and the first one)


def grad_diagnostics(nets):
    """Pre-clip gradient norms (global and per network), max |grad|, first non-finite network.

    Args:
        nets: a ModuleDict of networks keyed by model.networks.NETWORK_NAMES (absent ones skipped).
    Returns:
        (stats, bad): stats holds grad_norm_<net>, grad_norm, grad_max_abs; bad the first
        network (in NETWORK_NAMES order) whose gradient is not finite, else None.
    """
    stats, total_sq, max_abs, bad = {}, 0.0, 0.0, None
    for name in NETWORK_NAMES:
        if name not in nets:
            continue
        grads = [p.grad.detach() for p in nets[name].parameters() if p.grad is not None]
        sq, peak = _sum_of_squares_and_peak(grads) if grads else (0.0, 0.0)
        stats["grad_norm_" + name] = sq ** 0.5
        if bad is None and not np.isfinite(sq):
            bad = name
        total_sq += sq
        max_abs = max(max_abs, peak)
    stats["grad_norm"] = total_sq ** 0.5
    stats["grad_max_abs"] = max_abs
    return stats, bad


def _sum_of_squares_and_peak(grads):
    """Sum over the tensors of their float64 sums of squares, added in order; max |g|.

    One read-back per quantity, not one per tensor: the per-tensor sums and maxima are the
    same reductions either way, and adding them in order in Python floats is the float64
    tensor additions they replace (an explicit loop: Python >= 3.12's sum() compensates).
    """
    sq = 0.0
    for square in torch.stack([(g.double() ** 2).sum() for g in grads]).tolist():
        sq += square
    return sq, max(torch.stack([g.abs().max() for g in grads]).tolist())


def clip_gradients(cfg, nets, stats):
    """Apply the cell's clipping to all networks' gradients; returns whether it changed any."""
    params = [p for p in nets.parameters() if p.grad is not None]
    threshold = cfg["clip_threshold"]
    if cfg["clip"] == "norm":
        torch.nn.utils.clip_grad_norm_(params, threshold)
        return stats["grad_norm"] > threshold
    if cfg["clip"] == "value":
        torch.nn.utils.clip_grad_value_(params, threshold)
        return stats["grad_max_abs"] > threshold
    return False


def _check_finite(loss, bad, iteration):
    if not torch.isfinite(loss).item():
        raise Diverged(iteration, bad or "loss", "non-finite loss %r at iteration %d" % (float(loss), iteration))
    if bad is not None:
        raise Diverged(iteration, bad, "non-finite gradient in %s at iteration %d" % (bad, iteration))


def guarded_step(cfg, nets, optimizers, losses, iteration):
    """Backward, diagnose, check, clip and step; returns the train.jsonl record (no position fields).

    Args:
        cfg: the resolved cell (clip, clip_threshold, inject_nan_at).
        nets: ModuleDict of the networks by name (netD, netA, ...), ours or theirs.
        optimizers: the optimizers to zero and step (ours: one Adam; theirs: one per network).
        losses: ordered {record key: scalar tensor}; must hold "loss_total", the loss backpropagated.
        iteration: the global iteration (for NaN injection and the Diverged message).
    Raises:
        Diverged: the loss or a network's gradient is not finite (nothing was stepped).
    """
    loss = losses["loss_total"]
    for optimizer in optimizers:
        optimizer.zero_grad()
    loss.backward()
    if cfg["inject_nan_at"] is not None and iteration == cfg["inject_nan_at"]:
        next(nets["netD"].parameters()).grad.fill_(float("nan"))
    stats, bad = grad_diagnostics(nets)
    _check_finite(loss, bad, iteration)
    clipped = clip_gradients(cfg, nets, stats)
    for optimizer in optimizers:
        optimizer.step()
    record = OrderedDict((key, float(value.detach())) for key, value in losses.items())
    record.update(stats)
    record["clipped"] = bool(clipped)
    record["lr"] = optimizers[0].param_groups[0]["lr"]
    return record


def should_log(iteration, cfg):
    """Whether the step just done (iteration counted from 1) goes to train.jsonl."""
    return (iteration - 1) % cfg["log_every"] == 0


def progress_line(record, iteration, total):
    """The stdout progress line after `iteration` steps (counted from 1), or None between lines."""
    if iteration % PROGRESS_EVERY and iteration != 1:
        return None
    return "epoch %d iter %d/%d loss %.4f grad %.3g%s" % (
        record["epoch"], iteration, total, record["loss_total"], record["grad_norm"],
        " clipped" if record["clipped"] else "")
