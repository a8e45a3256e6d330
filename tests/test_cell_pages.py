"""Cell pages: every table row links cell.html#<id>, whose shard holds the cell's data, and every
image and raw-file link in that data resolves; a report rewrites only the shards whose cells changed."""
import base64
import json
import os
import re
import time
from pathlib import Path

import pytest

from harness.report import build_report
from harness.report.celllinks import shard_of
from tests.helpers.runfolders import write_run


def _entries(out: Path) -> dict:
    """Every cell's data as the shards hold it (each shard is one addCells({...}) call)."""
    found = {}
    for shard in sorted((out / "cells").glob("??.js")):
        text = shard.read_text()
        assert text.startswith("addCells(") and text.endswith(");\n"), shard
        entries = json.loads(text[len("addCells("):-len(");\n")])
        assert {shard_of(cell) for cell in entries} == {shard.stem}, shard   # each cell where the page looks
        found.update(entries)
    return found


def _settle(folder: Path) -> None:
    """Date the folder and its files back a minute: one changed in the last 2 s is read again whatever (runfolder.SETTLE_S)."""
    stamp = time.time() - 60
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (stamp, stamp))


def _logged_steps(entry: dict) -> int:
    """How many steps a cell's page draws (its iterations arrive as base64 float32)."""
    return len(base64.b64decode(entry["plot"]["curves"]["iter"])) // 4


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    for clip in ("none", "norm"):
        write_run(results, f"cpu-{clip}", clip=clip, seed=0, side=0.01, mad=30.0)
    write_run(results, "gpu-skip", stack="cuda11.3", state="skipped", reason="needs a GPU")
    out = tmp_path_factory.mktemp("reports")
    return build_report(results, out), out


def test_every_cell_row_links_its_data_whose_images_and_raw_files_exist(report):
    summary, out = report
    index = (out / "index.html").read_text()
    linked = set(re.findall(r'<td><a href="cell\.html#([^"]+)"', index))  # the cells table
    entries = _entries(out)
    assert linked == set(entries) == {"cpu-none", "cpu-norm", "gpu-skip"} and summary.cells == 3
    assert (out / "cell.html").is_file() and (out / "cells" / "study.js").is_file()
    for cell, data in entries.items():
        assert data["id"] == cell and f"<h1>cell {cell}:" in data["head"]
        if data["grid"]:
            assert (out / data["grid"]).is_file(), (cell, data["grid"])
        raw = re.findall(r'href="(\.\./[^"]+)"', data["head"])
        assert raw and all((out / href).exists() for href in raw), (cell, raw)
    assert entries["cpu-none"]["plot"]["curves"] and entries["gpu-skip"]["plot"] == {}
    assert entries["cpu-norm"]["config"]["clip"] == "norm" and entries["cpu-none"]["env"]["python"] == "3.11.7"
    study = (out / "cells" / "study.js").read_text()
    assert study.startswith("setStudy(") and json.loads(study[len("setStudy("):-3])["baseline"]["clip"] in ("none", "norm")


def test_a_report_rewrites_only_the_shards_of_cells_that_changed(tmp_path):
    results, out = tmp_path / "results", tmp_path / "reports"
    for seed in range(12):
        write_run(results, f"cell-{seed:02d}", seed=seed)
    (out / "cells").mkdir(parents=True)
    (out / "cells" / "cell-00.html").write_text("a page per cell, as an earlier report wrote them")
    _settle(results)
    build_report(results, out)
    assert not (out / "cells" / "cell-00.html").exists()   # the old page files are gone
    shards = {p.name: p.read_text() for p in (out / "cells").glob("??.js")}
    logged = _logged_steps(_entries(out)["cell-05"])

    with open(results / "cell-05" / "train.jsonl", "a") as fh:   # one cell logs on
        fh.write(json.dumps({"iter": 500, "loss_total": 0.5, "grad_norm": 1.0}) + "\n")
    _settle(results / "cell-05")
    second = build_report(results, out)
    rewritten = {p.name for p in second.outputs if p.parent.name == "cells" and p.name != "study.js"}
    assert rewritten == {shard_of("cell-05") + ".js"} and second.reread == 1
    assert _logged_steps(_entries(out)["cell-05"]) == logged + 1
    assert all((out / "cells" / name).read_text() == text for name, text in shards.items()
               if name != shard_of("cell-05") + ".js")

    for path in sorted((results / "cell-07").rglob("*"), reverse=True):   # one cell's folder goes
        path.unlink() if path.is_file() else path.rmdir()
    (results / "cell-07").rmdir()
    build_report(results, out)
    assert "cell-07" not in _entries(out) and len(_entries(out)) == 11
