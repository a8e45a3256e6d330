"""Table 3 rows say what their cells ran (config.json, steps), smoke rows are marked, and the
footnotes list the env.json keys that differ between the CPU rows; built from real run folders."""
import json
import re

import pytest

from harness.collect import collect
from harness.report import build_report, figures
from harness.report.celllinks import shard_file, shard_of
from harness.report.ran import SMOKE_MAX_STEPS, with_ran
from harness.report.table3 import SMOKE_MARK, footnotes, format_rows, table3
from tests.helpers.recast import recast
from tests.helpers.runfolders import copy_run, real_run_folder, rewrite_train_log

OLD = "cccc55556666"   # the cell recast as the cpu-torch1.8 stack
LONG = SMOKE_MAX_STEPS + 50


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    return real_run_folder(tmp_path_factory)


@pytest.fixture(scope="module")
def results(real, tmp_path_factory):
    """The real tiny cell (stack cpu), and a copy as stack cpu-torch1.8 on other versions, run longer."""
    results = tmp_path_factory.mktemp("results")
    copy_run(real, results)
    old = recast(copy_run(real, results, "old"), OLD, axes={"stack": "cpu-torch1.8"},
                 stack={"name": "cpu-torch1.8", "torch": "1.8.1"},
                 env={"torch": "1.8.1+cu102", "python": "3.9.2", "host": "7afde839836f"})
    rewrite_train_log(old, [1.0 - 0.001 * i for i in range(LONG)])
    return results


def _label(table, stack_label):
    header, rows = format_rows(table, with_seed=True)
    (row,) = [r for r in rows if r[0].startswith(stack_label + " (")]
    return row[0]


def test_rows_are_labelled_with_what_ran_and_short_runs_are_smoke_checks(results, real):
    config = json.loads((real / "config.json").read_text())
    steps = max(json.loads(line)["iter"] for line in (real / "train.jsonl").read_text().splitlines()) + 1
    assert steps < SMOKE_MAX_STEPS  # the tiny preset: a smoke run
    table = table3(with_ran(collect(results).table))
    ran = f"{config['preset']}, {config['image_size']} px, nf {config['nf']}"
    ran_with = "data builtin; no TF32, align_corners True, benchmark off, deterministic off, our renderer"
    assert _label(table, "CPU") == f"CPU ({ran}, {steps} steps; {ran_with}) [{SMOKE_MARK}]"
    assert _label(table, "cpu-torch1.8") == f"cpu-torch1.8 ({ran}, {LONG} steps; {ran_with})"


def test_the_footnote_lists_env_keys_that_differ_between_cpu_rows(results, real):
    env = json.loads((real / "env.json").read_text())
    (note,) = [n for n in footnotes(collect(results).table) if n.startswith("CPU rows")]
    assert note.startswith("CPU rows (CPU vs cpu-torch1.8): env.json keys that differ between their cells (2): ")
    assert f"python {env['python']} vs 3.9.2" in note and f"torch {env['torch']} vs 1.8.1+cu102" in note
    assert not re.search(r"\b(argv|host) ", note.split("Left out")[0])  # per-run keys are no stack property


def test_one_cpu_row_has_no_such_footnote(real, tmp_path):
    copy_run(real, tmp_path)
    assert not [n for n in footnotes(collect(tmp_path).table) if n.startswith("CPU rows")]


def test_index_figure_captions_link_the_cells_each_figure_draws(results, tmp_path):
    build_report(results, tmp_path)
    index = (tmp_path / "index.html").read_text()
    captions = dict(re.findall(r"<figcaption class='small'>(\S+\.png) · (.*?)</figcaption>", index))
    df = collect(results).table
    for figure in ("fig8_losses.png", "grad_norms.png", "fig7_decompositions.png"):
        linked = re.findall(r'<a href="cell\.html#(\w+)"', captions[figure])
        assert sorted(linked) == sorted(df["cell_id"]), figure
        assert all(f'"{c}": {{' in (tmp_path / shard_file(shard_of(c))).read_text() for c in linked)   # its page's data
    md = (tmp_path / "table3.md").read_text()
    assert f"[{SMOKE_MARK}]" in md and "CPU rows (CPU vs cpu-torch1.8)" in md


def test_the_curve_figures_captions_list_the_seeds_they_draw_not_every_cell(real, tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "MAX_SEEDS_PER_LINE", 2)   # a line draws at most two seeds
    results = tmp_path / "results"
    ids = [f"dddd0000000{seed}" for seed in range(3)]
    for seed, cell_id in enumerate(ids):
        recast(copy_run(real, results, cell_id), cell_id, axes={"seed": seed})
    build_report(results, tmp_path / "reports")
    index = (tmp_path / "reports" / "index.html").read_text()
    captions = dict(re.findall(r"<figcaption class='small'>(\S+\.png) · (.*?)</figcaption>", index))
    for figure in ("fig8_losses.png", "grad_norms.png"):
        assert re.findall(r'<a href="cell\.html#(\w+)"', captions[figure]) == ids[:2], figure
        assert "draws 2 cells" in captions[figure]
