"""Results made by other code are stale: named, kept unless asked, retrained on request.

Real runs of the tiny preset in a copy of the project (the copy's model/step.py is
edited, never the checkout's): `repro` runs from the copy, so its trainer and its
digests are the copy's.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

from harness.runfolder import MARKER, set_aside_results
from tests.helpers.runfolders import ONE_CELL_MATRIX, ROOT, copy_run, real_study

CLIP_LINE = '        return stats["grad_norm"] > threshold\n'


def repro_in(project, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def project(tmp_path, tmp_path_factory):
    """A copy of the project's code, with results/ holding the one real done tiny cell."""
    copy = tmp_path / "project"
    for package in ("model", "harness"):
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "m.yml").write_text(ONE_CELL_MATRIX)
    copy_run(real_study(tmp_path_factory).run_dir, copy / "results")
    return copy


def edit_step(project, old, new):
    step = project / "model" / "step.py"
    text = step.read_text()
    assert old in text
    step.write_text(text.replace(old, new, 1))


def dry_run(project, *extra):
    res = repro_in(project, "run", "--matrix", "m.yml", "--results", "results", "--dry-run", *extra)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()[0]


def test_comments_docstrings_and_blank_lines_make_nothing_stale(project):
    edit_step(project, CLIP_LINE, "\n    # clipping acts in place on .grad\n" + CLIP_LINE)
    edit_step(project, '"""Apply the cell', '"""Apply (reworded) the cell')
    assert dry_run(project).split()[2] == "cached"


def test_changed_clipping_line_lists_the_cell_stale_naming_the_file(project):
    edit_step(project, CLIP_LINE, CLIP_LINE.replace(">", ">="))
    assert dry_run(project).split()[2:5] == ["stale", "model/step.py", "changed;"]
    status = repro_in(project, "status", "--results", "results")
    assert "stale" in status.stdout and "model/step.py changed (done)" in status.stdout
    cell_id = next(p.name for p in (project / "results").iterdir() if p.is_dir() and not p.name.startswith("."))
    why = repro_in(project, "status", "--results", "results", "--why", cell_id[:6]).stdout
    changed = [line.split()[0] for line in why.splitlines() if "CHANGED" in line]
    assert changed == ["model/step.py"] and "-> %s (the folder's id)" % cell_id in why
    assert why.rstrip().endswith("stale: model/step.py changed")
    # naming the cell asks for it to be current
    assert dry_run(project, "--cell", cell_id[:6]).split()[2] == "rerun"


@pytest.mark.slow
def test_stale_cell_is_kept_reported_then_retrained_on_request(project):
    edit_step(project, CLIP_LINE, CLIP_LINE.replace(">", ">="))
    kept = repro_in(project, "run", "--matrix", "m.yml", "--results", "results")
    assert kept.returncode == 0 and "model/step.py changed; --rerun-stale reruns it" in kept.stderr
    report = repro_in(project, "report", "--results", "results", "--reports", "reports")
    assert report.returncode == 0, report.stderr
    assert "1 of 1 cells stale (model/step.py changed)" in (project / "reports" / "table3.md").read_text()
    rerun = repro_in(project, "run", "--matrix", "m.yml", "--results", "results", "--rerun-stale")
    assert rerun.returncode == 0 and "1 done" in rerun.stderr, rerun.stderr
    (cell,) = [p for p in (project / "results").iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert "resuming" not in (cell / "stdout.log").read_text()   # trained from scratch, not from the old weights
    assert json.loads((cell / ".previous" / "env.json").read_text())["code"]["model/step.py"] != \
        json.loads((cell / "env.json").read_text())["code"]["model/step.py"]
    assert dry_run(project).split()[2] == "cached"


@pytest.mark.slow
def test_unreadable_eval_json_is_rescored_without_retraining(tmp_path, tmp_path_factory):
    study = real_study(tmp_path_factory)
    cell = copy_run(study.run_dir, tmp_path / "results")
    good, log = (cell / "eval.json").read_bytes(), (cell / "train.jsonl").read_bytes()
    (cell / "eval.json").write_text('{"side_mean": 0.03')   # torn
    res = repro_in(ROOT, "run", "--matrix", study.matrix, "--results", tmp_path / "results", "--dry-run")
    assert "rescore     eval.json not valid JSON" in res.stdout
    res = repro_in(ROOT, "run", "--matrix", study.matrix, "--results", tmp_path / "results")
    assert res.returncode == 0, res.stderr
    assert (cell / "eval.json").read_bytes() == good and (cell / "train.jsonl").read_bytes() == log
    assert "resuming from" in (cell / "stdout.log").read_text().splitlines()[-2]


def test_setting_aside_twice_keeps_the_results_it_set_aside(tmp_path, tmp_path_factory):
    # a rerun stopped between set-aside and the new training must not lose the old results next time
    cell = copy_run(real_study(tmp_path_factory).run_dir, tmp_path / "results")
    env = (cell / "env.json").read_bytes()
    aside = set_aside_results(cell)
    assert not (cell / "env.json").exists() and (aside / "env.json").read_bytes() == env
    assert set_aside_results(cell) == aside and (aside / "env.json").read_bytes() == env


def test_an_interrupted_cell_under_changed_code_is_trained_anew_not_resumed(project):
    (cell,) = [p for p in (project / "results").iterdir() if p.is_dir() and not p.name.startswith(".")]
    (cell / MARKER).write_text("{}")   # as a killed run leaves it: the next run would resume
    status = json.loads((cell / "status.json").read_text())
    (cell / "status.json").write_text(json.dumps(dict(status, state="running")))
    assert dry_run(project).split()[2] == "resume"
    edit_step(project, CLIP_LINE, CLIP_LINE.replace(">", ">="))
    line = dry_run(project)
    assert line.split()[2] == "rerun" and "its checkpoint is from other code (model/step.py changed)" in line
