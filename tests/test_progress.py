"""Live progress of `repro run`: rich live lines on a terminal, plain lines in logs; real cells and folders."""
import io
import re

import pytest

from harness.cells import expand
from harness.matrix import load_study
from harness.progress import Progress, cell_progress
from harness.states import CellState
from tests.helpers.runfolders import copy_run, real_run_folder

MATRIX = """\
axes:
  stack:
    - {name: cpu, image: local, torch: "2.13.0"}
  preset: [tiny]
  seed: [0, 1, 2]
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def cells(tmp_path):
    (tmp_path / "m.yml").write_text(MATRIX)
    return expand(load_study(tmp_path / "m.yml"))


@pytest.fixture
def running_dir(tmp_path, tmp_path_factory):
    return copy_run(real_run_folder(tmp_path_factory), tmp_path / "results")


def _drive(progress, cells, running_dir):
    first, second, third = cells
    progress.settled(CellState.SKIPPED)
    progress.started(first, running_dir)
    progress.tick()
    progress.ended(first, CellState.DONE)
    progress.started(second, running_dir)
    progress.tick()
    progress.ended(second, CellState.FAILED, "trainer exited with code 1\nlog tail")
    progress.close()


def test_terminal_draws_a_study_bar_and_one_live_line_per_running_cell_in_place(cells, running_dir):
    out = io.StringIO()
    progress = Progress(total=3, jobs=1, stream=out, tty=True)
    first, second, _ = cells
    progress.settled(CellState.SKIPPED)
    progress.started(first, running_dir)
    progress.tick()
    drawn = out.getvalue()
    assert "\x1b[" in drawn and "━" in drawn                       # a bar, drawn with terminal codes
    plain = ANSI.sub("", drawn)
    assert "cells 1/3" in plain and "1 running, 1 skipped, 1 queued" in plain and "ETA" in plain
    assert first.cell_id in plain and "it 4/4 loss" in plain       # the real train.jsonl's last record
    progress.tick()
    assert "\x1b[2K" in out.getvalue()[len(drawn):]                # redrawn in place: lines erased, not appended
    progress.ended(first, CellState.DONE)
    progress.started(second, running_dir)
    progress.tick()
    progress.ended(second, CellState.FAILED, "trainer exited with code 1\nlog tail")
    progress.close()
    text = ANSI.sub("", out.getvalue())
    assert "done     %s" % first.cell_id in text and "failed   %s" % second.cell_id in text
    assert "trainer exited with code 1" in text and "log tail" not in text


def test_terminal_lines_fit_the_terminal_width(cells, running_dir, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")  # what a 60-column terminal tells rich
    out = io.StringIO()
    progress = Progress(total=3, jobs=1, stream=out, tty=True)
    progress.started(cells[0], running_dir)
    progress.tick()
    progress.close()
    frames = [line for line in ANSI.sub("", out.getvalue().replace("\r", "\n")).split("\n") if line.strip()]
    assert frames and max(len(line) for line in frames) <= 60


def test_plain_output_has_no_terminal_codes_and_beats_with_the_block(cells, running_dir):
    out = io.StringIO()
    progress = Progress(total=3, jobs=1, stream=out, tty=False, heartbeat_s=0.0)
    _drive(progress, cells, running_dir)
    text = out.getvalue()
    assert "\x1b" not in text
    lines = text.splitlines()
    assert lines[0] == "start %s  %s" % (cells[0].cell_id, cells[0].name)
    assert lines[1].startswith("cells 3: done 0 (0 before), running 1, failed 0, diverged 0, skipped 1, queued 1")
    assert "epoch 0 iter 4/4" in lines[2]
    assert any(l.startswith("failed   %s" % cells[1].cell_id) for l in lines)


def test_eta_comes_from_the_running_cells_fraction(cells, running_dir):
    progress = Progress(total=3, jobs=1, stream=io.StringIO(), tty=False)
    assert progress.eta() is None                                  # nothing known yet
    progress.started(cells[0], running_dir)
    assert cell_progress(running_dir, cells[0].config)["fraction"] == 1.0
    assert progress.eta() is not None and progress.eta() >= 0
