"""reports/causes.md and causes.png: per factor, its effect with 95% intervals, from the data alone.

The design this reads is one factor at a time around a baseline (matrices/causes-cpu.yml):
for each factor, its most common value is the baseline; every other value of it is one
hypothesis, compared (harness.compare) with the baseline cells that match it in every other
design key. Across all hypotheses and metrics the p-values are corrected for multiple
comparisons with Benjamini-Hochberg (false discovery rate 5%,
`scipy.stats.false_discovery_control`); a verdict says "a significant difference at 95%" only when the
corrected p is below 0.05. Intervals are the uncorrected 95% intervals of each test.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from harness import compare as cmp  # noqa: E402
from harness.failure import INPUTS as FAILURE_INPUTS  # noqa: E402
from harness.fsutil import atomic_write  # noqa: E402
from harness.matrix import FACTOR_AXES  # noqa: E402
from .state import frame_key  # noqa: E402

__all__ = ["FACTORS", "ALPHA", "Causes", "hypotheses", "write_causes"]

# the factors a study may vary one at a time (DESIGN.md "Causes"); seed is the replicate
FACTORS = ("clip", "clip_threshold", "stack") + FACTOR_AXES
ALPHA = 0.05


def _baseline_value(values: pd.Series) -> str:
    counts = values.value_counts()
    return str(counts.index[0])


def _canonical(df: pd.DataFrame) -> pd.DataFrame:
    """df with every factor and design column spelled canonically (harness.compare.canonical), once:
    the hypotheses below select on them hundreds of times."""
    factors = [c for f in FACTORS for c in (f, "axis." + f, "env." + f) if c in df.columns]
    design = [c for key in cmp.DESIGN_KEYS for c in (key, "axis." + key) if c in df.columns]
    return df.assign(**{c: cmp.normalized(df[c]) for c in dict.fromkeys(factors + design)})


def _at_baseline(varied: pd.DataFrame, design: list, modes: dict) -> pd.DataFrame:
    """Keep the varied cells whose other design keys sit at their baseline, where any do.

    One factor at a time: clip=norm is read at the baseline threshold, not pooled with the
    threshold study's cells; a key none of them has at baseline (clip_threshold=1 needs
    clip=norm) stays as it is.
    """
    for column in design:
        at = varied[column] == modes[column]
        if at.any():
            varied = varied[at]
    return varied


def _matching(baseline: pd.DataFrame, varied: pd.DataFrame, design: list) -> pd.DataFrame:
    """The baseline cells that agree with the varied group on every other design key."""
    keep = pd.Series(True, index=baseline.index)
    for column in design:
        keep &= baseline[column].isin(set(varied[column]))
    return baseline[keep]


def _follows_the_stack(df: pd.DataFrame, column: str) -> bool:
    """A factor axis no (stack, impl) varies (lr set by each stack's preset): not a factor of the study.

    The same rule splits Table 3's rows (harness.report.rows.variant_axes).
    """
    if column not in FACTOR_AXES or not {"stack", "impl"} <= set(df.columns):
        return False
    return bool((df.groupby(["stack", "impl"])[column].nunique(dropna=False) <= 1).all())


def _why_untested(varied: pd.DataFrame, baseline: pd.DataFrame) -> str:
    """Why a factor value could not be tested: its cells did not end, nothing matches it, or too few seeds."""
    if cmp.ended_seeds(varied) == 0:
        return "no cell ended (%s; Table 3 says why)" % ", ".join(sorted(set(varied["state"].astype(str))))
    if baseline.empty:
        return "no baseline cell matches it in every other key"
    return "fewer than %d ended seeds on a side (%d vs %d)" % (
        cmp.MIN_SEEDS, cmp.ended_seeds(baseline), cmp.ended_seeds(varied))


def hypotheses(df: pd.DataFrame) -> tuple:
    """(rows, untested, not_factors) of the factors the results vary.

    rows: one per (factor value, metric) with its interval and corrected verdict.
    untested: (factor=value, why) for values whose cells could not be compared.
    not_factors: factor axes that only change with the stack (lr follows each stack's preset):
    not factors of this study, so neither tested nor called untested.
    """
    rows, untested, not_factors = [], [], []
    df = _canonical(df)
    for factor in FACTORS:
        try:
            column = cmp.factor_column(df, factor)
        except cmp.CompareError:
            continue
        values = df[column]
        if values.nunique() < 2:
            continue
        if _follows_the_stack(df, column):
            not_factors.append(factor)
            continue
        base = _baseline_value(values)
        design = cmp.design_columns(df, column)
        modes = {c: _baseline_value(df[c]) for c in design}
        for value in sorted(set(values) - {base}):
            varied = _at_baseline(df[values == value], design, modes)
            baseline = _matching(df[values == base], varied, design)
            if min(cmp.ended_seeds(varied), cmp.ended_seeds(baseline)) < cmp.MIN_SEEDS:
                untested.append(("%s=%s" % (factor, value), _why_untested(varied, baseline)))
                continue
            result = cmp.compare_groups(baseline, varied, factor, base, value)
            for e in result.effects:
                rows.append(dict(e.to_dict(), factor=factor, baseline=base, value=value,
                                 seeds_a=len(result.seeds_a), seeds_b=len(result.seeds_b)))
    table = pd.DataFrame(rows)
    if len(table):
        # the tests actually made: a row without spread (p NaN) is no hypothesis, and a
        # structural p = 1 would only dilute the correction
        tested = table["p"].notna()
        table["p_adjusted"] = np.nan
        if tested.any():
            table.loc[tested, "p_adjusted"] = stats.false_discovery_control(table.loc[tested, "p"].clip(0.0, 1.0),
                                                                            method="bh")
        table["effect"] = (table["p_adjusted"] < ALPHA).where(tested, table["significant"]).astype(bool)
    return table, untested, not_factors


def untested_line(untested: list) -> str:
    """One line: the values that could not be tested, grouped by why ("" when none)."""
    by_why: dict[str, list[str]] = {}
    for label, why in untested:
        by_why.setdefault(why, []).append(label)
    return "; ".join("%s: %s" % (", ".join(labels), why) for why, labels in by_why.items())


def _verdict(group: pd.DataFrame) -> str:
    factor, base, value = group.iloc[0][["factor", "baseline", "value"]]
    hits, nulls = group[group["effect"]], group[~group["effect"]]
    head = "%s %s -> %s: " % (factor, base, value)
    if not len(hits):
        return head + "no significant difference at 95%% on %s" % ", ".join(nulls["metric"])
    found = "; ".join("%s %+.3g [%.3g, %.3g]" % (r.metric, r.diff, r.low, r.high) for r in hits.itertuples())
    rest = "; no significant difference on %s" % ", ".join(nulls["metric"]) if len(nulls) else ""
    return head + found + ": a significant difference at 95% (BH-corrected)" + rest


def _forest(table: pd.DataFrame, path: Path) -> Path:
    metrics = [m for m in cmp.METRICS if m in set(table["metric"])]
    labels = sorted(set(table["factor"] + "=" + table["value"] + " (vs " + table["baseline"] + ")"))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 1.6 + 0.4 * len(labels)),
                             squeeze=False, sharey=True)
    for ax, metric in zip(axes[0], metrics):
        part = table[table["metric"] == metric]
        for row in part.itertuples():
            y = labels.index("%s=%s (vs %s)" % (row.factor, row.value, row.baseline))
            colour = "tab:red" if row.effect else "tab:grey"
            ax.errorbar(row.diff, y, xerr=[[row.diff - row.low], [row.high - row.diff]], fmt="o", color=colour, capsize=3)
        ax.axvline(0.0, color="black", lw=0.8)
        ax.set_title("%s (%s)" % (metric, cmp.METRICS[metric][2]), fontsize=10)
        ax.set_ylim(-0.5, len(labels) - 0.5)
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=9)
        ax.set_xlabel("difference, 95% CI", fontsize=9)
    fig.suptitle("Effect of each factor against the baseline (red: effect after BH correction)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write(path, buf.getvalue(), durable=False)


@dataclasses.dataclass(frozen=True)
class Causes:
    """The causes section as written: its files, what index.html shows, and the keys that keep it current."""
    files: tuple[Path, ...]     # causes.md, and causes.png when anything was tested
    verdicts: tuple[str, ...]   # one line per tested factor value
    notes: tuple[str, ...]      # the untested line (at most one)
    key: str                    # of the table's columns that hypotheses reads (frame_key)
    plot_key: str               # of the effects the plot draws ("" without a plot)


def _inputs(df: pd.DataFrame) -> pd.DataFrame:
    """The columns `hypotheses` reads: the section changes only when these do (a log that grew
    without a new spike changes none of them)."""
    reads = {"seed", "stale", *FAILURE_INPUTS, *(column for column, _, _ in cmp.METRICS.values())}
    return df[[c for c in df.columns if c in reads or c in FACTORS or c in cmp.DESIGN_KEYS
               or c.startswith(("axis.", "env."))]]


def write_causes(df: pd.DataFrame, reports_dir: Path, previous: Causes | None = None) -> Causes:
    """Write causes.md (and causes.png when anything was tested), or keep the last ones when
    the columns they read did not change (the plot likewise, when the effects did not).

    Returns:
        The section written (for index.html and the report's state).
    """
    inputs = _inputs(df)
    key = frame_key(inputs)
    if previous and previous.key == key and all(path.is_file() for path in previous.files):
        return previous
    table, untested, not_factors = hypotheses(inputs)
    verdicts = [_verdict(g) for _, g in table.groupby(["factor", "value"], sort=True)] if len(table) else []
    lines = ["# Causes: which factors change SIDE, MAD, spikes and divergence", "",
             "Generated by `repro report` from results/ (harness/report/causes.py); do not edit.", "",
             "Each factor's most common value is its baseline; each other value is compared with the baseline "
             "cells that match it in every other design key, over seeds (paired by seed where both share them: "
             "t interval, else Welch), 95% intervals. Verdicts are corrected for multiple comparisons across all "
             "factors and metrics with Benjamini-Hochberg (FDR 5%). SIDE x1e-2, MAD degrees, spikes per cell, "
             "divergence rate per cell.", ""]
    written, plot_key = [], ""
    if len(table):
        lines += ["## Verdicts", ""] + ["- " + v for v in verdicts]
        shown = table[["factor", "baseline", "value", "metric", "seeds_a", "seeds_b", "mean_a", "mean_b", "diff",
                       "low", "high", "p", "p_adjusted", "paired", "effect"]]
        effects = shown.to_markdown(index=False, floatfmt=".4g")
        lines += ["", "## Effects", "", effects, "", "![forest plot](causes.png)", ""]
        plot_key = hashlib.sha1(effects.encode()).hexdigest()
        plot = Path(reports_dir) / "causes.png"
        kept = previous is not None and plot_key == previous.plot_key and plot.is_file()
        written.append(plot if kept else _forest(table, plot))
    else:
        lines += ["No factor varies with enough ended seeds on both sides to test (run matrices/causes-cpu.yml).", ""]
    untested_text = untested_line(untested)
    if untested_text:
        lines += ["## Not tested", "", untested_text, ""]
    if not_factors:
        lines += ["## Not factors of this study", "", "%s: the same within every stack (set by its preset), "
                  "so their values are the stacks' and are not tested apart from them." % ", ".join(not_factors), ""]
    written.insert(0, atomic_write(Path(reports_dir) / "causes.md", "\n".join(lines)))
    return Causes(tuple(written), tuple(verdicts), (untested_text,) if untested_text else (), key, plot_key)
