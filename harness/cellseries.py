"""What the report draws of one cell besides its table row: curves, spike marks, score histograms.

`collect` builds one `CellSeries` per cell from the train.jsonl columns it parses anyway
(each log is read once per change of its folder); the cell pages, Fig. 8 and the
gradient-norm figure draw from it, so the spike marks are the table's (same k, same
definition). Curves are float32: plenty for a plot, half the memory of float64.
"""
from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["SCORE_BINS", "CellSeries", "histogram"]

SCORE_BINS = 20   # bins of the per-image SIDE and MAD histograms


def histogram(values) -> tuple[np.ndarray, np.ndarray] | None:
    """(bin edges, counts) of the finite values; None when there are none."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    counts, edges = np.histogram(values, bins=SCORE_BINS)
    return edges.astype(np.float32), counts.astype(np.int32)


@dataclasses.dataclass(frozen=True)
class CellSeries:
    """One cell's curves (one entry per good train.jsonl line) and test-score histograms."""
    iter: np.ndarray           # float32
    loss_total: np.ndarray     # float32, non-finite kept
    grad_norm: np.ndarray      # float32, pre-clip global norm; NaN where not logged
    clipped: np.ndarray        # bool: clipping changed the gradient on this step
    loss_spikes: np.ndarray    # bool: harness/spikes.py on loss_total, at the collect's k
    grad_spikes: np.ndarray    # bool: the same on grad_norm
    side_hist: tuple | None = None   # (edges, counts) of per-image SIDE x1e-2
    mad_hist: tuple | None = None    # (edges, counts) of per-image MAD (deg.)

    @classmethod
    def from_log(cls, cols: dict, masks: tuple, scores=None) -> CellSeries:
        """From a log's float64 columns (LOG_FIELDS), spikes.spike_masks, and eval_scores (side, mad)."""
        n = len(cols["loss_total"])
        f32 = lambda key: np.asarray(cols.get(key, np.full(n, np.nan)), dtype=np.float32)  # noqa: E731
        has_scores = scores is not None and len(scores)
        return cls(iter=f32("iter"), loss_total=f32("loss_total"), grad_norm=f32("grad_norm"),
                   clipped=np.nan_to_num(f32("clipped")) > 0.5, loss_spikes=masks[0], grad_spikes=masks[1],
                   side_hist=histogram(scores["side"] * 100) if has_scores else None,
                   mad_hist=histogram(scores["mad"]) if has_scores else None)

    def __len__(self) -> int:
        return len(self.iter)

    def __getitem__(self, field: str) -> np.ndarray:
        """A curve by its train.jsonl key: iter, loss_total, grad_norm, clipped."""
        return getattr(self, field)

    def spikes(self, field: str) -> np.ndarray:
        """The spike mask of loss_total or grad_norm."""
        return {"loss_total": self.loss_spikes, "grad_norm": self.grad_spikes}[field]
