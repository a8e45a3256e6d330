"""`repro run --jobs` (a positive count or 'auto': the executor's schedule) and the executor settings' options."""
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
    from harness.executors.base import Schedule, host_schedule
    from harness.matrix import load_study
    cells = expand(load_study(ROOT / "matrix.yml"))
    cpu = [c for c in cells if c.axis["stack"] == "cpu"]
    gpu = [c for c in cells if c.axis["stack"] == "cuda11.3"]
    assert host_schedule(cpu, cores=4, jobs=None) == Schedule(jobs=4, threads=1)
    assert host_schedule(cpu + gpu[:1], cores=4, jobs=None) == Schedule(jobs=1, threads=4)
    assert host_schedule(cpu, cores=4, jobs=2) == Schedule(jobs=2, threads=2)


def test_a_bad_executor_setting_is_one_line_exit_2(tmp_path):
    res = CliRunner().invoke(main, ["run", "--matrix", str(ROOT / "matrix.yml"), "--results", str(tmp_path),
                                    "--dry-run", "--local-term-grace-s", "soon"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "--local-term-grace-s='soon': input should be a valid number" in res.output
