"""One contract for every executor: settings, schedule, submit/poll/cancel/close, outcomes, attempts.

Parametrized over the registry plus a fake third executor (tests/helpers/fake_executor.py),
written as a new cluster executor would be: it joins this suite by being listed here.
Executors that need an engine or a cluster carry its marker (docker, ray); where it is
missing they skip with the reason, and under CI=true they fail (tests/helpers/engine.py).
"""
import pytest

from harness import executors
from harness.cellresult import classify
from harness.executors.base import ExecutorError, Schedule
from harness.executors.settings import load_settings, setting_options
from harness.progress import Progress
from harness.runfolder import read_run_folder
from harness.scheduler import run_cells
from harness.states import CellState
from tests.helpers.cells import make_cell, run_to_end, wait_for
from tests.helpers.engine import unavailable
from tests.helpers.fake_executor import FakeClusterExecutor, FakeSettings

MARKS = {"docker": pytest.mark.docker, "ray": pytest.mark.ray}  # engines the default suite has not
FAKE = "tests.helpers.fake_executor:FakeClusterExecutor"


@pytest.fixture(autouse=True)
def _fake_registered(monkeypatch):
    monkeypatch.setitem(executors.EXECUTORS, "fake", FAKE)


def _params():
    return [pytest.param(name, marks=MARKS.get(name, ()), id=name) for name in executors.executor_names() + ["fake"]]


@pytest.fixture(params=_params())
def executor(request):
    cls = executors.load(request.param)
    assert cls is not None, "executor %r is registered but its module does not import" % request.param
    try:
        ex = cls.create(load_settings(request.param, cls.settings_model))
    except ExecutorError as e:  # no engine or no cluster: one line saying so, never a traceback
        unavailable("executor %r cannot start here: %s" % (request.param, e))
    yield ex
    ex.close()


@pytest.mark.parametrize("name", executors.executor_names() + ["fake"])
def test_each_executor_runs_under_its_registry_name_and_declares_its_settings(name):
    cls = executors.load(name)
    assert cls.name == name  # status.json's `executor` and skip reasons use cls.name
    options = setting_options(name, cls.settings_model)
    assert options and all(o.option.startswith("--%s-" % name) and o.env.startswith("REPRO_%s_" % name.upper())
                           for o in options)
    assert all("[default: " in o.help for o in options)


def test_a_setting_comes_from_the_option_else_the_variable_else_the_default():
    env = {"REPRO_FAKE_NODES": "5", "REPRO_FAKE_CPUS": "4"}
    assert load_settings("fake", FakeSettings, {"cpus": "2"}, environ=env) == FakeSettings(nodes=5, cpus=2)
    assert load_settings("fake", FakeSettings, environ={}) == FakeSettings()


@pytest.mark.parametrize("given, env, line", [
    ({}, {"REPRO_FAKE_NODES": "many"}, "REPRO_FAKE_NODES='many': input should be a valid integer"),
    ({"nodes": "0"}, {}, "--fake-nodes='0': input should be greater than 0 (fake setting nodes: simulated nodes"),
    ({}, {"REPRO_FAKE_LOSE_FIRST_LAUNCH": "maybe"}, "REPRO_FAKE_LOSE_FIRST_LAUNCH='maybe': input should be a valid boolean"),
])
def test_a_bad_setting_is_one_line_naming_where_it_came_from(given, env, line):
    with pytest.raises(ExecutorError) as err:
        load_settings("fake", FakeSettings, given, environ=env)
    assert str(err.value).startswith(line) and "\n" not in str(err.value)


def test_a_cluster_executor_sizes_cells_by_its_cluster_not_by_the_head():
    ex = FakeClusterExecutor(FakeSettings(nodes=7, cpus=3))
    assert ex.schedule([], cores=2) == Schedule(jobs=7, threads=3)
    assert ex.schedule([], cores=2, jobs=2) == Schedule(jobs=2, threads=3)


def test_unknown_executor_is_none_not_an_exception():
    assert executors.load("nosuch") is None


def test_submit_poll_ends_done_and_writes_the_contract(executor, tmp_path):
    cell, run_dir = make_cell(tmp_path, executor=executor.name)
    sub, state, reason = run_to_end(executor, cell, run_dir)
    assert (state, reason) == ("done", ""), (run_dir / "stdout.log").read_text()[-2000:]
    assert sub.outcome is not None and sub.outcome.attempts >= 1 and not list(executor.poll([sub]))
    for name in ("env.json", "train.jsonl", "eval.json", "checkpoints/last.pt"):
        assert (run_dir / name).exists(), name
    assert read_run_folder(run_dir).env["harness_version"]   # every executor passes trainer_env()


def test_crashing_trainer_ends_failed_with_a_reason(executor, tmp_path):
    # an unknown renderer is rejected by the trainer itself, after the harness started it
    cell, run_dir = make_cell(tmp_path, config="{}", executor=executor.name)
    (run_dir / "cell.yaml").write_text("preset: tiny\nrenderer: no-such-renderer\n")
    _, state, reason = run_to_end(executor, cell, run_dir)
    assert state == "failed" and reason


def test_relaunches_travel_in_the_outcome_into_status_json(tmp_path):
    # a cell the trainer refuses at once (its data folder holds no images): the relaunch is tested, not training
    data = tmp_path / "empty-data"
    for split in ("train", "val", "test"):
        for kind in ("image", "depth"):
            (data / split / kind).mkdir(parents=True)
    cell, _ = make_cell(tmp_path, config="{dataset: synface, data_dir: %s}" % data, executor="fake")
    ex = FakeClusterExecutor(FakeSettings(lose_first_launch=True))
    (result,) = run_cells([cell], ex, tmp_path / "fresh", jobs=1, threads=1,
                          progress=Progress(total=1, jobs=1, tty=False))
    status = read_run_folder(tmp_path / "fresh" / cell.cell_id).status
    assert result.state == CellState.FAILED and (status["state"], status["attempt"]) == ("failed", 2)
    assert "empty-data" in status["reason"]


@pytest.mark.slow  # waits for a checkpoint: the longest case, kept out of the 3-minute default suite
def test_cancel_leaves_the_cell_resumable(executor, tmp_path):
    cell, run_dir = make_cell(tmp_path, config="{builtin_num_train: 64, num_epochs: 4}", executor=executor.name)
    sub = executor.submit(cell, run_dir)
    wait_for(lambda: (run_dir / "checkpoints" / "last.pt").exists(), what="first checkpoint")
    executor.cancel([sub])
    wait_for(lambda: not list(executor.poll([sub])), timeout=60, what="the cancelled cell to end")
    assert classify(sub.outcome, run_dir)[0] == CellState.INTERRUPTED
    assert (run_dir / ".incomplete").exists()
