"""The causes machinery on real runs: tiny cells trained by `repro run`, read by `repro compare`.

One study of 15 tiny cells (the module takes 1.5 min on 2 quiet cores, 4-5 under load):
- deterministic false/true on seeds 0-4: on CPU the two groups train bit-identically
  (why matrices/causes-cpu.yml leaves the factor out); planting a known SIDE offset with
  per-seed noise into one group's eval.json makes `repro compare` find it, above zero and
  within one interval width of the offset;
- cudnn_benchmark (a no-op on CPU) on seeds 5-9 against the baseline on seeds 0-4: the groups
  differ only by seed, and `repro compare` must not call them different;
- failure rates: a planted change of the failure rate (harness/failure.py) is found by
  Fisher's exact test, the seed-only groups are not called different.
"""
import json
import shutil

import numpy as np
import pytest

from tests.helpers.runfolders import repro

pytestmark = pytest.mark.slow

STUDY = """\
axes:
  stack:
    - {name: cpu, image: local, torch: "2.13.0"}
  preset: [tiny]
  seed: [0, 1, 2, 3, 4]
  deterministic: [false]
include:
  - {deterministic: true}
  - {cudnn_benchmark: false, seed: [5, 6, 7, 8, 9]}
"""
PLANTED_SIDE = 0.3e-2   # SIDE as eval.json stores it (reports and compare show it x1e-2)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("causes")
    matrix = root / "causes.yml"
    matrix.write_text(STUDY)
    results = root / "results"
    run = repro("run", "--matrix", matrix, "--results", results, "-j", "2", timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    return results


def _cells(results):
    """{(deterministic, cudnn_benchmark, seed): run folder}."""
    cells = {}
    for run_dir in results.iterdir():
        if not (run_dir / "config.json").is_file():
            continue
        cfg = json.loads((run_dir / "config.json").read_text())
        cells[(cfg["deterministic"], cfg["cudnn_benchmark"], cfg["seed"])] = run_dir
    return cells


def _compare(results, a, b, where):
    res = repro("compare", a, b, "--where", where, "--results", results, "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    return {e["metric"]: e for e in json.loads(res.stdout)["effects"]}


def test_a_second_differing_factor_is_refused(study):
    res = repro("compare", "deterministic=false", "deterministic=true", "--results", study)
    assert res.returncode != 0
    assert "differ in more than deterministic (cudnn_benchmark" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_deterministic_trains_bit_identically_on_cpu(study):
    cells = _cells(study)
    for seed in range(5):
        plain = (cells[(False, None, seed)] / "train.jsonl").read_text().splitlines()
        strict = (cells[(True, None, seed)] / "train.jsonl").read_text().splitlines()
        losses = [[json.loads(line)["loss_total"] for line in lines] for lines in (plain, strict)]
        assert losses[0] == losses[1] and len(losses[0]) > 0
    side = _compare(study, "deterministic=false", "deterministic=true", "cudnn_benchmark=none")["SIDE"]
    assert side["diff"] == 0.0 and not side["significant"]


def test_a_planted_side_offset_is_found_inside_its_interval(study, tmp_path):
    planted = tmp_path / "results"
    shutil.copytree(study, planted)
    noise = np.random.RandomState(0).normal(0.0, PLANTED_SIDE / 5, size=5)
    for (deterministic, _, seed), run_dir in _cells(planted).items():
        if deterministic:
            path = run_dir / "eval.json"
            scores = json.loads(path.read_text())
            scores["side_mean"] += PLANTED_SIDE + noise[seed]
            path.write_text(json.dumps(scores))
    effects = _compare(planted, "deterministic=false", "deterministic=true", "cudnn_benchmark=none")
    side, mad = effects["SIDE"], effects["MAD"]
    assert side["paired"] and side["significant"] and side["low"] > 0
    # the groups trained bit-identically, so the estimate is exactly what was planted (x1e-2)
    assert side["diff"] == pytest.approx((PLANTED_SIDE + noise.mean()) * 100, rel=1e-9)
    assert abs(side["diff"] - PLANTED_SIDE * 100) < side["high"] - side["low"]
    assert mad["diff"] == 0.0 and not mad["significant"]  # nothing planted there


def test_groups_that_differ_only_by_seed_are_not_called_different(study):
    effects = _compare(study, "cudnn_benchmark=none", "cudnn_benchmark=false", "deterministic=false")
    assert set(effects) >= {"SIDE", "MAD"}
    for metric in ("SIDE", "MAD"):
        assert not effects[metric]["paired"]  # seeds 0-4 against 5-9: Welch, not paired
        assert not effects[metric]["significant"], effects[metric]


def test_a_planted_failure_rate_is_found_and_seed_only_groups_are_not(study, tmp_path):
    """4-step tiny runs learn no depth: every cell is degenerate (harness/failure.py). Scores that
    beat flat depth by half, planted into the deterministic group, make its failure rate 0 of 5:
    Fisher's exact test finds 5/5 -> 0/5; the seed-only groups stay at 5/5 and 5/5."""
    planted = tmp_path / "results"
    shutil.copytree(study, planted)
    for (deterministic, _, seed), run_dir in _cells(planted).items():
        if deterministic:
            path = run_dir / "eval.json"
            scores = json.loads(path.read_text())
            scores.update(side_mean=scores["flat_side_mean"] / 2, mad_mean=scores["flat_mad_mean"] / 2)
            path.write_text(json.dumps(scores))
    failed = _compare(planted, "deterministic=false", "deterministic=true", "cudnn_benchmark=none")["failed"]
    assert (failed["mean_a"], failed["mean_b"], failed["test"]) == (1.0, 0.0, "Fisher exact")
    assert failed["significant"] and failed["p"] == pytest.approx(0.00794, abs=1e-5)
    same = _compare(study, "cudnn_benchmark=none", "cudnn_benchmark=false", "deterministic=false")["failed"]
    assert same["mean_a"] == same["mean_b"] == 1.0 and not same["significant"]
