"""Cell pages: every table row links one, and every image and raw-file link on it resolves."""
import re
from pathlib import Path

import pytest

from harness.report import build_report
from tests.helpers.runfolders import write_run


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    for clip in ("none", "norm"):
        write_run(results, f"cpu-{clip}", clip=clip, seed=0, side=0.01, mad=30.0)
    write_run(results, "gpu-skip", stack="cuda11.3", state="skipped", reason="needs a GPU")
    out = tmp_path_factory.mktemp("reports")
    return build_report(results, out), out


def test_every_cell_row_links_an_existing_page_whose_images_exist(report):
    summary, out = report
    index = (out / "index.html").read_text()
    hrefs = set(re.findall(r'<td><a href="(cells/[^"/]+\.html)"', index))  # the cells table
    assert len(hrefs) == summary.cells > 0
    for href in hrefs:
        page = (out / href).read_text()
        for src in re.findall(r"src='([^']+)'", page):
            assert (out / "cells" / src).is_file(), (href, src)
        for raw in re.findall(r'href="(\.\./[^"]+)"', page):
            assert (out / "cells" / raw).exists(), (href, raw)
