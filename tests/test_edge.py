"""The learning-rate edge (harness/report/edge.py): the logistic fit and its interval, the
bracket under perfect separation, and edge.md / edge.png from a collected-like table."""
import math
from pathlib import Path

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
    # a factor's cells at one lr (tf32 on, all failing) are not that lr's rate
    rows += [dict(row, tf32=True, side_mean=0.02, mad_mean=49.0) for row in rows if row["lr"] == 2e-3]
    df = pd.DataFrame(rows)
    df["tf32"] = df["tf32"].fillna(False)
    paths = write_edge(df, tmp_path)
    assert [p.name for p in paths] == ["edge.md", "edge.png"] and paths[1].stat().st_size > 0
    text = paths[0].read_text()
    assert "2/5 (40%, 95% CI 5-85%)" in text and "logistic fit" in text


def test_the_factor_study_reads_the_edge_studys_cells_at_its_lr_as_its_baseline():
    # same config, same ids: run into one results folder, the baseline is trained once
    from harness.cells import expand
    from harness.matrix import load_study
    root = Path(__file__).resolve().parents[1] / "matrices"
    edge = {c.cell_id for c in expand(load_study(root / "edge-cpu.yml"))
            if c.config["lr"] == 2e-3 and c.config["clip"] == "none"}
    factors = expand(load_study(root / "edge-factors-cpu.yml"))
    baseline = {c.cell_id for c in factors if c.stack.name == "cpu" and c.config["lr"] == 2e-3
                and not c.config["tf32"] and c.config["align_corners"] and c.config["clip"] == "none"
                and not c.config["perturb_init"] and c.config["cpu_isa"] == "native"
                and c.config["perceptual_net"] == "vgg16"}
    assert len(edge) == 5 and baseline == edge
    # each include rule changes one factor of the baseline, 5 seeds each; torch 1.8 only at the baseline
    assert len(factors) == 5 * 12
    assert {c.stack.name for c in factors if c.cell_id not in edge and c.stack.name != "cpu"} == {"cpu-torch1.8"}
