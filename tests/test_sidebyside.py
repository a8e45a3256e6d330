"""`repro report --side-by-side A B`: two real cells on one page, and one-line errors for bad references."""
import json
import re

import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from harness.cli import main
from harness.report import build_report
from harness.report.celllinks import shard_file, shard_of
from harness.report.cellref import CellRefError, resolve_cell
from tests.helpers.recast import recast
from tests.helpers.runfolders import copy_run, real_run_folder, rewrite_train_log

A, B = "aaaa11112222", "bbbb33334444"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Two copies of one real tiny cell: A unclipped, B clipped with a spike in its log."""
    results = tmp_path_factory.mktemp("results")
    real = real_run_folder(tmp_path_factory)
    recast(copy_run(real, results, "a"), A)
    b = recast(copy_run(real, results, "b"), B, axes={"clip": "norm"})
    losses = [1.0 - 0.01 * i for i in range(40)]
    losses[30] = 50.0
    rewrite_train_log(b, losses, grads=[2.0] * 40, clipped=[i >= 20 for i in range(40)])
    return results


@pytest.fixture(scope="module")
def report(results, tmp_path_factory):
    reports = tmp_path_factory.mktemp("reports")
    return build_report(results, reports, compare=(A[:5], "cpu/ours/clip=norm/seed=0")), reports


def test_compare_page_shows_both_cells_and_highlights_what_differs(report):
    summary, reports = report
    assert summary.compare_page == reports / f"compare-{A}-{B}.html"
    assert f"side by side -> {summary.compare_page}" in str(summary)
    page = summary.compare_page.read_text()
    assert f'href="cell.html#{A}"' in page and f'href="cell.html#{B}"' in page
    # the config table: the clip key differs (highlighted), none vs norm; the equal ones are folded
    assert re.search(r'<tr class="differs"><td>clip</td><td>none</td><td>norm</td></tr>', page)
    assert "keys are equal</summary>" in page
    # the scores: identical eval files, but B's rewritten log has a spike and clipped steps
    assert re.search(r'<tr class="differs"><td>spikes</td><td>0</td><td>1</td><td>\+1</td></tr>', page)
    assert re.search(r"<tr><td>SIDE ×10⁻² \(test mean\)</td><td>([\d.]+)</td><td>\1</td><td>\+0\.0+</td></tr>", page)
    images = re.findall(r"src='([^']+)'", page)
    assert {i.rsplit("/", 1)[1] for i in images} == {"curves.png", "scores.png", "grids.png"}
    for src in images:
        with Image.open(reports / src) as img:
            assert img.size[0] > 300, src


def _head(reports, cell: str) -> str:
    """The heading of a cell's page as its shard holds it (cellpage.js puts it on the page)."""
    text = (reports / shard_file(shard_of(cell))).read_text()
    return json.loads(text[len("addCells("):-len(");\n")])[cell]["head"]


def test_both_cell_pages_link_the_comparison(report):
    _, reports = report
    for cell in (A, B):
        assert f'href="compare-{A}-{B}.html"' in _head(reports, cell)


def test_a_plain_report_keeps_linking_pages_made_before(report, results):
    _, reports = report
    build_report(results, reports)
    assert f'href="compare-{A}-{B}.html"' in _head(reports, A)


@pytest.mark.parametrize("refs, message", [
    (("zzzz", B), "'zzzz': no cell in RESULTS has this id, id prefix or name"),
    (("", B), "'': no cell in RESULTS has this id"),
    ((A, A[:3]), f"'{A}' and '{A[:3]}' both name cell {A}; compare two different cells"),
])
def test_bad_references_are_one_line_and_exit_2(results, tmp_path, refs, message):
    res = CliRunner().invoke(main, ["report", "--results", str(results), "--reports", str(tmp_path / "r"),
                                    "--side-by-side", *refs])
    assert res.exit_code == 2
    assert res.stderr.startswith("repro: error: report --side-by-side: " + message.replace("RESULTS", str(results)))
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()  # nothing written


def test_an_ambiguous_prefix_names_the_candidates():
    df = pd.DataFrame({"cell_id": [A, "aaaa99990000"], "name": ["x", "y"]})
    with pytest.raises(CellRefError, match=r"'aaaa' matches 2 cells in results/: aaaa11112222 \(x\), "
                                           r"aaaa99990000 \(y\); give more characters"):
        resolve_cell(df, "aaaa")
    assert resolve_cell(df, "aaaa9")["name"] == "y" and resolve_cell(df, "x")["cell_id"] == A
