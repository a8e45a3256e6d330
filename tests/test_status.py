"""`repro status` from the folders alone: a real run folder, then damaged copies of it."""
import json

import pytest

from tests.helpers.runfolders import copy_run, real_run_folder, repro, set_status


@pytest.fixture(scope="module")
def done_cell(tmp_path_factory):
    return real_run_folder(tmp_path_factory)


@pytest.fixture
def results(tmp_path, done_cell):
    out = tmp_path / "results"
    out.mkdir()
    copy_run(done_cell, out)
    return out


def rows(results):
    res = repro("status", "--results", results, "--json")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    return {r["cell_id"]: r for r in json.loads(res.stdout)}


def test_status_of_a_done_cell(results, done_cell):
    row = rows(results)[done_cell.name]
    assert row["state"] == "done" and row["reason"] == ""
    assert row["iter"] == 3 and row["total"] == 4 and isinstance(row["loss"], float)
    assert row["elapsed_s"] is not None and row["elapsed_s"] >= 0
    table = repro("status", "--results", results).stdout
    assert "cpu/ours/clip=none/seed=0" in table and "ep 0 it 4/4" in table and "1 folders: 1 done" in table


def test_torn_train_jsonl_line_is_skipped_and_said(results, done_cell):
    with open(results / done_cell.name / "train.jsonl", "a") as f:
        f.write('{"epoch": 0, "iter": 4, "loss_to')
    row = rows(results)[done_cell.name]
    assert row["iter"] == 3 and "train.jsonl torn last line skipped" in row["reason"]


@pytest.mark.parametrize("name, damage, note, state", [
    ("eval.json", "missing", "eval.json missing", "done"), ("eval.json", "empty", "eval.json empty", "done"),
    ("train.jsonl", "missing", "train.jsonl missing", "done"), ("train.jsonl", "empty", "train.jsonl empty", "done"),
    # without env.json nothing says which code made the result: it cannot count as current
    ("env.json", "empty", "env.json empty", "stale")])
def test_missing_or_empty_files_are_reported(results, done_cell, name, damage, note, state):
    path = results / done_cell.name / name
    path.unlink() if damage == "missing" else path.write_text("")
    row = rows(results)[done_cell.name]
    assert row["state"] == state and note in row["reason"]


def test_stray_folder_is_a_skipped_row(results):
    (results / "holiday-photos").mkdir()
    (results / "runs.csv").write_text("not a folder\n")
    row = rows(results)["holiday-photos"]
    assert row["state"] == "skipped" and "cell.json missing: not a run folder" in row["reason"]


def test_running_cell_without_a_run_is_interrupted(results, done_cell):
    run_dir = results / done_cell.name
    set_status(run_dir, state="running", ended=None)
    (run_dir / ".incomplete").write_text("{}")
    row = rows(results)[done_cell.name]
    assert row["state"] == "interrupted" and "resumes" in row["reason"]


def test_a_state_nothing_writes_reads_as_unknown(results, done_cell):
    set_status(results / done_cell.name, state="exploded")
    assert rows(results)[done_cell.name]["state"] == "unknown"
