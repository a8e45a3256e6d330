"""The docker executor and images against a real Docker engine (marker: docker).

Needs dockerd (docker/setup-engine.sh) and debootstrap: the cpu image is built on a
local Debian base (docker/make-base.sh), since registries are unreachable in CI.
Without an engine these tests skip with the reason, except under CI=true, where a
missing engine is a failure (tests/helpers/engine.py). Every cell runs the real
trainer on the `tiny` preset. What needs no engine (GPU verdicts, the GPU pool,
Dockerfile lint) is in test_gpu_verdict.py and test_dockerfiles.py.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import images
from harness.executors.base import Outcome
from harness.executors.docker import DockerExecutor, DockerSettings
from harness.cellresult import classify
from harness.states import CellState
from tests.helpers import cells
from tests.helpers.cells import MATRIX, run_to_end, wait_for
from tests.helpers.engine import local_base

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
BASE_IMAGE = "repro-base:bookworm"
CONTRACT = ("cell.json", "cell.yaml", "config.json", "env.json", "train.jsonl", "result.json",
            "eval.json", "eval_scores.csv", "stdout.log", "checkpoints/last.pt")
TRAINER_FILES = ("config.json", "env.json", "train.jsonl", "result.json", "eval.json",
                 "checkpoints/last.pt")


@pytest.fixture(scope="session")
def cpu_image(client):
    """The cpu image, built once per session on the local debootstrap base (cached)."""
    return images.build(client, "cpu", base=local_base(client, BASE_IMAGE))


@pytest.fixture
def executor(client):
    """Factory of executors on the session's client (not closed: the client is shared)."""
    def make(**settings):
        return DockerExecutor(DockerSettings(**dict({"cpus": 2, "memory": "4g"}, **settings)), client=client)
    return make


def make_cell(tmp_path, stack="cpu", config="{}"):
    """A real Cell from a one-cell study, and its run folder prepared for the docker executor."""
    return cells.make_cell(tmp_path, stack, config, executor="docker", threads=2)


def containers_of(client, cell_id):
    return client.containers.list(all=True, filters={"label": "org.repro.cell=%s" % cell_id})


# --- images ---------------------------------------------------------------------------------------

def test_cpu_image_builds_on_local_base_with_labels(cpu_image, client):
    assert cpu_image.name == "repro-unsup3d:cpu" and cpu_image.id.startswith("sha256:")
    assert cpu_image.labels["cuda"] == "none" and cpu_image.labels["pytorch"] == "2.13.0"
    assert cpu_image.labels["python"] == "3.11" and cpu_image.labels["cuda"] == "none"
    listed = dict(images.list_images(client))
    assert listed["cpu"].id == cpu_image.id
    assert set(listed) >= {"cpu", "cuda9.2", "cuda10.0", "cuda11.3"}


def test_images_cli_lists_and_rejects_unknown_stack(cpu_image):
    run = lambda *a: subprocess.run([sys.executable, "-m", "harness.cli", "images", *a], cwd=ROOT,
                                    capture_output=True, text=True, timeout=120)
    listed = run("list")
    assert listed.returncode == 0 and re.search(r"^\* cpu .*pytorch=2\.13\.0", listed.stdout, re.M)
    bad = run("build", "nosuch")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown stack 'nosuch'" in bad.stderr


# --- cells in containers --------------------------------------------------------------------------

def test_tiny_cell_end_to_end_writes_contract_as_invoking_user(cpu_image, client, executor, tmp_path):
    cell, run_dir = make_cell(tmp_path)
    uid = os.getuid()
    settings = {}
    if uid == 0:  # root would own everything anyway: act as an unprivileged invoker
        uid = 4321
        settings["user"] = "4321:4321"
        (run_dir.parent / ".data").mkdir()
        subprocess.run(["chown", "-R", "4321:4321", str(run_dir.parent)], check=True)
    sub, state, reason = run_to_end(executor(**settings), cell, run_dir)
    assert (state, reason) == ("done", ""), (run_dir / "stdout.log").read_text()[-2000:]
    for name in CONTRACT:
        assert (run_dir / name).exists(), name
    assert any((run_dir / "samples").glob("*.png"))
    for name in TRAINER_FILES:
        assert (run_dir / name).stat().st_uid == uid, name
    env = json.loads((run_dir / "env.json").read_text())
    assert env["image_digest"] == cpu_image.id and env["image"] == "repro-unsup3d:cpu"
    assert env["python"].startswith("3.11")
    assert "repro-unsup3d:cpu" in (run_dir / "stdout.log").read_text()
    assert sub.external_id and not containers_of(client, cell.cell_id)


def test_timeout_kills_container_and_fails_cell(cpu_image, client, executor, tmp_path):
    # 50 epochs of the tiny preset: far longer than the 4 s limit on any machine
    cell, run_dir = make_cell(tmp_path, config="{num_epochs: 50}")
    sub, state, reason = run_to_end(executor(timeout_s=4), cell, run_dir, limit=60)
    assert (state, reason) == ("failed", "timeout after 4s")
    assert not containers_of(client, cell.cell_id)


def test_crashing_trainer_is_failed_with_log_tail(cpu_image, executor, tmp_path):
    cell, run_dir = make_cell(tmp_path)
    # a corrupt checkpoint: the real trainer tries to resume from it and crashes
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    sub, state, reason = run_to_end(executor(), cell, run_dir, limit=120)
    assert state == "failed" and sub.outcome.exit_code not in (0, 2, 3, None)
    head, _, tail = reason.partition("\n")
    assert head == "trainer exited with code %d" % sub.outcome.exit_code
    assert tail and tail.splitlines()[-1] in (run_dir / "stdout.log").read_text()


def test_missing_image_fails_fast_naming_the_build_command(client, executor, tmp_path):
    cell, run_dir = make_cell(tmp_path, stack="nosuch")
    started = time.monotonic()
    sub = executor().submit(cell, run_dir)
    assert time.monotonic() - started < 5
    assert sub.outcome == Outcome(None, "image repro-unsup3d:nosuch not built: run "
                                        "`repro images build nosuch`", "failed")
    assert classify(sub.outcome, run_dir) == ("failed", sub.outcome.reason)


def test_cancel_stops_container_and_leaves_cell_resumable(cpu_image, executor, tmp_path):
    cell, run_dir = make_cell(tmp_path, config="{builtin_num_train: 64, num_epochs: 4}")
    ex = executor()
    sub = ex.submit(cell, run_dir)
    wait_for(lambda: (run_dir / "checkpoints" / "last.pt").exists(), what="first checkpoint")
    ex.cancel([sub])
    assert sub.outcome.exit_code == 143  # the trainer's SIGTERM exit: checkpoint saved
    assert classify(sub.outcome, run_dir)[0] == CellState.INTERRUPTED
    assert (run_dir / ".incomplete").exists() and not containers_of(ex.client, cell.cell_id)


def test_cell_container_is_hardened_on_the_engine(cpu_image, client, executor, tmp_path):
    cell, run_dir = make_cell(tmp_path, config="{builtin_num_train: 64, num_epochs: 4}")
    ex = executor()
    sub = ex.submit(cell, run_dir)
    wait_for(lambda: containers_of(client, cell.cell_id), what="the cell's container")
    (container,) = containers_of(client, cell.cell_id)
    host = container.attrs["HostConfig"]
    ex.cancel([sub])
    assert [c.upper() for c in host["CapDrop"]] in (["ALL"], ["CAP_ALL"]) and not host.get("CapAdd")
    assert "no-new-privileges" in host["SecurityOpt"] or "no-new-privileges:true" in host["SecurityOpt"]
    assert host["PidsLimit"] == DockerSettings().pids_limit and not host["Privileged"]
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    assert mounts[str(ROOT)]["RW"] is False and mounts[str(run_dir)]["RW"] is True


def test_kill_harness_mid_cell_then_resume(cpu_image, client, tmp_path):
    config = "{builtin_num_train: 64, num_epochs: 2}"  # 32 iterations, checkpoint every 4
    matrix = tmp_path / "m.yml"
    matrix.write_text(MATRIX.format(stack="cpu", config=config))
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "harness.cli", "run", "--matrix", str(matrix), "--results", str(results),
           "--executor", "docker"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: list(results.glob("*/checkpoints/last.pt")), what="a checkpoint")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (run_dir,) = [p for p in results.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert (run_dir / ".incomplete").exists()
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "resuming 1 interrupted cell(s)" in res.stderr
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "done" and status["attempt"] == 2
    iters = [json.loads(l)["iter"] for l in (run_dir / "train.jsonl").read_text().splitlines()]
    assert iters == list(range(32))  # no gap, no duplicate across the resume
    assert not containers_of(client, run_dir.name)
