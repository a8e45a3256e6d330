"""Run a function over a list in forked worker processes, one per usable core.

    rows = forkmap(read_chunk, folders, context)   # read_chunk(list, context) -> one result per item
    wait = in_background(write_files, context)     # write_files(context) runs beside the caller
    ...; paths = wait()

Fork, not spawn: the workers inherit the modules already imported, so a pool starts in
milliseconds instead of importing pandas and matplotlib again (about a second here).
What every chunk needs goes in `context`: the workers inherit it with the fork, it is
never pickled. Callers fork before they start threads of their own, and ask no library
for threads inside the workers (the workers are the parallelism).

Two cases run in this process instead, because a fork there can hang: a process that has
imported torch (its OpenMP thread pool does not survive a fork; a trainer or a test
process, never `repro report`), and a pool whose worker died (a crash or the OOM killer
must not leave the report waiting forever: the work is redone here, with a warning).
"""
from __future__ import annotations

import logging
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Sequence, TypeVar

from harness.host import usable_cores

__all__ = ["MIN_PER_WORKER", "forkmap", "fork_is_safe", "in_background"]

log = logging.getLogger("repro")

T = TypeVar("T")
R = TypeVar("R")

# below this many items per worker, a fork costs more than it saves
MIN_PER_WORKER = 64
_CHUNKS_PER_WORKER = 4   # smaller chunks even out a slow folder or a busy core
_job: tuple = ()          # (fn, context) of the pool being forked: the workers inherit it
_background_job: tuple = ()   # the same for in_background's one worker


def fork_is_safe() -> bool:
    """False once torch is imported: a forked child that touches its OpenMP pool can hang."""
    return "torch" not in sys.modules


def forkmap(fn: Callable[[list[T], Any], list[R]], items: Sequence[T], context: Any = None,
            jobs: int | None = None, min_per_worker: int = MIN_PER_WORKER) -> list[R]:
    """fn(chunk, context) over chunks of items, results in order; in this process when one worker would do.

    Args:
        fn: returns one result per item of its chunk.
        items: what to split (pickled to the workers, so keep them small: indices, paths).
        context: what every chunk needs (inherited, not pickled).
        jobs: workers (default: the usable cores).
        min_per_worker: fewer items per worker run here (a few slow items, such as figures: 1).
    """
    jobs = min(jobs or usable_cores(), len(items) // min_per_worker)
    if jobs <= 1 or not fork_is_safe():
        return fn(list(items), context)
    size = -(-len(items) // (jobs * _CHUNKS_PER_WORKER))
    chunks = [list(items[i:i + size]) for i in range(0, len(items), size)]
    try:
        return _in_workers(fn, chunks, context, jobs)
    except BrokenProcessPool as e:
        log.warning("a worker process died (%s); doing its work in this process instead", e)
        return fn(list(items), context)


def _in_workers(fn: Callable, chunks: list[list], context: Any, jobs: int) -> list:
    global _job
    _job = (fn, context)
    try:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            return [result for chunk in pool.map(_run, chunks) for result in chunk]
    finally:
        _job = ()


def _run(chunk: list) -> list:
    fn, context = _job
    return fn(chunk, context)


def in_background(fn: Callable[[Any], R], context: Any = None) -> Callable[[], R]:
    """Start fn(context) in one forked process and return at once; the returned function waits for its result.

    The caller goes on with other work meanwhile (a second core does this one). Where a fork is
    not safe it runs here, before returning; a worker that died (or raised) has its work redone
    here on waiting, where an error surfaces as the caller's own. A bare process and a pipe, not
    a pool: a pool's manager thread would make every later fork one from a threaded process.
    """
    if not fork_is_safe():
        result = fn(context)
        return lambda: result
    global _background_job
    receive, send = multiprocessing.Pipe(duplex=False)
    _background_job = (fn, context)
    try:
        worker = multiprocessing.get_context("fork").Process(target=_run_background, args=(send,), daemon=True)
        worker.start()
    finally:
        _background_job = ()
        send.close()

    def wait() -> R:
        try:
            return receive.recv()
        except EOFError:
            log.warning("a background worker (pid %s) ended without a result; doing its work in this process",
                        worker.pid)
            return fn(context)
        finally:
            receive.close()
            worker.join()
    return wait


def _run_background(send) -> None:
    fn, context = _background_job
    send.send(fn(context))
    send.close()
