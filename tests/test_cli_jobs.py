"""`repro run --jobs`: a positive count or 'auto' (one cell per usable core)."""
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.host import Host

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_gpu_no_docker(monkeypatch):
    """Plan against a fixed host without GPU or Docker, not this machine."""
    monkeypatch.setattr("harness.runner.probe", lambda: Host("h", 2))


def _dry_run(tmp_path, jobs):
    return CliRunner().invoke(main, ["run", "--matrix", str(ROOT / "matrix.yml"), "--results", str(tmp_path),
                                     "--dry-run", "--jobs", jobs])


@pytest.mark.parametrize("jobs", ["auto", "2"])
@pytest.mark.usefixtures("author_checkout_here")
def test_jobs_accepts_auto_and_counts(tmp_path, jobs):
    res = _dry_run(tmp_path, jobs)
    assert res.exit_code == 0, res.output
    assert re.search(r"^64 cells: 8 run, 56 skip$", res.output, re.M), res.output


@pytest.mark.parametrize("jobs", ["0", "two", "-1"])
def test_jobs_rejects_anything_else_in_one_line(tmp_path, jobs):
    res = _dry_run(tmp_path, jobs)
    assert res.exit_code == 2
    assert "'--jobs'" in res.output and "positive integer or 'auto'" in res.output
    assert "Traceback" not in res.output


def test_without_jobs_cpu_cells_run_one_per_core_and_gpu_cells_one_at_a_time():
    from harness.cells import expand
    from harness.matrix import load_study
    from harness.runner import Action, Planned, default_jobs
    cells = expand(load_study(ROOT / "matrix.yml"))
    cpu = [Planned(c, Action.RUN) for c in cells if c.axis["stack"] == "cpu"]
    gpu = [Planned(c, Action.RUN) for c in cells if c.axis["stack"] == "cuda11.3"]
    assert default_jobs(cpu, Host("h", 4)) == 4
    assert default_jobs(cpu + gpu[:1], Host("h", 4)) == 1
