"""build_report(): Table 3 aggregation, seed values beside, figures, index.html."""
import json
import math
import os
import subprocess
import sys
import time

import pandas as pd
import pytest
from PIL import Image

from harness.collect import COLUMNS, collect
from harness.report import ReportSummary, build_report
from harness.report.table3 import seed_table, table3, to_latex
from tests.helpers.runfolders import train_lines, write_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """CPU cells done for 3 seeds x 2 clip modes (one with the perceptual loss), CUDA 11.3 skipped
    (on synface, the seed's data), an author cell diverged (built-in faces)."""
    results = tmp_path_factory.mktemp("study") / "results"
    for clip in ("none", "norm"):
        for seed, (side, mad) in enumerate([(0.010, 15.0), (0.012, 16.0), (0.014, 17.0)]):
            write_run(results, f"cpu-{clip}-{seed}", clip=clip, seed=seed, side=side, mad=mad,
                      lines=train_lines(80, spikes=(40,) if clip == "none" else (), clipped=clip != "none"),
                      perceptual="on" if (clip, seed) == ("none", 0) else "off")
            write_run(results, f"gpu-{clip}-{seed}", stack="cuda11.3", clip=clip, seed=seed,
                      state="skipped", reason="needs a GPU", env=False, dataset="synface")
    write_run(results, "auth-0", stack="cuda10.0", impl="author", state="diverged", reason="NaN",
              result={"state": "diverged", "iteration": 1234, "network": "netD"})
    write_run(results, "auth-1", stack="cuda10.0", impl="author", seed=1, state="failed",
              reason="Traceback...\nRuntimeError: CUDA out of memory")
    (results / "stray").mkdir()
    return results


@pytest.fixture(scope="module")
def built(study):
    """The study's report, built once for the tests that read its files: (summary, reports folder)."""
    reports = study.parent / "reports"  # beside results/, as `repro report` puts it
    return build_report(study, reports), reports


def _row(table, label, impl):
    rows = table[(table["row"] == label) & (table["impl"] == impl)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_table3_mean_std_over_seeds_and_seed_values_beside(study):
    df = collect(study).table
    table = table3(df, "none")
    cpu = _row(table, "CPU", "ours")
    assert cpu.n_seeds == 3
    assert cpu.side == pytest.approx(1.2) and cpu.side_std == pytest.approx(0.2)  # x100, ddof=1
    assert cpu.mad == pytest.approx(16.0) and cpu.mad_std == pytest.approx(1.0)
    assert cpu.n_no_perceptual == 2 and cpu.note == "† no perceptual loss in 2 of 3 cells"
    assert cpu.flat_side == pytest.approx(2.0) and cpu.flat_mad == pytest.approx(45.0)
    cuda113 = _row(table, "CUDA 11.3", "ours")
    assert cuda113.seed_side == 4.4603 and cuda113.seed_mad_std == 3.81  # synface: the seed's data
    assert not cuda113.seed_other_data
    # every clip-none CPU cell's log has a loss spike at iteration 40: all three failed (spiking)
    assert cpu.failed == "3/3 (100%, 95% CI 29-100%)"
    assert _row(table3(df, "norm"), "CPU", "ours").failed == "0/3 (0%, 95% CI 0-71%)"
    author10 = _row(table, "CUDA 10.0", "author")  # built-in faces: the seed's numbers do not compare
    assert author10.failed == "1/1 (100%, 95% CI 3-100%)"  # the diverged cell; the crashed one did not end
    assert author10.seed_other_data and math.isnan(author10.seed_side)
    assert cuda113.note == "skipped: needs a GPU (x3)" and cuda113.n_no_perceptual == 0  # skipped: unknown
    author = _row(table, "CUDA 10.0", "author")
    assert "diverged at iter 1234 in netD" in author.note
    assert "failed: RuntimeError: CUDA out of memory" in author.note
    assert _row(table, "CUDA 9.2", "ours").note == "not run"
    assert math.isnan(_row(table, "CUDA 9.2", "ours").seed_side)  # the seed has no number there


def test_seed_values_are_the_published_ones():
    seed = seed_table().set_index(["cuda", "impl"])
    assert seed.loc[("9.2", "author"), "side_mean"] == 0.7792
    assert seed.loc[("10.0", "ours"), "mad_mean"] == 19.05
    assert seed.loc[("11.3", "author"), "side_std"] == 0.3247
    assert (seed["clip"] == "none").all()


def test_duplicate_cells_of_one_seed_count_once(tmp_path):
    results = tmp_path / "results"
    write_run(results, "a", seed=0, side=0.01)
    write_run(results, "b", seed=0, side=0.03)
    row = _row(table3(collect(results).table), "CPU", "ours")
    assert row.n_seeds == 1 and row.side == pytest.approx(2.0) and math.isnan(row.side_std)


def test_build_report_writes_every_output(study, built):
    summary, reports = built
    assert isinstance(summary, ReportSummary)
    assert summary.cells == 14 and summary.states["skipped"] == 6 and summary.states["done"] == 6
    assert [s.folder for s in summary.skipped] == ["stray"]
    assert "14 cells" in str(summary) and "skipped stray" in str(summary)
    for name in ("table3.md", "table3.tex", "table3.csv", "index.html", "fig8_losses.png",
                 "grad_norms.png", "fig7_decompositions.png"):
        assert (reports / name).stat().st_size > 0, name
    for name in ("fig8_losses.png", "grad_norms.png", "fig7_decompositions.png"):
        assert (reports / name).read_bytes()[:8] == PNG_MAGIC
        with Image.open(reports / name) as img:
            assert img.size[0] > 200 and img.size[1] > 100
    assert (study / "runs.parquet").exists() and (study / "runs.csv").exists()


def test_table_files_have_both_tables_and_the_seed(built):
    _, reports = built
    md = (reports / "table3.md").read_text()
    assert "trained without gradient clipping" in md and "with clipping: norm" in md
    assert "1.2000 ± 0.2000" in md and "0.7792 ± 0.1387" in md and "Ours †" in md
    assert "- †: no perceptual loss: the notes count" in md
    assert "skipped: needs a GPU (x3)" in md and "not run" in md
    tex = (reports / "table3.tex").read_text()
    assert tex.count(r"\begin{tabular}") == 2 and r"$\pm$" in tex and r"$\times 10^{-2}$" in tex
    csv = pd.read_csv(reports / "table3.csv")
    assert set(csv["clip"]) == {"none", "norm"}
    assert {"row", "impl", "n_seeds", "side", "side_std", "mad", "seed_side", "note"} <= set(csv.columns)


def test_latex_escapes_notes():
    table = table3(pd.DataFrame(columns=list(COLUMNS)))
    table.loc[0, "note"] = "failed: 100% of grad_norm & more"
    assert r"100\% of grad\_norm \& more" in to_latex({"none": table})


def test_index_html_has_tables_figures_cells_and_links(built):
    _, reports = built
    page = (reports / "index.html").read_text()
    assert page.count("<h3>Table 3") == 2 and "<h2>Cells</h2><table>" in page  # two Table 3 variants + the cells
    # a stack none of whose cells started here is one folded line per table, its rows inside
    assert page.count('<tr class="notrun"><td>CUDA 11.3</td>') == 2 and "not run here: skipped: needs a GPU" in page
    for name in ("fig8_losses.png", "grad_norms.png", "fig7_decompositions.png", "table3.md"):
        assert f'src="{name}"' in page or f"href='{name}'" in page
    assert 'href="cell.html#cpu-none-0"' in page and "../results/runs.csv" in page  # rows link cell pages
    assert "needs a GPU" in page and "<details>" in page and "stray" in page
    assert "Perceptual (VGG16) loss was off" in page


def test_empty_results_still_render(tmp_path):
    summary = build_report(tmp_path / "results", tmp_path / "reports")
    assert summary.cells == 0
    md = (tmp_path / "reports" / "table3.md").read_text()
    assert md.count("not run") == 14  # 7 rows x 2 tables
    assert (tmp_path / "reports" / "fig8_losses.png").read_bytes()[:8] == PNG_MAGIC


def test_fig7_shows_a_factor_studys_baseline_cell_not_its_variant():
    from harness.report.figures import fig7_cells
    df = pd.DataFrame({"cell_id": ["tf32-on", "baseline"], "stack": "cpu", "impl": "ours", "clip": "none",
                       "stack_cuda": None, "seed": 0, "state": "done", "tf32": [True, False],
                       "samples_grid": "grid.png"})
    (_, _, _, cell), = fig7_cells(df)
    assert cell["cell_id"] == "baseline"


@pytest.mark.parametrize("stacks", [[("cpu", None)], [("cpu", None), ("cuda11.3", "11.3")]])
def test_fig7_titles_do_not_overlap(tmp_path, stacks):
    """Every text of Fig. 7 (the two-line title, each panel's two-line title) has its own box on the canvas,
    with one row of panels (a CPU-only study) as with several."""
    import collections

    import torch

    from harness.report.figures import fig7_figure
    from harness.report.grids import GRID_ROWS
    from model.samples import save_decomposition_grid
    grid = tmp_path / "test.png"
    save_decomposition_grid(str(grid), collections.OrderedDict(
        (name, torch.rand(4, 3, 16, 16)) for name in GRID_ROWS))
    cells = [{"cell_id": f"{stack}-{clip}", "stack": stack, "impl": "ours", "clip": clip, "stack_cuda": cuda,
              "seed": 0, "state": "done", "samples_grid": str(grid)}
             for stack, cuda in stacks for clip in ("none", "norm")]
    fig = fig7_figure(pd.DataFrame(cells))
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)   # constrained layout places the texts on draw
    texts = [fig._suptitle] + [ax.title for ax in fig.axes if ax.get_title()]
    boxes = [t.get_window_extent(renderer) for t in texts]
    assert len(boxes) == 1 + 2 * len(stacks) and all(b.height > 20 for b in boxes)   # two lines each
    overlaps = [(texts[i].get_text(), texts[j].get_text()) for i in range(len(boxes))
                for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]
    assert overlaps == []


def _settle(*paths, ago=60):
    """Date these files and folders and all under them `ago` s back: runfolder.folder_signature trusts them then."""
    stamp = time.time() - ago
    for path in paths:
        for each in sorted(path.rglob("*"), reverse=True) + [path]:
            os.utime(each, (stamp, stamp))


def test_a_report_after_one_cell_grew_reads_that_cell_only_and_equals_a_cold_one(tmp_path):
    """The second report reuses the first one's state (harness.report.state): it reads again only the
    folder that changed, takes Table 3's rows and the cells table's rows from the first where their
    cells did not change, and every file it writes is what a report from scratch writes. Run as
    `repro report` runs (no torch imported), so figures, runs.csv and the state come from forked processes."""
    results = tmp_path / "results"
    for clip in ("none", "norm"):
        for seed in range(3):
            write_run(results, f"cpu-{clip}-{seed}", clip=clip, seed=seed, side=0.01 + seed / 500,
                      lines=train_lines(60, spikes=(30,) if clip == "none" else ()))
    _settle(results)
    grow = json.dumps(dict(train_lines(61)[-1], loss_total=50.0, grad_norm=900.0))
    script = f"""
import os, sys, time
from pathlib import Path
from harness.report import build_report
results, out = Path({str(results)!r}), Path({str(tmp_path)!r})
build_report(results, out / "reports")
with open(results / "cpu-norm-1" / "train.jsonl", "a") as fh:
    fh.write({grow!r} + "\\n")
for each in (results / "cpu-norm-1" / "train.jsonl", results / "cpu-norm-1"):
    os.utime(each, (time.time() - 30, time.time() - 30))
warm = build_report(results, out / "reports")
cold = build_report(results, out / "cold")
assert "torch" not in sys.modules
print(warm.reread, cold.reread)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "6"]
    written = sorted(p.relative_to(tmp_path / "cold") for p in (tmp_path / "cold").rglob("*")
                     if p.is_file() and ".state" not in p.parts)
    assert len(written) > 10
    for name in written:
        assert (tmp_path / "reports" / name).read_bytes() == (tmp_path / "cold" / name).read_bytes(), name


def test_table3_aggregates_again_only_the_rows_whose_cells_changed(study, tmp_path, monkeypatch):
    from harness.report import table3 as table3_module
    from harness.report.ran import with_ran
    df = with_ran(collect(study).table)
    _, _, memo = table3_module.write_tables(df, tmp_path / "first")
    changed = df.copy()
    changed.loc[changed["cell_id"] == "cpu-norm-1", "n_spikes"] = 5.0
    aggregated, aggregate = [], table3_module._aggregate
    monkeypatch.setattr(table3_module, "_aggregate", lambda cells: aggregated.append(len(cells)) or aggregate(cells))
    tables, _, _ = table3_module.write_tables(changed, tmp_path / "second", memo)
    assert aggregated == [3]   # the CPU row with clipping: its three seeds
    fresh, _, _ = table3_module.write_tables(changed, tmp_path / "fresh")
    for clip in fresh:
        pd.testing.assert_frame_equal(tables[clip], fresh[clip])
    assert (tmp_path / "second" / "table3.md").read_text() == (tmp_path / "fresh" / "table3.md").read_text()


def test_fig8_lines_of_a_factor_study_name_what_they_change():
    from harness.report.figures import _line_labels
    rows = [dict(clip="none", clip_threshold=5.0, lr=lr, tf32=False) for lr in (1e-3, 2e-3, 3e-3)]
    rows += [dict(clip="none", clip_threshold=5.0, lr=2e-3, tf32=True), dict(clip="norm", clip_threshold=1.0, lr=3e-3, tf32=False)]
    labels = list(_line_labels(pd.DataFrame(rows), ["lr", "tf32", "clip_threshold"]))
    assert labels == ["clip=none, lr=0.001", "clip=none, lr=0.002", "clip=none, lr=0.003",
                      "clip=none, lr=0.002, tf32=True", "clip=norm @ 1.0, lr=0.003"]
