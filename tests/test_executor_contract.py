"""One contract for every registered executor: submit/poll/cancel/close, outcome states, resumable cancel.

Parametrized from the registry, so an executor that registers itself joins this suite.
Executors that need an engine or a cluster carry its marker (docker, ray) and skip, with
the reason, where it is missing.
"""
import pytest

from harness import executors
from harness.cellresult import classify
from harness.states import CellState
from tests.helpers.cells import make_cell, run_to_end, wait_for

MARKS = {"docker": pytest.mark.docker, "ray": pytest.mark.ray}  # engines the default suite has not


def _params():
    return [pytest.param(name, marks=MARKS.get(name, ()), id=name) for name in executors.executor_names()]


@pytest.fixture(params=_params())
def executor(request):
    cls = executors.load(request.param)
    if cls is None:
        pytest.skip("executor %r is not importable here" % request.param)
    try:
        ex = cls.create(threads=1)
    except Exception as e:  # no engine / no cluster: the marker's suite is where it must work
        pytest.skip("executor %r cannot start here: %s" % (request.param, str(e).splitlines()[0]))
    yield ex
    ex.close()


def test_every_registered_executor_is_in_this_suite():
    assert set(executors.executor_names()) >= {"local", "docker", "ray"}
    assert "dryrun" not in executors.executor_names()


@pytest.mark.parametrize("name", executors.executor_names())
def test_registry_names_each_class_by_the_name_it_runs_under(name):
    cls = executors.load(name)
    if cls is None:
        pytest.skip("executor %r is not importable here" % name)
    assert cls.name == name  # status.json's `executor` and skip reasons use cls.name


def test_unknown_executor_is_none_not_an_exception():
    assert executors.load("nosuch") is None


def test_submit_poll_ends_done_and_writes_the_contract(executor, tmp_path):
    cell, run_dir = make_cell(tmp_path, executor=executor.name)
    sub, state, reason = run_to_end(executor, cell, run_dir)
    assert (state, reason) == ("done", ""), (run_dir / "stdout.log").read_text()[-2000:]
    assert sub.outcome is not None and not list(executor.poll([sub]))
    for name in ("env.json", "train.jsonl", "eval.json", "checkpoints/last.pt"):
        assert (run_dir / name).exists(), name


def test_crashing_trainer_ends_failed_with_a_reason(executor, tmp_path):
    # an unknown renderer is rejected by the trainer itself, after the harness started it
    cell, run_dir = make_cell(tmp_path, config="{}", executor=executor.name)
    (run_dir / "cell.yaml").write_text("preset: tiny\nrenderer: no-such-renderer\n")
    _, state, reason = run_to_end(executor, cell, run_dir)
    assert state == "failed" and reason


@pytest.mark.slow  # waits for a checkpoint: the longest case, kept out of the 3-minute default suite
def test_cancel_leaves_the_cell_resumable(executor, tmp_path):
    cell, run_dir = make_cell(tmp_path, config="{builtin_num_train: 64, num_epochs: 4}", executor=executor.name)
    sub = executor.submit(cell, run_dir)
    wait_for(lambda: (run_dir / "checkpoints" / "last.pt").exists(), what="first checkpoint")
    executor.cancel([sub])
    wait_for(lambda: not list(executor.poll([sub])), timeout=60, what="the cancelled cell to end")
    assert classify(sub.outcome, run_dir)[0] == CellState.INTERRUPTED
    assert (run_dir / ".incomplete").exists()
