"""harness.forkmap: results in order from real forked workers, no hang when a worker dies;
in_background: one job beside the caller.

Each case runs in a fresh interpreter: this test process has imported torch, where
forkmap (rightly) declines to fork.
"""
import os
import subprocess
import sys
import textwrap

import pytest

from harness.forkmap import fork_is_safe, forkmap


def _python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_forked_workers_return_every_result_in_order_from_more_than_one_process():
    pids = _python("""
        import os
        from harness.forkmap import forkmap
        def square(chunk, offset):
            return [(x * x + offset, os.getpid()) for x in chunk]
        rows = forkmap(square, list(range(40)), 7, jobs=2, min_per_worker=1)
        assert [r for r, _ in rows] == [x * x + 7 for x in range(40)], rows
        print(len({pid for _, pid in rows} - {os.getpid()}))
    """)
    assert pids == "2"


def test_a_worker_that_dies_does_not_hang_the_caller_its_work_is_redone_here():
    out = _python("""
        import os
        from harness.forkmap import forkmap
        parent = os.getpid()
        def die_in_a_worker(chunk, _):
            if os.getpid() != parent:
                os._exit(9)
            return [x + 1 for x in chunk]
        print(forkmap(die_in_a_worker, list(range(10)), jobs=2, min_per_worker=1))
    """)
    assert out == str(list(range(1, 11)))


def test_a_process_with_torch_imported_runs_the_work_here():
    pytest.importorskip("torch")
    assert not fork_is_safe()
    pids = forkmap(lambda chunk, _: [os.getpid()] * len(chunk), list(range(300)), jobs=2, min_per_worker=1)
    assert set(pids) == {os.getpid()}


def test_a_background_job_runs_in_another_process_while_the_caller_goes_on():
    out = _python("""
        import os, time
        from harness.forkmap import in_background
        def slow(context):
            time.sleep(0.5)
            return (context, os.getpid())
        tic = time.perf_counter()
        wait = in_background(slow, "context")
        started = time.perf_counter() - tic
        value, pid = wait()
        print(value, pid != os.getpid(), started < 0.4)
    """)
    assert out == "context True True"


def test_a_background_job_whose_worker_dies_is_done_here_on_waiting():
    out = _python("""
        import os
        from harness.forkmap import in_background
        parent = os.getpid()
        def die_in_a_worker(context):
            if os.getpid() != parent:
                os._exit(9)
            return context + 1
        print(in_background(die_in_a_worker, 41)())
    """)
    assert out == "42"
