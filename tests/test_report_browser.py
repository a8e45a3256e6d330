"""The report in a real headless browser (Chromium from Debian, `apt-get install chromium`).

index.html, cell pages and a comparison page are opened from disk; a probe copy of
each page, next to it so relative links resolve the same, records every image that did
not load, every error event (resource or script) and every link on the page as drawn.
index.html and the comparison page carry no script; cell.html#<id> is drawn by
cellpage.js from the cell's shard of data (a non-ASCII id checks that Python and the
script pick the same shard).
"""
import html as html_module
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

import pytest

from harness.report import build_report
from tests.helpers.recast import recast
from tests.helpers.runfolders import copy_run, real_run_folder

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install -y chromium; .ci/run does)")]

A, B, C = "dddd11112222", "eeee33334444", "zelle-ü-ß"

# Two parts: the error listener goes first in the document, before any <img> is parsed (a
# missing file:// image can fail before a listener at the end of <body> exists); the report
# of what loaded goes last.
_LISTEN = """<script>
var errors = [];
window.addEventListener('error', function (e) {
  errors.push(e.target && e.target.src ? 'load ' + e.target.src : 'script ' + e.message); }, true);
</script>"""
_PROBE = r"""<script>
window.addEventListener('load', function () {
  var broken = [].slice.call(document.images).filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
    .map(function (i) { return i.src; });
  var out = document.createElement('pre'); out.id = 'probe';
  var table3 = [].slice.call(document.querySelectorAll('h3 + table tbody tr'));
  var scored = table3.filter(function (r) { return /\d\.\d+ ± \d/.test(r.textContent); })
    .map(function (r) { return r.getBoundingClientRect().bottom; });
  var links = [].slice.call(document.links).map(function (a) { return a.href; });
  out.textContent = JSON.stringify({images: document.images.length, broken: broken, errors: errors, links: links,
    text: document.body.innerText.slice(0, 3000),
    svgs: document.querySelectorAll('svg path').length, height: window.innerHeight, width: window.innerWidth,
    first_scored_row_bottom: scored.length ? Math.min.apply(null, scored) : null});
  document.body.appendChild(out); });
</script>"""


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    real = real_run_folder(tmp_path_factory)
    recast(copy_run(real, results, "a"), A)
    recast(copy_run(real, results, "b"), B, axes={"clip": "norm"})
    recast(copy_run(real, results, "c"), C, axes={"seed": 1})
    out = tmp_path_factory.mktemp("reports")
    build_report(results, out, compare=(A, B))
    return out


def _load(page: Path, screenshot: Path | None = None, fragment: str = "") -> dict:
    """Open a probe copy of page (at #fragment) in headless Chromium at 1400x900; return what the probe saw."""
    probe = page.with_name("_probe-" + page.name)
    at = "#" + quote(fragment, safe="") if fragment else ""
    html = page.read_text()
    doctype = re.match(r"(?is)\s*<!doctype[^>]*>", html)
    head = doctype.end() if doctype else 0
    probe.write_text(html[:head] + _LISTEN + html[head:].replace("</body>", _PROBE + "</body>"))
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
            "--window-size=1400,900", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
    if screenshot:   # the page itself, without the probe (the probe's output goes below everything)
        subprocess.run(args + [f"--screenshot={screenshot}", page.as_uri() + at], capture_output=True, timeout=120)
    res = subprocess.run(args + ["--dump-dom", probe.as_uri() + at], capture_output=True, text=True, timeout=120)
    probe.unlink()
    found = re.search(r'<pre id="probe">(.*?)</pre>', res.stdout)
    assert found, "no probe output; chromium said: " + res.stderr[-2000:]
    console = [line for line in res.stderr.splitlines() if ":CONSOLE" in line]
    return dict(json.loads(html_module.unescape(found.group(1))), console=console)


@pytest.mark.parametrize("page", ["index.html", f"cell.html#{A}", f"cell.html#{C}", f"compare-{A}-{B}.html"])
def test_page_loads_in_chromium_with_every_image_and_no_error(reports, page):
    name, _, cell = page.partition("#")
    seen = _load(reports / name, fragment=cell)
    assert seen["broken"] == [] and seen["errors"] == [] and seen["console"] == []
    if cell:   # drawn by cellpage.js: curves by cellplot.js as SVG, the grid as the trainer's PNG
        assert f"cell {cell}:" in seen["text"] and "Config (highlighted" in seen["text"]
        assert seen["svgs"] >= 2 and seen["images"] >= 1   # a loss and a grad-norm line
    else:
        assert seen["images"] >= 3
    # every link on the page as drawn names a file that exists (the browser would open it)
    files = [unquote(urlparse(href).path) for href in seen["links"] if href.startswith("file:")]
    assert files and all(Path(f).exists() for f in files), (page, [f for f in files if not Path(f).exists()])


def test_a_cell_page_for_an_id_not_in_the_report_says_so(reports):
    seen = _load(reports / "cell.html", fragment="nosuchcell")
    assert "No cell nosuchcell in this report" in seen["text"] and seen["errors"] == [] and seen["console"] == []


def test_the_first_screen_shows_a_table3_row_with_numbers(reports, tmp_path):
    """At 1400x900 a row of Table 3 with scores is visible without scrolling (not-run stacks are folded below)."""
    shot = tmp_path / "first-screen.png"
    seen = _load(reports / "index.html", screenshot=shot)
    assert seen["width"] == 1400 and seen["height"] >= 800   # headless chromium keeps ~90 px of 900 for itself
    assert seen["first_scored_row_bottom"] is not None and seen["first_scored_row_bottom"] <= seen["height"]
    assert shot.stat().st_size > 10_000   # a real rendering (kept in pytest's tmp folder to look at)


def test_the_probe_sees_a_broken_image_and_console_errors(reports):
    page = reports / "broken.html"
    page.write_text("<!doctype html><html><body><img src='fig8_losses.png'><img src='nowhere.png'>"
                    "<script>console.error('boom')</script></body></html>")
    seen = _load(page)
    assert seen["images"] == 2 and [Path(b).name for b in seen["broken"]] == ["nowhere.png"]
    assert seen["errors"] == ["load " + (reports / "nowhere.png").as_uri()]
    assert len(seen["console"]) == 1 and '"boom"' in seen["console"][0]
