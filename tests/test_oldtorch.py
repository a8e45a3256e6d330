"""model/ and the authors' code on a real PyTorch 1.8.1 (the cpu-torch1.8 image; marker: docker).

The image is built on the local bullseye base (docker/make-base.sh), as CI must.
Without an engine these tests skip with the reason, except under CI=true
(tests/helpers/engine.py).
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import images
from harness.executors.docker import DockerExecutor, DockerSettings
from harness.cellresult import classify
from harness.states import CellState
from tests.helpers.cells import make_cell, wait_ended
from tests.helpers.engine import local_base

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
STACK = "cpu-torch1.8"
BASE_IMAGE = "repro-base:bullseye"
MATRIX = """\
axes:
  stack:
    - name: {stack}
      dockerfile: docker/{stack}
      torch: "1.8.1"
      executor: docker
  seed: [0]
config: {config}
"""


@pytest.fixture(scope="module")
def image(client):
    """The cpu-torch1.8 image (layers cached between runs); `build` itself falls back to
    the local bullseye base where python:3.9-slim-bullseye cannot be pulled."""
    local_base(client, BASE_IMAGE)
    return images.build(client, STACK)


def _in_container(client, image, argv):
    """Run argv in the image with the source mounted read-only; returns stdout."""
    out = client.containers.run(image.name, argv, working_dir=str(ROOT), remove=True,
                                network_mode="none", user="%d:%d" % (os.getuid(), os.getgid()),
                                volumes={str(ROOT): {"bind": str(ROOT), "mode": "ro"}})
    return out.decode()


def _cell(tmp_path, config):
    return make_cell(tmp_path, STACK, config, executor="docker", threads=2, matrix=MATRIX)


def _log(run_dir):
    return [json.loads(l) for l in (run_dir / "train.jsonl").read_text().splitlines() if l.strip()]


def test_image_is_torch_181_on_python_39_with_labels(image):
    assert image.labels["pytorch"] == "1.8.1" and image.labels["python"] == "3.9"
    assert image.labels["stack"] == STACK and image.labels["nmr"] == "none"


def test_every_compat_path_of_torch_1x_runs_and_matches(client, image):
    record = json.loads(_in_container(client, image, ["python3", "tests/helpers/oldtorch_compat_check.py"]))
    assert record["torch"].startswith("1.8.1") and record["python"].startswith("3.9")
    assert {k: v["path"] for k, v in record.items() if isinstance(v, dict) and k != "cudnn"} == {
        "scatter_min": "sort fallback", "nonzero": "as_tuple", "grid_sample": "native align_corners",
        "load_checkpoint": "no weights_only", "deterministic": "without warn_only", "tf32": "allow_tf32"}
    assert all(v["ok"] for v in record.values() if isinstance(v, dict)), record


@pytest.mark.parametrize("preset,config", [
    ("tiny", "{builtin_num_train: 64, num_epochs: 2}"),          # 32 iterations
    ("cpu-small", "{num_epochs: 1, builtin_num_train: 512, checkpoint_every: 8}"),  # the study's preset, 32 iterations
])
def test_cell_trains_resumes_after_kill_and_evaluates(client, image, tmp_path, preset, config):
    cell, run_dir = _cell(tmp_path, config.replace("{", "{preset: %s, " % preset))
    ex = DockerExecutor(DockerSettings(cpus=2, memory="4g"), client=client)
    sub = ex.submit(cell, run_dir)
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoints" / "last.pt").exists():
        assert time.monotonic() < deadline and sub.outcome is None, (run_dir / "stdout.log").read_text()[-2000:]
        time.sleep(0.3)
        list(ex.poll([sub]))
    client.containers.get(sub.external_id).kill()  # SIGKILL: no chance to checkpoint again
    wait_ended(ex, sub, 60)
    assert classify(sub.outcome, run_dir)[0] in (CellState.INTERRUPTED, CellState.FAILED)
    killed_at = len(_log(run_dir))
    again = ex.submit(cell, run_dir)
    wait_ended(ex, again, 900)
    state, reason = classify(again.outcome, run_dir)
    assert (state, reason) == ("done", ""), (run_dir / "stdout.log").read_text()[-2000:]
    iters = [r["iter"] for r in _log(run_dir)]
    assert iters == sorted(set(iters)) and len(iters) > killed_at  # resumed: no duplicate
    env = json.loads((run_dir / "env.json").read_text())
    assert env["torch"].startswith("1.8.1") and env["image_digest"] == image.id
    scores = json.loads((run_dir / "eval.json").read_text())
    assert scores["n_images"] > 0 and scores["side_mean"] > 0


def test_author_code_runs_through_the_adapter(client, image, tmp_path):
    cell, run_dir = _cell(tmp_path, "{impl: author, num_epochs: 1, builtin_num_train: 16, batch_size: 8, "
                                    "builtin_num_val: 8, builtin_num_test: 8}")  # their 64px nets: ~1 s per step
    ex = DockerExecutor(DockerSettings(cpus=2, memory="6g"), client=client)
    sub = ex.submit(cell, run_dir)
    wait_ended(ex, sub, 600)
    assert classify(sub.outcome, run_dir) == ("done", ""), (run_dir / "stdout.log").read_text()[-2000:]
    assert len(_log(run_dir)) == 2 and (run_dir / "eval.json").exists()


def test_same_tiny_cell_on_torch_213_and_181_starts_equal(client, image, tmp_path):
    """Same seed and data: iteration 0's loss agrees to float32 rounding across versions."""
    cell, run_dir = _cell(tmp_path, "{preset: tiny}")
    ex = DockerExecutor(DockerSettings(cpus=2, memory="4g"), client=client)
    sub = ex.submit(cell, run_dir)
    wait_ended(ex, sub, 300)
    assert classify(sub.outcome, run_dir) == ("done", "")
    local = tmp_path / "local"
    subprocess.run([sys.executable, "-m", "model.train", "--config", str(run_dir / "cell.yaml"),
                    "--out", str(local)], cwd=ROOT, check=True, capture_output=True, timeout=300)
    old, new = _log(run_dir), _log(local)
    assert [r["iter"] for r in old] == [r["iter"] for r in new]
    assert old[0]["loss_total"] == pytest.approx(new[0]["loss_total"], rel=1e-4)
