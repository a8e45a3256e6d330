"""`repro run` end to end with the real trainer on tiny cells: real subprocesses, real files."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.exitcodes import ExitCode
from harness.lock import ResultsLock
from tests.helpers.cells import wait_for
from tests.helpers.runfolders import real_study

ROOT = Path(__file__).resolve().parents[1]

STACK = """\
    - name: {name}
      image: local
      torch: "2.13.0"
      overrides: {overrides}
"""


def study(tmp_path, stacks=(("cpu", "{}"),), clip="[none]", config="{}", name="m.yml"):
    body = "".join(STACK.format(name=n, overrides=o) for n, o in stacks)
    text = "axes:\n  stack:\n%s  clip: %s\n  seed: [0]\n  preset: [tiny]\nconfig: %s\n" % (body, clip, config)
    path = tmp_path / name
    path.write_text(text)
    return path


def repro(*args, check=None, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600, **kw)
    if check is not None:
        assert res.returncode == check, res.stdout + res.stderr
    return res


def start_repro(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def status_of(run_dir):
    return json.loads((run_dir / "status.json").read_text())


def only_cell(results):
    (cell,) = [p for p in results.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return cell


# --- one real tiny cell, shared by the fast tests (and other test files: nothing here changes it) --

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    shared = real_study(tmp_path_factory)
    return shared.matrix, shared.results, shared.run


def test_tiny_cell_ends_done_with_full_run_folder(tiny_run):
    _, results, res = tiny_run
    run_dir = only_cell(results)
    st = status_of(run_dir)
    assert st["state"] == "done" and st["attempt"] == 1 and st["executor"] == "local"
    for name in ("cell.json", "cell.yaml", "config.json", "env.json", "train.jsonl", "result.json",
                 "eval.json", "stdout.log", "checkpoints/last.pt"):
        assert (run_dir / name).exists(), name
    assert not (run_dir / ".incomplete").exists()
    assert "done     %s  cpu/ours/clip=none/seed=0" % run_dir.name in res.stderr
    assert "1 cells: 1 done" in res.stderr


def test_rerun_skips_done_cell_and_keeps_its_result(tiny_run):
    matrix, results, _ = tiny_run
    run_dir = only_cell(results)
    before = (run_dir / "result.json").stat().st_mtime_ns, (run_dir / "stdout.log").stat().st_size
    res = repro("run", "--matrix", matrix, "--results", results, "--retry-failed", check=0)
    assert "1 cells: 1 cached" in res.stderr
    assert ((run_dir / "result.json").stat().st_mtime_ns, (run_dir / "stdout.log").stat().st_size) == before


def test_run_refuses_while_results_are_locked(tiny_run):
    matrix, results, _ = tiny_run
    with ResultsLock(results):
        res = repro("run", "--matrix", matrix, "--results", results)
    assert res.returncode == ExitCode.LOCKED
    assert res.stderr.count("\n") == 1 and "pid %d on " % os.getpid() in res.stderr


# --- reliability (slow: several real cells each) ---------------------------------------------------

@pytest.mark.slow
def test_kill_9_mid_cell_then_rerun_resumes_from_checkpoint(tmp_path):
    # 2 cells of 32 iterations (checkpoint every 4); kill repro -9 while the second trains
    matrix = study(tmp_path, clip="[none, norm]", config="{builtin_num_train: 64, num_epochs: 2}")
    results = tmp_path / "results"
    proc = start_repro("run", "--matrix", matrix, "--results", results, "-j", "1")  # one cell after the other
    first, second = _cells_in_order(matrix, results)
    wait_for(lambda: (results / second / "checkpoints" / "last.pt").exists()
             and status_of(results / first)["state"] == "done", what="second cell's first checkpoint")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (results / second / ".incomplete").exists()
    wait_for(lambda: "terminated" in (results / second / "stdout.log").read_text() or
             "Traceback" in (results / second / "stdout.log").read_text(), 60, "orphan trainer to stop")
    st = repro("status", "--results", results, check=0).stdout
    assert "interrupted" in st
    first_result = (results / first / "result.json").stat().st_mtime_ns

    res = repro("run", "--matrix", matrix, "--results", results, check=0)
    assert "resuming 1 interrupted cell(s)" in res.stderr and "1 cached" in res.stderr
    assert "resuming from" in (results / second / "stdout.log").read_text()
    assert status_of(results / second)["state"] == "done" and status_of(results / second)["attempt"] == 2
    assert (results / first / "result.json").stat().st_mtime_ns == first_result
    iters = [json.loads(l)["iter"] for l in (results / second / "train.jsonl").read_text().splitlines()]
    assert iters == list(range(32))  # no gap and no duplicate across the resume


def _cells_in_order(matrix, results):
    from harness.cells import expand
    from harness.matrix import load_study
    return [c.cell_id for c in expand(load_study(matrix))]


@pytest.mark.slow
def test_crashing_and_diverging_cells_are_recorded_and_others_go_on(tmp_path):
    empty = tmp_path / "no-images"
    empty.mkdir()
    matrix = study(tmp_path, stacks=(("cpu", "{}"),
                                     ("cpu-crash", "{dataset: synface, data_dir: %s}" % empty),
                                     ("cpu-nan", "{inject_nan_at: 1}")))
    results = tmp_path / "results"
    res = repro("run", "--matrix", matrix, "--results", results, check=ExitCode.CELLS_FAILED)
    ok, crash, nan = _cells_in_order(matrix, results)
    assert status_of(results / ok)["state"] == "done"
    crashed = status_of(results / crash)
    assert crashed["state"] == "failed" and "trainer rejected the config (exit 2)" in crashed["reason"]
    assert "error:" in crashed["reason"]  # the log tail carries the trainer's own message
    diverged = status_of(results / nan)
    assert diverged["state"] == "diverged" and diverged["reason"].startswith("iteration 1, network netD")
    assert "failed   %s  cpu-crash/ours/clip=none/seed=0" % crash in res.stderr

    # rerun: failed results are kept (and still fail the run) until --retry-failed
    log_size = (results / crash / "stdout.log").stat().st_size
    res = repro("run", "--matrix", matrix, "--results", results, check=ExitCode.CELLS_FAILED)
    assert (results / crash / "stdout.log").stat().st_size == log_size
    assert "--retry-failed reruns it" in res.stderr
    repro("run", "--matrix", matrix, "--results", results, "--retry-failed", "--only", "stack=cpu-nan",
          check=ExitCode.CELLS_FAILED)
    assert status_of(results / nan)["attempt"] == 2


@pytest.mark.slow
def test_two_concurrent_runs_second_refuses_first_finishes_resumable(tmp_path):
    matrix = study(tmp_path, config="{builtin_num_train: 64, num_epochs: 2}")
    results = tmp_path / "results"
    first = start_repro("run", "--matrix", matrix, "--results", results)
    wait_for(lambda: (results / ".lock").exists() and (results / ".lock").read_text(), what="the lock")
    res = repro("run", "--matrix", matrix, "--results", results)
    assert res.returncode == ExitCode.LOCKED and "pid %d" % first.pid in res.stderr
    wait_for(lambda: any((p / "train.jsonl").exists() for p in results.iterdir() if p.is_dir()), what="training")
    first.send_signal(signal.SIGTERM)  # like Ctrl-C: cancel, keep the folder resumable
    assert first.wait(timeout=60) == ExitCode.INTERRUPTED
    run_dir = only_cell(results)
    assert (run_dir / ".incomplete").exists() and status_of(run_dir)["state"] == "running"
    repro("run", "--matrix", matrix, "--results", results, check=0)
    assert status_of(run_dir)["state"] == "done"
