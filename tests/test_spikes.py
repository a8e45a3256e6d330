"""Spike statistics (harness/spikes.py) on real train.jsonl files from real tiny training runs."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness import spikes
from harness.collect import collect, read_train_logs
from tests.helpers.trainer import train, trained_run, write_cell

ROOT = Path(__file__).resolve().parents[1]


def _train(tmp_path, name, **keys):
    """A real tiny run (12 logged steps); returns its train.jsonl."""
    train(write_cell(tmp_path, name, num_epochs=3, builtin_num_train=16, **keys), tmp_path / name)
    return tmp_path / name / "train.jsonl"


@pytest.fixture(scope="module")
def real_log(tmp_path_factory):
    """train.jsonl of the session's shared real run (18 steps, no faults)."""
    return trained_run(tmp_path_factory) / "train.jsonl"


def _columns(path):
    return read_train_logs([path], spikes.LOG_FIELDS)[0].columns


def test_a_real_run_without_faults_has_no_spikes(real_log):
    stats = spikes.spike_stats(_columns(real_log))
    assert stats["n_spikes"] == 0 and np.isnan(stats["first_spike_iter"]) and np.isnan(stats["first_nonfinite_iter"])
    assert stats["clipped_frac"] == 0.0 and stats["spike_network"] is None


def test_a_planted_gradient_spike_is_found_with_its_network(real_log, tmp_path):
    lines = [json.loads(l) for l in real_log.read_text().splitlines()]
    assert len(lines) > spikes.SPIKE_MIN_HISTORY + 1
    at = len(lines) - 1
    lines[at]["grad_norm"] *= 50
    lines[at]["grad_norm_netL"] = lines[at]["grad_norm"]      # the light net leads this spike
    planted = tmp_path / "train.jsonl"
    planted.write_text("".join(json.dumps(l) + "\n" for l in lines))
    stats = spikes.spike_stats(_columns(planted))
    assert stats["n_grad_spikes"] == 1 and stats["n_loss_spikes"] == 0
    assert stats["first_spike_iter"] == lines[at]["iter"] and stats["spike_network"] == "netL"
    # a larger k does not count it: 50x the running median is a spike at k=10, not at k=100
    assert spikes.spike_stats(_columns(planted), factor=100.0)["n_spikes"] == 0


@pytest.mark.slow  # a real 3-epoch run through `repro run` (~30 s)
def test_a_real_nan_gradient_names_the_first_non_finite_iteration_and_network(tmp_path):
    # the trainer stops before logging the NaN step, so collect takes it from result.json
    study = yaml.safe_load((ROOT / "matrices" / "smoke.yml").read_text())
    study["axes"]["clip"] = ["none"]
    study["config"] = {"inject_nan_at": 5, "threads": 1, "num_epochs": 3}
    (tmp_path / "nan.yml").write_text(yaml.safe_dump(study))
    subprocess.run([sys.executable, "-m", "harness.cli", "run", "--matrix", str(tmp_path / "nan.yml"),
                    "--results", str(tmp_path / "results")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    row = collect(tmp_path / "results").table.iloc[0]
    assert row.state == "diverged" and row.diverged_iter == 5
    assert row.first_nonfinite_iter == 5 and row.spike_network == "netD"


@pytest.mark.slow  # a run of its own (~10 s): keeps the default suite under 3 minutes
def test_clipped_fraction_counts_steps_where_clipping_acted(tmp_path):
    cols = _columns(_train(tmp_path, "clip", clip="norm", clip_threshold=1e-6))
    assert spikes.spike_stats(cols)["clipped_frac"] == 1.0


def test_spike_mask_definition_is_sign_safe_and_needs_history():
    flat = np.ones(30)
    early = flat.copy()
    early[5] = 100                                   # fewer than SPIKE_MIN_HISTORY earlier values
    assert not spikes.spike_mask(early).any()
    jump = flat.copy()
    jump[20], jump[25] = 10.5, 9.5                   # over k=10 x the median counts, 9.5x does not
    assert list(np.flatnonzero(spikes.spike_mask(jump))) == [20]
    negative = -np.ones(30)
    negative[20] = 9.5                               # exceeds median -1 by more than 9 x |median|
    assert list(np.flatnonzero(spikes.spike_mask(negative))) == [20]
    nan = flat.copy()
    nan[3] = np.nan                                  # non-finite: always a spike, never in the median
    assert list(np.flatnonzero(spikes.spike_mask(nan))) == [3]
