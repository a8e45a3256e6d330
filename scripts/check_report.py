"""CI: check that a smoke study's results and reports exist and parse.

Usage: python scripts/check_report.py RESULTS_DIR REPORTS_DIR
Exits non-zero with one line per problem.
"""
import json
import sys
from pathlib import Path

import pandas as pd
from PIL import Image


def problems(results: Path, reports: Path):
    runs = pd.read_parquet(results / "runs.parquet")
    if runs.empty:
        yield "runs.parquet has no rows"
    if not (runs["state"] == "done").all():
        yield "cells not done: %s" % runs.loc[runs["state"] != "done", ["cell_id", "state", "reason"]].to_dict("records")
    for cell in runs.loc[runs["state"] == "done", "cell_id"]:
        evaluation = json.loads((results / cell / "eval.json").read_text())
        if not evaluation["n_images"] > 0:
            yield "%s: eval.json has no images" % cell
    for name in ("table3.md", "table3.tex", "table3.csv", "index.html"):
        if not (reports / name).stat().st_size:
            yield "%s is empty" % name
    table = pd.read_csv(reports / "table3.csv")
    if table.empty:
        yield "table3.csv has no rows"
    for name in ("fig8_losses.png", "grad_norms.png", "fig7_decompositions.png"):
        with Image.open(reports / name) as image:
            image.verify()
    html = (reports / "index.html").read_text()
    for needle in ("Table 3", "fig8_losses.png", "fig7_decompositions.png"):
        if needle not in html:
            yield "index.html lacks %r" % needle


def main(argv):
    results, reports = Path(argv[1]), Path(argv[2])
    found = list(problems(results, reports))
    for line in found:
        print("check_report: " + line, file=sys.stderr)
    if not found:
        print("check_report: results and reports parse (%s)" % reports)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
