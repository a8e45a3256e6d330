"""Is a factor a cause? The difference between two groups of cells, with 95% intervals over seeds.

`compare(df, "tf32=false", "tf32=true", where=["stack=cpu"])` takes the collected table
(harness.collect), keeps the cells of each side, checks that the two sides differ in the
named factor only, and returns one `Effect` per metric:

- SIDE and MAD (done cells), spike count (done or diverged), divergence rate (0/1 per cell);
- paired by seed when both sides hold the same seeds (the difference per seed, then a
  t interval: `scipy.stats.ttest_rel`), else Welch's unequal-variance interval
  (`scipy.stats.ttest_ind(equal_var=False)`); both from scipy, at 95%;
- a verdict: an effect at 95% when a metric's interval excludes 0.

A factor is any column of the table: an axis (`clip`, `seed`, `stack`), a trainer key that
the study sweeps (`tf32`, `align_corners`, `deterministic`, `cpu_isa`: collect's `cfg.*`),
or a fingerprint key (`env.cpu_isa`, `env.torch`). Values compare as lower-case strings, so
`tf32=true` matches a boolean True.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["CompareError", "Effect", "Comparison", "METRICS", "DESIGN_KEYS", "MIN_SEEDS",
           "parse_selector", "factor_column", "design_columns", "normalized", "ended_seeds",
           "compare_groups", "compare"]

# metric name -> (table column, which cells count, unit shown)
METRICS = {
    "SIDE": ("side_mean", "done", "x1e-2"),
    "MAD": ("mad_mean", "done", "deg"),
    "spikes": ("n_spikes", "ended", "count"),
    "diverged": ("diverged", "ended", "rate"),
}
_SCALE = {"SIDE": 100.0}       # SIDE is stored in plain units, shown x1e-2 as in Table 3
# what defines a cell apart from its seed: two sides must agree on all of these but the factor
DESIGN_KEYS = ("stack", "impl", "clip", "clip_threshold", "dataset", "preset",
               "tf32", "align_corners", "deterministic", "cudnn_benchmark", "cpu_isa", "lr")
MIN_SEEDS = 2                  # fewer cells on a side cannot give an interval
_ENDED = ("done", "diverged")


class CompareError(ValueError):
    """A comparison that cannot be made; the message is one line for the user."""


@dataclasses.dataclass(frozen=True)
class Effect:
    """One metric's difference (side B minus side A) with its 95% interval."""
    metric: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    p: float                   # two-sided; nan when undefined (no spread on either side)
    paired: bool

    @property
    def significant(self) -> bool:
        return not (self.low <= 0.0 <= self.high)

    def to_dict(self) -> dict:
        return dict(dataclasses.asdict(self), significant=self.significant)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The effects of one factor, and the line a reader acts on."""
    factor: str
    side_a: str
    side_b: str
    effects: tuple
    seeds_a: tuple
    seeds_b: tuple
    stale_a: int = 0        # cells of group A made by other code than would run them now (harness/staleness.py)
    stale_b: int = 0

    @property
    def stale_note(self) -> str:
        """'group tf32=true: 2 cells stale ...' ('' when every cell is current)."""
        parts = ["group %s=%s: %d cells stale" % (self.factor, side, n)
                 for side, n in ((self.side_a, self.stale_a), (self.side_b, self.stale_b)) if n]
        return ("; ".join(parts) + " (`repro status` names what changed)") if parts else ""

    @property
    def verdict(self) -> str:
        hits = [e for e in self.effects if e.significant]
        name = "%s (%s -> %s)" % (self.factor, self.side_a, self.side_b)
        if not hits:
            return "%s: no effect at 95%% (%d vs %d seeds)" % (name, len(self.seeds_a), len(self.seeds_b))
        return "%s: an effect at 95%% on %s" % (name, ", ".join(_effect_text(e) for e in hits))

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([e.to_dict() for e in self.effects]).set_index("metric")


def _effect_text(e: Effect) -> str:
    return "%s %+.3g [%.3g, %.3g]" % (e.metric, e.diff, e.low, e.high)


def parse_selector(text: str, where: str = "argument") -> tuple:
    """'key=value' -> (key, value); a one-line CompareError naming the argument otherwise."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise CompareError("%s %r: expected KEY=VALUE, e.g. tf32=true" % (where, text))
    return key.strip(), value.strip()


def factor_column(df: pd.DataFrame, key: str) -> str:
    """The table column a factor name refers to: the name itself, axis.<name>, cfg.<name>, env.<name>."""
    for column in (key, "axis." + key, "cfg." + key, "env." + key):
        if column in df.columns:
            return column
    known = sorted(c for c in df.columns if c in DESIGN_KEYS or c.startswith(("cfg.", "env.", "axis.")))
    raise CompareError("no factor %r in the results; known: %s" % (key, ", ".join(known) or "none"))


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def canonical(value) -> str:
    """One spelling per value: 'none' for missing, lower case, numbers as floats (5 == 5.0)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "none"
    text = str(value).strip().lower()
    return repr(float(text)) if not isinstance(value, bool) and _NUMBER.match(text) else text


def normalized(values: pd.Series) -> pd.Series:
    return values.map(canonical)


def _select(df: pd.DataFrame, selectors: Iterable[tuple]) -> pd.DataFrame:
    for key, value in selectors:
        df = df[normalized(df[factor_column(df, key)]) == canonical(value)]
    return df


def design_columns(df: pd.DataFrame, factor_col: str) -> list:
    cols = [c for key in DESIGN_KEYS for c in (key, "cfg." + key, "axis." + key) if c in df.columns]
    factor = factor_col.split(".", 1)[-1]
    return [c for c in dict.fromkeys(cols) if c.split(".", 1)[-1] != factor]


def _check_one_factor(a: pd.DataFrame, b: pd.DataFrame, factor: str, design: Sequence[str]) -> None:
    """Refuse when anything but the factor (and the seed) differs between the two sides."""
    differ = [c for c in design if set(normalized(a[c])) != set(normalized(b[c]))]
    if differ:
        detail = "; ".join("%s: %s vs %s" % (c, sorted(set(normalized(a[c]))), sorted(set(normalized(b[c])))) for c in differ)
        raise CompareError("the two groups differ in more than %s (%s); add --where to fix them" % (factor, detail))


def _per_seed(side: pd.DataFrame, metric: str) -> pd.Series:
    column, which, _ = METRICS[metric]
    cells = side[side["state"] == "done"] if which == "done" else side[side["state"].isin(_ENDED)]
    values = (cells["state"] == "diverged").astype(float) if column == "diverged" else cells[column].astype(float)
    values = values * _SCALE.get(metric, 1.0)
    return values.groupby(cells["seed"]).mean().dropna()


def _interval(a: pd.Series, b: pd.Series, metric: str) -> Effect:
    shared = a.index.intersection(b.index)
    paired = len(shared) >= MIN_SEEDS
    if paired:
        a, b = a.loc[shared], b.loc[shared]
    if np.ptp(a.to_numpy()) == 0.0 and np.ptp(b.to_numpy()) == 0.0 or paired and np.ptp((b - a).to_numpy()) == 0.0:
        # no spread: the interval is the point (scipy would return nan)
        low = high = float(b.mean() - a.mean())
        p = 1.0 if low == 0.0 else 0.0
    else:
        res = (stats.ttest_rel(b.to_numpy(), a.to_numpy()) if paired
               else stats.ttest_ind(b.to_numpy(), a.to_numpy(), equal_var=False))
        ci = res.confidence_interval(0.95)
        low, high, p = float(ci.low), float(ci.high), float(res.pvalue)
    return Effect(metric, len(a), len(b), float(a.mean()), float(b.mean()), float(b.mean() - a.mean()),
                  low, high, p, paired)


def ended_seeds(side: pd.DataFrame) -> int:
    """How many seeds of a group ended (done or diverged): what an interval can use."""
    return int(side[side["state"].isin(_ENDED)]["seed"].nunique()) if len(side) else 0


def compare_groups(a: pd.DataFrame, b: pd.DataFrame, factor: str, value_a: str, value_b: str) -> Comparison:
    """The effects of going from group `a` to group `b`, which the caller made differ in `factor` only."""
    per_seed = [(m, _per_seed(a, m), _per_seed(b, m)) for m in METRICS]
    effects = tuple(_interval(sa, sb, m) for m, sa, sb in per_seed if len(sa) >= MIN_SEEDS and len(sb) >= MIN_SEEDS)
    return Comparison(factor, value_a, value_b, effects,
                      tuple(sorted(int(v) for v in a["seed"].unique())), tuple(sorted(int(v) for v in b["seed"].unique())),
                      _stale(a), _stale(b))


def _stale(side: pd.DataFrame) -> int:
    return int(side["stale"].astype("boolean").fillna(False).sum()) if "stale" in side else 0


def compare(df: pd.DataFrame, side_a: str, side_b: str, where: Sequence[str] = ()) -> Comparison:
    """Compare the cells selected by `side_a` and `side_b` (both 'FACTOR=VALUE', the same factor).

    Args:
        df: the collected table (harness.collect.collect).
        side_a, side_b: e.g. 'tf32=false' and 'tf32=true'.
        where: further 'KEY=VALUE' filters applied to both sides.

    Returns:
        The Comparison; raises CompareError (one line) when the groups differ in more than the
        factor or hold fewer than MIN_SEEDS seeds.
    """
    (fa, va), (fb, vb) = parse_selector(side_a, "group A"), parse_selector(side_b, "group B")
    if fa != fb:
        raise CompareError("the two groups name different factors (%s, %s); compare one factor at a time" % (fa, fb))
    if canonical(va) == canonical(vb):
        raise CompareError("both groups are %s=%s; name two different values" % (fa, va))
    df = _select(df, [parse_selector(w, "--where") for w in where])
    factor_col = factor_column(df, fa)
    a, b = _select(df, [(fa, va)]), _select(df, [(fb, vb)])
    for name, side in ((side_a, a), (side_b, b)):
        if ended_seeds(side) < MIN_SEEDS:
            raise CompareError("group %s has %d ended seed(s); at least %d are needed for an interval"
                               % (name, ended_seeds(side), MIN_SEEDS))
    _check_one_factor(a, b, fa, design_columns(df, factor_col))
    return compare_groups(a, b, fa, va, vb)
