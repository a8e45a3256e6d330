"""Whether a GPU cell may run: the docker executor's verdict from a probe record, and its GPU pool.

Pure decisions, no engine and no GPU needed; the probe itself runs in test_docker.py's
engine tests and on GPU hosts.
"""
from harness.executors.docker import GpuPool, gpu_verdict
from harness.states import CellState

PROBE_H100_CUDA10 = {"torch": "1.2.0", "torch_cuda": "10.0.130", "cuda_available": True,
                     "gpu_name": "NVIDIA H100", "gpu_capability": "9.0", "gpu_ok": False,
                     "gpu_error": "CUDA error: no kernel image is available for execution on the device"}


def test_old_cuda_on_hopper_is_skipped_not_run():
    state, reason = gpu_verdict(PROBE_H100_CUDA10)
    assert state == CellState.SKIPPED and "CUDA 10.0.130" in reason and "sm_90" in reason


def test_new_cuda_without_kernels_is_skipped_and_working_gpu_runs():
    probe = dict(PROBE_H100_CUDA10, torch="1.11.0", torch_cuda="11.3")
    assert gpu_verdict(probe)[0] == CellState.SKIPPED
    assert gpu_verdict(dict(probe, gpu_ok=True)) == (None, "")
    assert gpu_verdict({"cuda_available": False, "torch": "1.2.0"})[0] == CellState.FAILED


def test_gpu_pool_gives_each_cell_its_own_gpu():
    pool = GpuPool(["0", "1"])
    a, b = pool.acquire(), pool.acquire()
    assert {a, b} == {"0", "1"} and pool.acquire() is None
    pool.release(a)
    assert pool.acquire() == a
