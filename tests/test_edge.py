"""The learning-rate edge (harness/report/edge.py): the logistic fit and its interval, the
bracket under perfect separation, and edge.md / edge.png from a collected-like table."""
import math

import numpy as np
import pandas as pd
import pytest

from harness.report.edge import fit_edge, write_edge


def _outcomes(p_fail_at, lrs, seeds, rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    lr = np.repeat(lrs, seeds)
    return lr, (rng.random(lr.size) < p_fail_at(lr)).astype(float)


def test_a_planted_edge_is_recovered_inside_its_interval():
    true_edge = 2e-3
    lrs = np.geomspace(5e-4, 8e-3, 9)
    lr, failed = _outcomes(lambda x: 1 / (1 + (true_edge / x) ** 4), lrs, 12)
    edge = fit_edge(lr, failed)
    assert edge.how == "logistic fit" and edge.low < true_edge < edge.high
    assert edge.low < edge.lr50 < edge.high and edge.slope > 0
    assert edge.high / edge.low < 4   # 108 runs pin it within a factor of a few


def test_perfect_separation_gives_the_bracket():
    edge = fit_edge([1e-3] * 5 + [2e-3] * 5 + [3e-3] * 5, [0] * 10 + [1] * 5)
    assert edge.how.startswith("bracket") and (edge.low, edge.high) == (2e-3, 3e-3)


def test_no_failure_has_no_edge():
    assert math.isnan(fit_edge([1e-3, 2e-3, 3e-3], [0, 0, 0]).lr50)


def test_edge_report_from_a_table(tmp_path):
    rows = []
    for lr, fails in ((1e-3, 0), (2e-3, 2), (3e-3, 5)):
        for seed in range(5):
            bad = seed < fails
            rows.append(dict(lr=lr, seed=seed, clip="none", state="done", n_spikes=0,
                             side_mean=0.02 if bad else 0.013, flat_side_mean=0.0155,
                             mad_mean=49.0 if bad else 17.0, flat_mad_mean=50.5))
    df = pd.DataFrame(rows)
    paths = write_edge(df, tmp_path)
    assert [p.name for p in paths] == ["edge.md", "edge.png"] and paths[1].stat().st_size > 0
    text = paths[0].read_text()
    assert "2/5 (40%, 95% CI 5-85%)" in text and "logistic fit" in text
