"""Spike statistics of one training log: the one definition the table, Table 3 and Fig. 8 use.

A logged iteration is a spike when its total loss, or its pre-clip global gradient norm,
is not finite, or exceeds k times the running median of the previous up to SPIKE_WINDOW
finite values (k = SPIKE_FACTOR unless the caller names another), provided at least
SPIKE_MIN_HISTORY earlier finite values exist. "Exceeds k times" is written sign-safe,
value - median > (k - 1) * |median|, because the confidence-weighted loss goes negative.
Counts are per *logged* line, so `log_every` > 1 undercounts short spikes.
"""
from __future__ import annotations

import numpy as np

__all__ = ["SPIKE_FACTOR", "SPIKE_WINDOW", "SPIKE_MIN_HISTORY", "NETWORKS", "LOG_FIELDS",
           "spike_mask", "spike_masks", "spike_stats"]

SPIKE_FACTOR = 10.0     # k: a spike exceeds k x the running median
SPIKE_WINDOW = 50       # logged values the running median looks back over
SPIKE_MIN_HISTORY = 10  # earlier finite values needed before anything counts as a spike
NETWORKS = ("netD", "netA", "netL", "netV", "netC")   # the original's names; train.jsonl grad_norm_<net>
LOG_FIELDS = ("iter", "loss_total", "grad_norm", "clipped", "time") + tuple("grad_norm_" + n for n in NETWORKS)


def _running_median(values: np.ndarray) -> tuple:
    """(median of the previous SPIKE_WINDOW finite values, how many there were), per position.

    Vectorised: each row of a sliding window holds the previous values (non-finite as NaN);
    sorting puts NaN last, so the median is read from the first `k` finite entries of a row.
    """
    padded = np.full(SPIKE_WINDOW + values.size, np.nan)
    np.copyto(padded[SPIKE_WINDOW:], values, where=np.isfinite(values))
    # row i views padded[i:i + SPIKE_WINDOW] (as sliding_window_view, without its per-call checks:
    # this runs twice per log, 20,000 times in a 10,000-cell report)
    step = padded.strides[0]
    windows = np.sort(np.lib.stride_tricks.as_strided(padded, (values.size, SPIKE_WINDOW), (step, step)), axis=1)
    k = SPIKE_WINDOW - np.isnan(windows).sum(axis=1)
    rows = np.arange(values.size)
    lo, hi = windows[rows, np.maximum((k - 1) // 2, 0)], windows[rows, np.maximum(k // 2, 0)]
    return (lo + hi) / 2, k


def spike_mask(values, factor: float = SPIKE_FACTOR) -> np.ndarray:
    """True where a logged value is a spike (the definition in the module docstring)."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    if values.size <= SPIKE_MIN_HISTORY:
        return ~finite
    median, history = _running_median(values)
    with np.errstate(invalid="ignore"):
        over = values - median > (factor - 1) * np.abs(median)
    return ~finite | ((history >= SPIKE_MIN_HISTORY) & finite & over)


def _first(iters: np.ndarray, mask: np.ndarray) -> float:
    return float(iters[mask][0]) if mask.any() else np.nan


def _leading_network(cols: dict, at: int) -> str | None:
    """The network whose pre-clip gradient norm is largest at logged line `at` (non-finite wins)."""
    norms = {n: cols["grad_norm_" + n][at] for n in NETWORKS
             if "grad_norm_" + n in cols and not np.isnan(cols["grad_norm_" + n][at])}
    if not norms:
        return None
    return max(norms, key=lambda n: np.inf if not np.isfinite(norms[n]) else norms[n])


def spike_masks(cols: dict, factor: float = SPIKE_FACTOR) -> tuple:
    """(loss spikes, gradient-norm spikes) of one log's columns; a NaN norm was not logged, no spike."""
    loss = np.asarray(cols.get("loss_total", []), dtype=float)
    grad = np.asarray(cols.get("grad_norm", np.full(loss.size, np.nan)), dtype=float)
    return spike_mask(loss, factor), spike_mask(grad, factor) & ~np.isnan(grad)


def spike_stats(cols: dict, factor: float = SPIKE_FACTOR, masks: tuple | None = None) -> dict:
    """Summaries of one log's columns (arrays keyed as LOG_FIELDS; absent keys allowed).

    masks: spike_masks(cols, factor) when the caller has them already.

    Returns:
        n_spikes (loss or gradient), n_loss_spikes, n_grad_spikes, first_spike_iter,
        first_nonfinite_iter, spike_network (the largest network gradient at the first spike,
        or at the first non-finite line when there is no spike), clipped_frac.
    """
    loss = np.asarray(cols.get("loss_total", []), dtype=float)
    n = loss.size
    grad = np.asarray(cols.get("grad_norm", np.full(n, np.nan)), dtype=float)
    iters = np.asarray(cols.get("iter", np.arange(n)), dtype=float)
    loss_spikes, grad_spikes = masks if masks is not None else spike_masks(cols, factor)
    spikes = loss_spikes | grad_spikes
    nonfinite = ~np.isfinite(loss) | np.isinf(grad)
    anchor = np.flatnonzero(spikes if spikes.any() else nonfinite)
    clipped = np.asarray(cols.get("clipped", []), dtype=float)
    clipped = clipped[~np.isnan(clipped)]
    return {
        "n_spikes": int(spikes.sum()), "n_loss_spikes": int(loss_spikes.sum()),
        "n_grad_spikes": int(grad_spikes.sum()),
        "first_spike_iter": _first(iters, spikes), "first_nonfinite_iter": _first(iters, nonfinite),
        "spike_network": _leading_network(cols, int(anchor[0])) if anchor.size else None,
        "clipped_frac": float(clipped.mean()) if clipped.size else np.nan,
    }
