"""The Ray executor on a real local Ray cluster (ray.cluster_utils.Cluster, this machine only).

Two worker nodes of one CPU and one fake GPU each, the head holding no CPU so every
cell lands on a worker; the trainer is real (tiny preset). The cluster is shut
down in a `finally`, even when a test fails. Without ray installed these tests skip,
except under CI (where `.[ray]` is installed) where they fail.
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.cells import expand
from harness.executors.base import ExecutorError
from harness.executors.node import pack_folder, unpack_folder
from harness.executors.ray import RayExecutor, RaySettings, arch_resource
from harness.matrix import load_study
from harness.cellresult import classify
from harness.states import CellState
from harness.progress import Progress
from harness.runfolder import prepare, read_run_folder
from harness.scheduler import run_cells
from harness.status import scan

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ("cell.json", "cell.yaml", "config.json", "env.json", "train.jsonl", "result.json",
            "eval.json", "eval_scores.csv", "stdout.log", "status.json")
DONE_LINE = "done: SIDE"   # the trainer's last line: printed once per run that completes


def _need_ray():
    if os.environ.get("CI"):
        import ray  # noqa: F401  (CI installs .[ray]: a missing ray is a failure there)
    else:
        pytest.importorskip("ray", reason="ray not installed (pip install '.[ray]')")


def study(tmp_path, clip="[none]", config="{}"):
    path = tmp_path / "m.yml"
    path.write_text("axes:\n  stack:\n    - name: cpu\n      image: local\n      torch: \"2.13.0\"\n"
                    "  clip: %s\n  seed: [0]\n  preset: [tiny]\nconfig: %s\n" % (clip, config))
    return path


def cells_of(matrix):
    return expand(load_study(matrix))


def run(cells, executor, results):
    return run_cells(cells, executor, results, jobs=len(cells), threads=1,
                     progress=Progress(total=len(cells), jobs=len(cells), tty=False))


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def jsonl_iters(run_dir):
    return [json.loads(l)["iter"] for l in (run_dir / "train.jsonl").read_text().splitlines() if l.strip()]


def repro(*args, env=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def cluster():
    _need_ray()
    import ray
    from ray.cluster_utils import Cluster
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        for _ in range(2):
            c.add_node(num_cpus=1, num_gpus=1)
        ray.init(address=c.address, log_to_driver=False, logging_level="WARNING")
        c.wait_for_nodes(timeout=60)
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


@pytest.fixture
def executor(cluster):
    ex = RayExecutor(RaySettings(retries=2, cancel_grace_s=20))
    try:
        yield ex
    finally:
        ex.close()


# --- no cluster needed ---------------------------------------------------------------------------

def test_arch_resource_picks_a_supported_architecture_the_cluster_has():
    cluster = {"CPU": 8, "GPU": 4, "sm_70": 1, "sm_80": 3}
    assert arch_resource(["7.0", "7.5"], cluster) == "sm_70"
    assert arch_resource(["7.0", "8.0"], cluster) == "sm_80"      # the one with most GPUs
    assert arch_resource([], cluster) is None                        # stack takes any GPU
    assert arch_resource(["7.0"], {"CPU": 8, "GPU": 4}) is None      # nodes advertise no architecture
    with pytest.raises(ExecutorError, match=r"no Ray node offers sm_60/sm_61 .*sm_70, sm_80"):
        arch_resource(["6.0", "6.1"], cluster)


def test_pack_then_unpack_round_trips_a_folder_without_the_skipped_files(tmp_path):
    src = tmp_path / "a"
    (src / "checkpoints").mkdir(parents=True)
    (src / "checkpoints" / "last.pt").write_bytes(b"\x00\x01ckpt")
    (src / "train.jsonl").write_text('{"iter": 0}\n')
    (src / "status.json").write_text("{}")
    dst = tmp_path / "b"
    unpack_folder(pack_folder(src, skip=("status.json",)), dst)
    assert (dst / "checkpoints" / "last.pt").read_bytes() == b"\x00\x01ckpt"
    assert (dst / "train.jsonl").read_text() == '{"iter": 0}\n'
    assert not (dst / "status.json").exists()


def test_ray_missing_is_one_line_naming_the_extra(tmp_path):
    # a `ray` package that cannot be imported shadows the real one (if any)
    (tmp_path / "shadow" / "ray").mkdir(parents=True)
    (tmp_path / "shadow" / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    results = tmp_path / "results"
    res = repro("run", "--matrix", study(tmp_path), "--results", results, "--executor", "ray",
                env={"PYTHONPATH": "%s%s%s" % (tmp_path / "shadow", os.pathsep, ROOT)})
    assert res.returncode == 2, res.stderr
    errors = [l for l in res.stderr.splitlines() if l.startswith("repro: error:")]
    assert errors == ["repro: error: ray is not installed in this environment: pip install '.[ray]'"], res.stderr
    assert "Traceback" not in res.stderr
    assert [p.name for p in results.iterdir() if not p.name.startswith(".")] == []


# --- a real cluster --------------------------------------------------------------------------------

@pytest.mark.ray
def test_unreachable_address_is_one_line(tmp_path):
    _need_ray()
    with socket.socket() as s:  # a port nothing listens on once this socket closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    res = repro("run", "--matrix", study(tmp_path), "--results", tmp_path / "results", "--executor", "ray",
                "--ray-address", "127.0.0.1:%d" % port)
    assert res.returncode == 2, res.stderr
    errors = [l for l in res.stderr.splitlines() if l.startswith("repro: error:")]
    assert len(errors) == 1 and errors[0].startswith("repro: error: cannot reach the Ray cluster at "
                                                     "127.0.0.1:%d" % port), res.stderr
    assert "ray start --head" in errors[0] and "Traceback" not in res.stderr
    assert time.monotonic() - t0 < 60


@pytest.mark.ray
def test_tiny_matrix_through_the_cluster_ends_with_correct_run_folders(tmp_path, executor):
    cells = cells_of(study(tmp_path, clip="[none, norm]"))
    results = tmp_path / "results"
    out = run(cells, executor, results)
    assert sorted(r.state for r in out) == ["done", "done"], [(r.state, r.reason) for r in out]
    for cell in cells:
        run_dir = results / cell.cell_id
        assert [f for f in CONTRACT if not (run_dir / f).is_file()] == []
        status = _status(run_dir)
        assert (status["state"], status["attempt"], status["executor"]) == ("done", 1, "ray")
        assert not (run_dir / ".incomplete").exists()
        assert (run_dir / "stdout.log").read_text().count(DONE_LINE) == 1
        assert json.loads((run_dir / "eval.json").read_text())["n_images"] > 0
    assert executor.placements == {}   # nothing left running anywhere
    assert {row["state"] for row in scan(results)} == {"done"}   # `repro status` reads them unchanged
    # resume across executors: the local executor sees these cells as done, not to be rerun
    res = repro("run", "--dry-run", "--executor", "local", "--matrix", study(tmp_path, clip="[none, norm]"),
                "--results", results)
    assert res.stdout.count(" cached ") == 2, res.stdout


@pytest.mark.ray
def test_without_a_shared_filesystem_the_head_writes_the_returned_folder(tmp_path, cluster):
    (cell,) = cells_of(study(tmp_path))
    results = tmp_path / "results"
    ex = RayExecutor(RaySettings(shared=False))
    try:
        (result,) = run([cell], ex, results)
    finally:
        ex.close()
    run_dir = results / cell.cell_id
    assert result.state == "done", result.reason
    assert [f for f in CONTRACT if not (run_dir / f).is_file()] == []
    assert _status(run_dir)["state"] == "done" and not (run_dir / ".incomplete").exists()
    # the trainer ran in a scratch folder on the node: its data cache (RUN_DIR/../.data) stayed there
    assert not (results / ".data").exists()


@pytest.mark.ray
def test_cancel_leaves_the_cell_resumable_and_the_local_executor_finishes_it(tmp_path, executor):
    from harness.executors.local import LocalExecutor
    # 512 tiny iterations (several seconds): Ray's cancel takes about a second to reach the task,
    # and a 64-iteration cell sometimes finished first
    (cell,) = cells_of(study(tmp_path, config="{builtin_num_train: 1024, num_epochs: 2}"))
    run_dir = tmp_path / "results" / cell.cell_id
    prepare(run_dir, cell, threads=1, executor="ray")
    sub = executor.submit(cell, run_dir)
    wait_for(lambda: not list(executor.poll([sub])) or len(_lines(run_dir / "train.jsonl")) >= 6, 90,
             "the cell to train a few iterations")
    assert sub.outcome is None, sub.outcome
    executor.cancel([sub])
    log = (run_dir / "stdout.log").read_text()
    assert "terminated: checkpoint saved" in log and (run_dir / ".incomplete").exists(), (sub.outcome, log[-300:])
    assert list(executor.poll([sub])) == [] and executor.placements == {}
    assert classify(sub.outcome, run_dir)[0] == CellState.INTERRUPTED   # as a local trainer stopped by SIGTERM
    # the next run, on another executor, resumes from that checkpoint and finishes
    (result,) = run([cell], LocalExecutor(threads=1), tmp_path / "results")
    assert result.state == "done", result.reason
    log = (run_dir / "stdout.log").read_text()
    assert "resuming from" in log and log.count(DONE_LINE) == 1
    assert jsonl_iters(run_dir) == list(range(512))


@pytest.mark.ray
def test_a_node_killed_mid_cell_has_its_cell_retried_elsewhere_once(tmp_path, cluster, executor):
    cells = cells_of(study(tmp_path, clip="[none, norm]", config="{builtin_num_train: 128, num_epochs: 2}"))
    results = tmp_path / "results"
    out, thread = [], threading.Thread(target=lambda: out.extend(run(cells, executor, results)))
    thread.start()
    try:
        victim = cells[0].cell_id
        wait_for(lambda: victim in executor.placements and len(_lines(results / victim / "train.jsonl")) >= 6,
                 90, "cell %s to train on a node" % victim)
        node_id = executor.placements[victim][1]
        (node,) = [n for n in cluster.list_all_nodes() if n.node_id == node_id]
        cluster.remove_node(node, allow_graceful=False)
        thread.join(timeout=150)
        assert not thread.is_alive(), "the run did not end after the node died"
    finally:
        cluster.add_node(num_cpus=1, num_gpus=1)   # later tests see two workers again
    assert sorted(r.state for r in out) == ["done", "done"], [(r.state, r.reason) for r in out]
    status = _status(results / victim)
    assert status["attempt"] == 2 and status["state"] == "done"
    log = (results / victim / "stdout.log").read_text()
    assert "resuming from" in log                          # shared folder: from the last checkpoint
    assert log.count(DONE_LINE) == 1                       # no cell ran twice to completion
    assert jsonl_iters(results / victim) == list(range(64))
    other = _status(results / cells[1].cell_id)
    assert other["state"] == "done" and (results / cells[1].cell_id / "stdout.log").read_text().count(DONE_LINE) == 1


def _lines(path):
    try:
        return [l for l in path.read_text().splitlines() if l.strip()]
    except FileNotFoundError:
        return []


def _status(run_dir):
    return read_run_folder(run_dir).status
