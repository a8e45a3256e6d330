"""One definition of a failed run: Table 3, Fig. 8, `repro compare` and the causes report read it.

A cell that ended (done or diverged) failed when any of these holds, each counted apart:

- nonfinite: training stopped on a non-finite loss or gradient (state diverged);
- spiking: its log has a loss or pre-clip gradient-norm spike (harness/spikes.py, k = the
  collected table's spike factor, SPIKE_FACTOR by default);
- degenerate: it is no better than flat depth on the same test images: its SIDE is at or
  above the flat-depth baseline's (SIDE_MARGIN 0), or its MAD (exact angle) is within
  MAD_MARGIN (25%) of flat's. A model that learned no shape predicts about one depth. The
  margins sit between what learned and collapsed runs score at cpu-small (built-in faces,
  matrices/edge-cpu.yml and the default study): runs that learn reach SIDE 0.83-0.89 and
  MAD 0.35-0.43 times flat's, so SIDE barely separates and needs no margin, while collapsed
  runs end at SIDE 1.0-1.2 or MAD 0.9-1.2 times flat's.

Cells that did not end (an error, skipped, still running) have no outcome (NaN): they are
counted as lost, never as passed or failed. Failure rates get exact (Clopper-Pearson)
intervals and two groups Fisher's exact test, both from scipy: a failure is a 0/1 outcome,
for which a t interval is the wrong tool.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["SIDE_MARGIN", "MAD_MARGIN", "KINDS", "OUTCOME_COLUMNS", "INPUTS", "with_failures", "rate_interval", "fisher_p",
           "describe_rate"]

SIDE_MARGIN = 0.0            # degenerate: SIDE >= (1 - SIDE_MARGIN) x flat's ...
MAD_MARGIN = 0.25            # ... or MAD >= (1 - MAD_MARGIN) x flat's
KINDS = ("nonfinite", "spiking", "degenerate")
OUTCOME_COLUMNS = ("failed",) + tuple("failed_" + k for k in KINDS)   # 1.0 / 0.0, NaN: no outcome
INPUTS = ("state", "n_spikes", "side_mean", "flat_side_mean", "mad_mean", "flat_mad_mean")   # what with_failures reads
_ENDED = ("done", "diverged")


def _column(df: pd.DataFrame, name: str) -> pd.Series:
    """A numeric column; all NaN where the table has none (a hand-made table, an old run)."""
    return pd.to_numeric(df[name], errors="coerce") if name in df else pd.Series(math.nan, index=df.index)


def _degenerate(df: pd.DataFrame) -> pd.Series:
    """No better than flat depth by the margins, on SIDE or on MAD (False where unknown)."""
    side = _column(df, "side_mean") >= (1.0 - SIDE_MARGIN) * _column(df, "flat_side_mean")
    mad = _column(df, "mad_mean") >= (1.0 - MAD_MARGIN) * _column(df, "flat_mad_mean")
    return side | mad


def with_failures(df: pd.DataFrame) -> pd.DataFrame:
    """df with OUTCOME_COLUMNS: each kind of failure, and `failed` (any of them), per ended cell."""
    ended = df["state"].isin(_ENDED) if len(df) else pd.Series(dtype=bool)
    kinds = {
        "nonfinite": df["state"] == "diverged",
        "spiking": _column(df, "n_spikes").fillna(0) > 0,
        "degenerate": (df["state"] == "done") & _degenerate(df),
    } if len(df) else {k: pd.Series(dtype=bool) for k in KINDS}
    out = {"failed_" + k: v.astype(float).where(ended) for k, v in kinds.items()}
    out["failed"] = pd.concat(list(out.values()), axis=1).max(axis=1).where(ended) if len(df) else pd.Series(dtype=float)
    return df.assign(**out)


def rate_interval(failures: int, n: int, level: float = 0.95) -> tuple[float, float, float]:
    """(rate, low, high): the exact Clopper-Pearson interval; NaNs when n is 0."""
    if n == 0:
        return math.nan, math.nan, math.nan
    ci = stats.binomtest(int(failures), int(n)).proportion_ci(confidence_level=level, method="exact")
    return failures / n, float(ci.low), float(ci.high)


def fisher_p(failures_a: int, n_a: int, failures_b: int, n_b: int) -> float:
    """Two-sided p of Fisher's exact test on the 2x2 table; NaN when no test is possible
    (both groups all failed or all passed: the table has an empty column)."""
    table = np.array([[failures_a, n_a - failures_a], [failures_b, n_b - failures_b]])
    if (table.sum(axis=0) == 0).any():
        return math.nan
    return float(stats.fisher_exact(table).pvalue)


def describe_rate(failures: int, n: int) -> str:
    """'2/5 (40%, 95% CI 5-85%)' for a table cell."""
    if n == 0:
        return "-"
    rate, low, high = rate_interval(failures, n)
    return f"{failures}/{n} ({100 * rate:.0f}%, 95% CI {100 * low:.0f}-{100 * high:.0f}%)"
