"""Is a factor a cause? The difference between two groups of cells, with 95% intervals over seeds.

`compare(df, "tf32=false", "tf32=true", where=["stack=cpu"])` takes the collected table
(harness.collect), keeps the cells of each side, checks that the two sides differ in the
named factor only, and returns one `Effect` per metric:

- SIDE and MAD (done cells), spike count (done or diverged): paired by seed when both
  sides hold the same seeds (the difference per seed, then a t interval:
  `scipy.stats.ttest_rel`), else Welch's unequal-variance interval
  (`scipy.stats.ttest_ind(equal_var=False)`), at 95%; each says how many cells a side lost
  (did not end, or ended without scores), since a factor that made runs fail would
  otherwise lose its worst seeds silently;
- failure rates (harness/failure.py: failed, and each kind apart: nonfinite, spiking,
  degenerate) per cell that ended, with exact Clopper-Pearson intervals per side and
  Fisher's exact test;
- a verdict: "a significant difference at 95%" where an interval excludes 0 (means) or
  Fisher's p < 0.05 (rates), else "no significant difference" (not "no effect": a null
  says only what these seeds could detect).

A factor is any column of the table: an axis (`clip`, `seed`, `stack`), a trainer key that
the study sweeps (`tf32`, `align_corners`, `deterministic`, `cpu_isa`: collect's factor columns),
or a fingerprint key (`env.cpu_isa`, `env.torch`). Values compare as lower-case strings, so
`tf32=true` matches a boolean True.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Optional, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from harness.failure import fisher_p, rate_interval, with_failures
from harness.matrix import AXES, FACTOR_AXES

__all__ = ["CompareError", "Effect", "Comparison", "METRICS", "DESIGN_KEYS", "MIN_SEEDS",
           "parse_selector", "factor_column", "design_columns", "normalized", "ended_seeds",
           "compare_groups", "compare", "chaos_floor", "FLOOR_FACTOR"]

# metric name -> (table column, which cells count, unit shown); MAD is the exact angle (eval.json
# mad_mean): Table 3's published formula adds a floor of a few degrees that no factor moves.
# Means compare seeds (t intervals); rates compare cells' 0/1 outcomes (harness/failure.py).
METRICS = {
    "SIDE": ("side_mean", "done", "x1e-2"),
    "MAD": ("mad_mean", "done", "deg"),
    "spikes": ("n_spikes", "ended", "count"),
    "failed": ("failed", "rate", "rate"),
    "nonfinite": ("failed_nonfinite", "rate", "rate"),
    "spiking": ("failed_spiking", "rate", "rate"),
    "degenerate": ("failed_degenerate", "rate", "rate"),
}
_SCALE = {"SIDE": 100.0}       # SIDE is stored in plain units, shown x1e-2 as in Table 3
# what defines a cell apart from its seed: two sides must agree on all of these but the factor
DESIGN_KEYS = tuple(a for a in AXES if a != "seed") + FACTOR_AXES  # seed is the replicate
MIN_SEEDS = 2                  # fewer cells on a side cannot give an interval
FLOOR_FACTOR = "perturb_init"  # the chaos floor: netD's first weight one ulp up (model/factors.py)
LEVEL = 0.95
_ENDED = ("done", "diverged")


class CompareError(ValueError):
    """A comparison that cannot be made; the message is one line for the user."""


@dataclasses.dataclass(frozen=True)
class Effect:
    """One metric's difference (side B minus side A) with its 95% interval and its test.

    Means (SIDE, MAD, spikes): a t interval on the difference over seeds (paired where both
    sides hold the same seeds). Rates (failed and each kind): the difference of the two
    failure rates, each side's exact Clopper-Pearson interval in a_low..b_high, and Fisher's
    exact p. p is NaN where no test is made (no spread; rates both all-0 or all-1): such a
    row is not a hypothesis and the causes report leaves it out of the correction.
    """
    metric: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    p: float
    paired: bool
    test: str = ""             # paired t | Welch t | Fisher exact | none (no spread)
    lost_a: int = 0            # cells of side A with no value for this metric (did not end / not done)
    lost_b: int = 0
    a_low: float = math.nan    # rates: each side's exact interval
    a_high: float = math.nan
    b_low: float = math.nan
    b_high: float = math.nan

    @property
    def significant(self) -> bool:
        if self.test == "Fisher exact":
            return self.p < 1 - LEVEL
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
        lost = ["%s lost %d vs %d cells" % (e.metric, e.lost_a, e.lost_b)
                for e in self.effects if e.metric in ("SIDE", "MAD") and (e.lost_a or e.lost_b)][:1]
        tail = " (%d vs %d seeds%s)" % (len(self.seeds_a), len(self.seeds_b), "; " + lost[0] if lost else "")
        if not hits:
            return "%s: no significant difference at 95%%%s" % (name, tail)
        return "%s: a significant difference at 95%% on %s%s" % (name, ", ".join(_effect_text(e) for e in hits), tail)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([e.to_dict() for e in self.effects]).set_index("metric")


def _effect_text(e: Effect) -> str:
    if e.test == "Fisher exact":
        return "%s %.0f%% -> %.0f%% (Fisher p %.3g)" % (e.metric, 100 * e.mean_a, 100 * e.mean_b, e.p)
    return "%s %+.3g [%.3g, %.3g]" % (e.metric, e.diff, e.low, e.high)


def parse_selector(text: str, where: str = "argument") -> tuple:
    """'key=value' -> (key, value); a one-line CompareError naming the argument otherwise."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise CompareError("%s %r: expected KEY=VALUE, e.g. tf32=true" % (where, text))
    return key.strip(), value.strip()


def factor_column(df: pd.DataFrame, key: str) -> str:
    """The table column a factor name refers to: the name itself, axis.<name>, env.<name>."""
    for column in (key, "axis." + key, "env." + key):
        if column in df.columns:
            return column
    known = sorted(c for c in df.columns if c in DESIGN_KEYS or c.startswith(("env.", "axis.")))
    raise CompareError("no factor %r in the results; known: %s" % (key, ", ".join(known) or "none"))


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def canonical(value) -> str:
    """One spelling per value: 'none' for missing, lower case, numbers as floats (5 == 5.0)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "none"
    text = str(value).strip().lower()
    return repr(float(text)) if not isinstance(value, bool) and _NUMBER.match(text) else text


def normalized(values: pd.Series) -> pd.Series:
    """canonical() of each value, worked out once per distinct (type, value): a column holds few,
    and the causes section normalises columns of 10,000 rows hundreds of times."""
    seen: dict = {}
    try:
        spelled = [seen[key] if (key := (type(v), v)) in seen else seen.setdefault(key, canonical(v)) for v in values]
    except TypeError:   # an unhashable value (a list from a hand-made table)
        return values.map(canonical)
    return pd.Series(spelled, index=values.index, name=values.name)


def _select(df: pd.DataFrame, selectors: Iterable[tuple]) -> pd.DataFrame:
    for key, value in selectors:
        df = df[normalized(df[factor_column(df, key)]) == canonical(value)]
    return df


def design_columns(df: pd.DataFrame, factor_col: str) -> list:
    cols = [c for key in DESIGN_KEYS for c in (key, "axis." + key) if c in df.columns]
    factor = factor_col.split(".", 1)[-1]
    return [c for c in dict.fromkeys(cols) if c.split(".", 1)[-1] != factor]


def _check_one_factor(a: pd.DataFrame, b: pd.DataFrame, factor: str, design: Sequence[str]) -> None:
    """Refuse when anything but the factor (and the seed) differs between the two sides."""
    values = {c: (set(normalized(a[c])), set(normalized(b[c]))) for c in design}
    differ = [c for c, (va, vb) in values.items() if va != vb]
    if differ:
        detail = "; ".join("%s: %s vs %s" % (c, sorted(values[c][0]), sorted(values[c][1])) for c in differ)
        # the value both sides have, where there is exactly one: the --where that fixes that key
        fixes = ["--where %s=%s" % (c.split(".", 1)[-1], next(iter(values[c][0] & values[c][1])))
                 for c in differ if len(values[c][0] & values[c][1]) == 1]
        raise CompareError("the two groups differ in more than %s (%s); add --where to fix them%s"
                           % (factor, detail, (", e.g. " + " ".join(fixes)) if fixes else ""))


def _values(side: pd.DataFrame, metric: str) -> pd.Series:
    """The metric per seed (means) or per cell (rates: 0/1, ended cells only)."""
    column, which, _ = METRICS[metric]
    if which == "rate":
        return with_failures(side)[column].dropna()
    cells = side[side["state"] == "done"] if which == "done" else side[side["state"].isin(_ENDED)]
    values = cells[column].astype(float) * _SCALE.get(metric, 1.0)
    return values.groupby(cells["seed"]).mean().dropna()


def _lost(side: pd.DataFrame, metric: str) -> int:
    """Cells of a group that give this metric no value (for means: per seed, so count seeds)."""
    values = _values(side, metric)
    total = side["seed"].nunique() if METRICS[metric][1] != "rate" else len(side)
    return int(total - len(values))


def _interval(a: pd.Series, b: pd.Series, metric: str) -> Effect:
    shared = a.index.intersection(b.index)
    paired = len(shared) >= MIN_SEEDS
    if paired:
        a, b = a.loc[shared], b.loc[shared]
    if np.ptp(a.to_numpy()) == 0.0 and np.ptp(b.to_numpy()) == 0.0 or paired and np.ptp((b - a).to_numpy()) == 0.0:
        # no spread: the interval is the point, and there is nothing to test
        low = high = float(b.mean() - a.mean())
        p, test = math.nan, "none"
    else:
        res = (stats.ttest_rel(b.to_numpy(), a.to_numpy()) if paired
               else stats.ttest_ind(b.to_numpy(), a.to_numpy(), equal_var=False))
        ci = res.confidence_interval(LEVEL)
        low, high, p = float(ci.low), float(ci.high), float(res.pvalue)
        test = "paired t" if paired else "Welch t"
    return Effect(metric, len(a), len(b), float(a.mean()), float(b.mean()), float(b.mean() - a.mean()),
                  low, high, p, paired, test)


def _rate(a: pd.Series, b: pd.Series, metric: str) -> Effect:
    (fa, na), (fb, nb) = (int(a.sum()), len(a)), (int(b.sum()), len(b))
    rate_a, a_low, a_high = rate_interval(fa, na)
    rate_b, b_low, b_high = rate_interval(fb, nb)
    p = fisher_p(fa, na, fb, nb)
    # the difference's range from the two exact intervals (conservative, not an exact interval)
    return Effect(metric, na, nb, rate_a, rate_b, rate_b - rate_a, b_low - a_high, b_high - a_low, p, False,
                  "Fisher exact" if not math.isnan(p) else "none", a_low=a_low, a_high=a_high,
                  b_low=b_low, b_high=b_high)


def ended_seeds(side: pd.DataFrame) -> int:
    """How many seeds of a group ended (done or diverged): what an interval can use."""
    return int(side[side["state"].isin(_ENDED)]["seed"].nunique()) if len(side) else 0


def compare_groups(a: pd.DataFrame, b: pd.DataFrame, factor: str, value_a: str, value_b: str) -> Comparison:
    """The effects of going from group `a` to group `b`, which the caller made differ in `factor` only."""
    effects = []
    for metric, (_, which, _) in METRICS.items():
        va, vb = _values(a, metric), _values(b, metric)
        if len(va) < MIN_SEEDS or len(vb) < MIN_SEEDS:
            continue
        effect = _rate(va, vb, metric) if which == "rate" else _interval(va, vb, metric)
        effects.append(dataclasses.replace(effect, lost_a=_lost(a, metric), lost_b=_lost(b, metric)))
    return Comparison(factor, value_a, value_b, tuple(effects),
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


def chaos_floor(df: pd.DataFrame, side_a: str, where: Sequence[str] = ()) -> Optional[Comparison]:
    """Group A's cells against the same cells with one ulp changed at initialisation: how far
    chaos alone moves each metric, the floor a factor's effect is read against (Summers and
    Dinneen, ICML 2021). None when the results hold no such cells for enough seeds."""
    # a --where perturb_init=false fixes the compared groups, not the floor's other side
    df = _select(df, [kv for kv in map(lambda w: parse_selector(w, "--where"), where) if kv[0] != FLOOR_FACTOR])
    if FLOOR_FACTOR not in df.columns or parse_selector(side_a)[0] == FLOOR_FACTOR:
        return None
    a = _select(df, [parse_selector(side_a, "group A"), (FLOOR_FACTOR, "false")])
    design = design_columns(df, FLOOR_FACTOR)
    wanted = set(a[design].apply(normalized).itertuples(index=False, name=None))
    moved = _select(df, [(FLOOR_FACTOR, "true")])
    moved = moved[[key in wanted for key in moved[design].apply(normalized).itertuples(index=False, name=None)]]
    if ended_seeds(a) < MIN_SEEDS or ended_seeds(moved) < MIN_SEEDS:
        return None
    return compare_groups(a, moved, FLOOR_FACTOR, "false", "true")
