"""Run a cell as a subprocess of this Python environment (CPU smoke runs, CI).

One process group per cell, so cancel reaches the trainer and anything it forked.
The trainer also gets SIGTERM if `repro run` itself dies (even by `kill -9`), so an
orphan never keeps writing into a folder that the next run resumes.
"""
import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterable, Iterator

from harness import PROJECT_ROOT
import pydantic

from harness.executors.base import Capabilities, Executor, Outcome, Submission, trainer_command, trainer_env
from harness.executors.settings import ExecutorSettings

__all__ = ["LocalExecutor", "LocalSettings"]

_PR_SET_PDEATHSIG = 1


class LocalSettings(ExecutorSettings):
    term_grace_s: float = pydantic.Field(10.0, ge=0, description="Cancel: seconds between SIGTERM and SIGKILL.")


class LocalExecutor(Executor):
    name = "local"
    capabilities = Capabilities(isolated_fs=False, gpu=False, async_submit=True, needs_image=False)
    settings_model = LocalSettings

    def __init__(self, settings: LocalSettings = LocalSettings(), threads: int = 0):
        self.settings, self.threads = settings, threads

    def submit(self, cell, run_dir: Path) -> Submission:
        run_dir = Path(run_dir).resolve()
        # append: a resumed cell keeps the log of its earlier attempts
        with open(run_dir / "stdout.log", "ab") as log:
            proc = subprocess.Popen(trainer_command(run_dir), cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, env=self._env(),
                                    start_new_session=True, preexec_fn=_die_with_parent)
        return Submission(cell_id=cell.cell_id, run_dir=run_dir, external_id=str(proc.pid), handle=proc)

    def poll(self, subs: Iterable[Submission]) -> Iterator[Submission]:
        for sub in subs:
            code = sub.handle.poll()
            if code is None:
                yield sub
            else:
                sub.outcome = Outcome(exit_code=code)

    def cancel(self, subs: Iterable[Submission]) -> None:
        subs = [s for s in subs if s.handle.poll() is None]
        for sub in subs:
            _signal_group(sub.handle.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.term_grace_s
        for sub in subs:
            try:
                sub.handle.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(sub.handle.pid, signal.SIGKILL)
                sub.handle.wait()

    def _env(self) -> dict:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"  # stdout.log stays current for `repro status`
        env.update(trainer_env())
        if self.threads:
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                env[var] = str(self.threads)
        return env


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # start_new_session made the trainer its group's leader
    except ProcessLookupError:
        pass


def _die_with_parent() -> None:
    # Linux only; elsewhere an orphaned trainer simply finishes its cell
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
