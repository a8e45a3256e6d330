"""`repro status` from the folders alone: real run folders, then damaged copies of them."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

MATRIX = """\
axes:
  stack:
    - {name: cpu, image: local, torch: "2.13.0"}
  preset: [tiny]
"""


def repro(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def done_cell(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("status")
    (tmp / "m.yml").write_text(MATRIX)
    res = repro("run", "--matrix", tmp / "m.yml", "--results", tmp / "results")
    assert res.returncode == 0, res.stderr
    (cell,) = [p for p in (tmp / "results").iterdir() if p.is_dir() and not p.name.startswith(".")]
    return cell


@pytest.fixture
def results(tmp_path, done_cell):
    out = tmp_path / "results"
    out.mkdir()
    shutil.copytree(done_cell, out / done_cell.name)
    return out


def rows(results):
    res = repro("status", "--results", results, "--json")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    return {r["cell_id"]: r for r in json.loads(res.stdout)}


def test_status_of_a_done_cell(results, done_cell):
    row = rows(results)[done_cell.name]
    assert row["state"] == "done" and row["reason"] == ""
    assert row["iter"] == 3 and row["total"] == 4 and isinstance(row["loss"], float)
    table = repro("status", "--results", results).stdout
    assert "cpu/ours/clip=none/seed=0" in table and "ep 0 it 4/4" in table and "1 folders: 1 done" in table


def test_torn_train_jsonl_line_is_skipped_and_said(results, done_cell):
    with open(results / done_cell.name / "train.jsonl", "a") as f:
        f.write('{"epoch": 0, "iter": 4, "loss_to')
    row = rows(results)[done_cell.name]
    assert row["iter"] == 3 and "train.jsonl: torn last line skipped" in row["reason"]


@pytest.mark.parametrize("damage, note", [("missing", "eval.json missing"), ("empty", "eval.json empty")])
def test_missing_or_empty_eval_json_is_reported(results, done_cell, damage, note):
    ev = results / done_cell.name / "eval.json"
    ev.unlink() if damage == "missing" else ev.write_text("")
    assert note in rows(results)[done_cell.name]["reason"]


def test_stray_folder_is_a_skipped_row(results):
    (results / "holiday-photos").mkdir()
    (results / "runs.csv").write_text("not a folder\n")
    row = rows(results)["holiday-photos"]
    assert row["state"] == "skipped" and "not a cell folder" in row["reason"]


def test_running_cell_without_a_run_is_interrupted(results, done_cell):
    run_dir = results / done_cell.name
    st = json.loads((run_dir / "status.json").read_text())
    (run_dir / "status.json").write_text(json.dumps(dict(st, state="running", ended=None)))
    (run_dir / ".incomplete").write_text("{}")
    row = rows(results)[done_cell.name]
    assert row["state"] == "interrupted" and "resumes" in row["reason"]
