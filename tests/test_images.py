"""Which image a matrix stack needs, skipping its cells when that image is not built, and no engine."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cells import expand
from harness.executors.docker import DockerExecutor
from harness.feasibility import why_not_runnable
from harness.host import Gpu, Host
from harness.images import image_stack_of, stacks
from harness.matrix import load_study

ROOT = Path(__file__).resolve().parents[1]


def _cell(stack):
    return [c for c in expand(load_study(ROOT / "matrix.yml")) if c.axis["stack"] == stack][0]


def test_cuda102_stack_is_served_by_the_cpu_torch18_image():
    assert image_stack_of(_cell("cuda10.2").stack) == "cpu-torch1.8"
    assert image_stack_of(_cell("cpu-torch1.8").stack) == "cpu-torch1.8"
    assert "cpu-torch1.8" in stacks()


@pytest.mark.parametrize("built, expect", [
    (frozenset(), "stack cpu-torch1.8 needs image repro-unsup3d:cpu-torch1.8, not built here: "
                  "run `repro images build cpu-torch1.8`"),
    (frozenset({"cpu", "cpu-torch1.8"}), None),
    (None, None),  # the engine could not list its images: the executor decides
])
def test_cpu_torch18_cells_skip_with_the_reason_until_the_image_is_built(built, expect):
    host = Host("h", 2, docker=True, images=built)
    assert why_not_runnable(_cell("cpu-torch1.8"), DockerExecutor, host, "docker") == expect


def test_cuda102_cells_skip_without_a_gpu_and_run_on_a_volta():
    cell = _cell("cuda10.2")
    no_gpu = why_not_runnable(cell, DockerExecutor, Host("h", 2, docker=True), "docker")
    assert no_gpu == "stack cuda10.2 needs a CUDA 10.2 GPU and none is visible (nvidia-smi lists none)"
    volta = Host("h", 2, (Gpu("V100", "7.0"),), docker=True, images=frozenset({"cpu-torch1.8"}))
    assert why_not_runnable(cell, DockerExecutor, volta, "docker") is None
    hopper = Host("h", 2, (Gpu("H100", "9.0"),), docker=True, images=frozenset({"cpu-torch1.8"}))
    assert "not supported by CUDA 10.2" in why_not_runnable(cell, DockerExecutor, hopper, "docker")


def test_no_engine_is_one_clear_line(tmp_path):
    env = dict(os.environ, DOCKER_HOST="unix://%s/none.sock" % tmp_path)
    res = subprocess.run([sys.executable, "-m", "harness.cli", "images", "list"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "no Docker engine reachable at unix://" in res.stderr and "Traceback" not in res.stderr
