"""The docker executor and images against a real Docker engine (marker: docker).

Needs dockerd (docker/setup-engine.sh) and debootstrap: the cpu image is built on a
local Debian base (docker/make-base.sh), since registries are unreachable in CI.
Without an engine these tests skip with the reason, except under CI=true, where a
missing engine is a failure. Every cell runs the real trainer on the `tiny` preset.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import images
from harness.executors.base import Outcome
from harness.executors.docker import DockerExecutor, DockerSettings, GpuPool, gpu_verdict
from harness.outcome import classify
from harness.states import CellState
from tests.helpers import cells
from tests.helpers.cells import MATRIX, run_to_end, wait_for

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
BASE_IMAGE = "repro-base:bookworm"
CONTRACT = ("cell.json", "cell.yaml", "config.json", "env.json", "train.jsonl", "result.json",
            "eval.json", "eval_scores.csv", "stdout.log", "checkpoints/last.pt")
TRAINER_FILES = ("config.json", "env.json", "train.jsonl", "result.json", "eval.json",
                 "checkpoints/last.pt")


def _unavailable(reason):
    """Skip outside CI; under CI=true a missing engine or tool is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but %s" % reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def client():
    try:
        c = images.connect()
    except images.ImageError as e:
        _unavailable(str(e))
    yield c
    c.close()


@pytest.fixture(scope="session")
def cpu_image(client):
    """The cpu image, built once per session on the local debootstrap base (built once, cached)."""
    if not shutil.which("debootstrap") and not _has_image(client, BASE_IMAGE):
        _unavailable("debootstrap is not installed (docker/setup-engine.sh installs it)")
    subprocess.run([str(ROOT / "docker" / "make-base.sh"), BASE_IMAGE], check=True)
    return images.build(client, "cpu", base=BASE_IMAGE)


@pytest.fixture
def executor(client):
    """Factory of executors on the session's client (not closed: the client is shared)."""
    def make(**settings):
        return DockerExecutor(DockerSettings(**dict({"cpus": 2, "memory": "4g"}, **settings)), client=client)
    return make


def _has_image(client, name):
    try:
        client.images.get(name)
        return True
    except Exception:
        return False


def make_cell(tmp_path, stack="cpu", config="{}"):
    """A real Cell from a one-cell study, and its run folder prepared for the docker executor."""
    return cells.make_cell(tmp_path, stack, config, executor="docker", threads=2)


def containers_of(client, cell_id):
    return client.containers.list(all=True, filters={"label": "org.repro.cell=%s" % cell_id})


# --- images ---------------------------------------------------------------------------------------

def test_cpu_image_builds_on_local_base_with_labels(cpu_image, client):
    assert cpu_image.name == "repro-unsup3d:cpu" and cpu_image.id.startswith("sha256:")
    assert cpu_image.labels["cuda"] == "none" and cpu_image.labels["pytorch"] == "2.13.0"
    assert cpu_image.labels["python"] == "3.11" and not cpu_image.needs_gpu
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


def test_no_engine_is_one_clear_line(tmp_path):
    env = dict(os.environ, DOCKER_HOST="unix://%s/none.sock" % tmp_path)
    res = subprocess.run([sys.executable, "-m", "harness.cli", "images", "list"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "no Docker engine reachable at unix://" in res.stderr and "Traceback" not in res.stderr


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


# --- GPU decisions (pure; the GPU path itself needs a GPU host) ----------------------------------

PROBE_H100_CUDA10 = {"torch": "1.2.0", "torch_cuda": "10.0.130", "cuda_available": True,
                     "gpu_name": "NVIDIA H100", "gpu_capability": "9.0", "gpu_ok": False,
                     "gpu_error": "CUDA error: no kernel image is available for execution on the device"}


def test_old_cuda_on_hopper_is_skipped_not_run():
    state, reason = gpu_verdict(PROBE_H100_CUDA10)
    assert state == "skipped" and "CUDA 10.0.130" in reason and "sm_90" in reason


def test_new_cuda_without_kernels_is_skipped_and_working_gpu_runs():
    probe = dict(PROBE_H100_CUDA10, torch="1.11.0", torch_cuda="11.3")
    assert gpu_verdict(probe)[0] == "skipped"
    assert gpu_verdict(dict(probe, gpu_ok=True)) == (None, "")
    assert gpu_verdict({"cuda_available": False, "torch": "1.2.0"})[0] == "failed"


def test_gpu_pool_gives_each_cell_its_own_gpu():
    pool = GpuPool(["0", "1"])
    a, b = pool.acquire(), pool.acquire()
    assert {a, b} == {"0", "1"} and pool.acquire() is None
    pool.release(a)
    assert pool.acquire() == a


# --- Dockerfile lint (no engine needed) ----------------------------------------------------------

def _instructions(path):
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(l for l in path.read_text().splitlines()
                                          if not l.lstrip().startswith("#")))
    return [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l.strip() else "")
            for l in text.splitlines() if l.strip()]


def _pinned_image(ref):
    name, _, tag = ref.partition("@sha256:")[0].rpartition(":")
    return "@sha256:" in ref or (bool(name) and tag != "latest" and bool(re.search(r"\d", tag)))


def _unpinned_pip_specs(run):
    bad = []
    for cmd in re.findall(r"pip install ([^&|;]*)", run):
        tokens, skip = cmd.split(), False
        for tok in tokens:
            if skip or tok.startswith("-"):
                skip = tok in ("-f", "-r", "-c", "--find-links", "--index-url", "--extra-index-url")
                continue
            if tok != "." and "==" not in tok:
                bad.append(tok)
    return bad


@pytest.mark.parametrize("stack", ["cuda9.2", "cuda10.0", "cuda11.3"])
def test_cuda_images_fetch_and_verify_the_pinned_author_commit(stack):
    text = (ROOT / "docker" / stack / "Dockerfile").read_text()
    assert "ARG UNSUP3D_COMMIT=dc961410d61684561f19525c2f7e9ee6f4dacb91" in text
    assert "COPY fetch-author.sh /tmp/fetch-author.sh" in text
    assert 'sh /tmp/fetch-author.sh "${UNSUP3D_COMMIT}" /opt/unsup3d' in text
    assert "ENV REPRO_AUTHOR_CODE_DIR=/opt/unsup3d" in text
    assert 'test "$(git rev-parse HEAD)" = "$commit"' in (ROOT / "docker" / "fetch-author.sh").read_text()


def _git(cwd, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.skipif(not shutil.which("git"), reason="needs git")
def test_fetch_author_checks_out_exactly_the_pinned_commit(tmp_path):
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    _git(upstream, "init", "-q")
    (upstream / "model.py").write_text("pinned\n")
    _git(upstream, "add", "model.py")
    _git(upstream, "commit", "-q", "-m", "pinned")
    pinned = _git(upstream, "rev-parse", "HEAD")
    (upstream / "model.py").write_text("later\n")
    _git(upstream, "commit", "-q", "-am", "later")
    script = str(ROOT / "docker" / "fetch-author.sh")

    subprocess.run(["sh", script, pinned, str(tmp_path / "code"), upstream.as_uri()], check=True)
    assert (tmp_path / "code" / "model.py").read_text() == "pinned\n"
    assert (tmp_path / "code" / "COMMIT").read_text() == pinned + "\n"

    missing = subprocess.run(["sh", script, "0" * 40, str(tmp_path / "none"), upstream.as_uri()],
                             capture_output=True)
    assert missing.returncode != 0 and not (tmp_path / "none" / "COMMIT").exists()


@pytest.mark.parametrize("stack", ["cpu", "cpu-torch1.8", "cuda9.2", "cuda10.0", "cuda11.3"])
def test_dockerfile_lint_pins_and_labels(stack):
    instr = _instructions(ROOT / "docker" / stack / "Dockerfile")
    args = dict(a.split("=", 1) for i, a in instr if i == "ARG" and "=" in a)
    for ref in [a.split()[0] for i, a in instr if i == "FROM"]:
        ref = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), ref)
        assert _pinned_image(ref), "%s: FROM %r is not pinned by digest or exact tag" % (stack, ref)
    labels = dict(re.findall(r'org\.repro\.(\w+)="([^"]*)"', " ".join(a for i, a in instr if i == "LABEL")))
    assert {"stack", "cuda", "cudnn", "pytorch", "python"} <= set(labels), stack
    assert labels["stack"] == stack
    wheel_cuda = {"cpu-torch1.8": "10.2"}  # torch 1.8.1's registry wheel is a CUDA 10.2 build
    assert labels["cuda"] == (stack[4:] if stack.startswith("cuda") else wheel_cuda.get(stack, "none"))
    for i, a in instr:
        if i == "RUN":
            assert not _unpinned_pip_specs(a), "%s: unpinned pip install %s" % (stack, _unpinned_pip_specs(a))
    if (ROOT / "docker" / stack / "wheels.txt").exists():
        wheels = [l for l in (ROOT / "docker" / stack / "wheels.txt").read_text().splitlines()
                  if l.strip() and not l.startswith("#")]
        assert wheels and all("==" in w for w in wheels)


def test_nmr_patch_applies_to_published_source(tmp_path):
    nmr = ROOT.parent / "shared" / "third_party" / "neural_renderer"
    if not nmr.is_dir() or not shutil.which("patch"):
        pytest.skip("needs ../shared/third_party/neural_renderer and the patch tool")
    shutil.copytree(nmr / "neural_renderer", tmp_path / "neural_renderer")
    subprocess.run(["patch", "-p1", "-i", str(ROOT / "docker" / "nmr-torch1.11.patch")],
                   cwd=tmp_path, check=True, capture_output=True)
    sources = "".join(p.read_text() for p in (tmp_path / "neural_renderer" / "cuda").glob("*.c*"))
    assert "AT_CHECK" not in sources and ".type()" not in sources and ".data<" not in sources
    assert "COPY nmr-torch1.11.patch" in (ROOT / "docker/cuda11.3/Dockerfile").read_text()
