"""Study files with any bytes: one line naming the file and what is wrong, exit 2, fast, nothing written.

Each case runs the real CLI as a subprocess with a timeout, so a hang or a traceback fails the test.
"""
import subprocess
import sys

import pytest

from harness.matrix import MAX_CELLS, MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES

STACK = "axes:\n  stack:\n    - {name: cpu, image: local, torch: '2.13'}\n"


def _laughs(levels: int = 12) -> str:
    # each level is 10 aliases of the one below: 10**levels nodes once expanded
    lines = ["a0: &a0 [lol]"]
    for i in range(1, levels):
        lines.append("a%d: &a%d [%s]" % (i, i, ", ".join(["*a%d" % (i - 1)] * 10)))
    return STACK + "config: {}\nlaughs:\n" + "".join("  %s\n" % line for line in lines)


CASES = {
    "not-utf8": ("bytes", STACK.encode() + b"description: caf\xe9\n", "not UTF-8 text"),
    "binary": ("bytes", b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 64, "binary file"),
    "huge": ("bytes", STACK.encode() + b"#" * (MAX_FILE_BYTES + 1), "bytes; a study file may have at most"),
    "deep": ("text", "axes: " + "[" * (MAX_DEPTH * 50) + "]" * (MAX_DEPTH * 50) + "\n", "nests deeper than"),
    "deep-block": ("text", "".join("  " * i + "k%d:\n" % i for i in range(MAX_DEPTH + 5)) + "  " * 70 + "x\n",
                   "nests deeper than"),
    "billion-laughs": ("text", _laughs(), "expands to more than %d YAML nodes" % MAX_NODES),
    "too-many-cells": ("text", STACK + "  seed: [%s]\n  clip_threshold: [%s]\n" % (
        ", ".join(str(i) for i in range(200)), ", ".join(str(i) for i in range(100))),
        "cells, more than %d: clip_threshold (100) x seed (200) multiply" % MAX_CELLS),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_study_file_is_one_line_exit_2_and_writes_nothing(tmp_path, case):
    kind, content, expected = CASES[case]
    study = tmp_path / "study.yml"
    study.write_bytes(content) if kind == "bytes" else study.write_text(content)
    results = tmp_path / "results"
    for args in (["--dry-run"], []):
        proc = subprocess.run(
            [sys.executable, "-m", "harness.cli", "run", "--matrix", str(study), "--results", str(results)] + args,
            capture_output=True, text=True, timeout=30, cwd=tmp_path)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, proc.stderr
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert lines[0].startswith("repro: error: %s" % study) and expected in lines[0], lines[0]
        assert not results.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["study.yml"]


def test_a_plain_study_still_loads_and_expands_below_the_cap(tmp_path):
    study = tmp_path / "study.yml"
    # an anchor used once is ordinary YAML, not an attack
    study.write_text(STACK + "  seed: &seeds [0, 1]\nexclude: [{seed: *seeds, clip: none}]\n")
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--matrix", str(study), "--dry-run",
                           "--results", str(tmp_path / "results")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "2 cells" in proc.stdout
