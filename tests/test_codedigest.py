"""model/codedigest.py: what changes a file's digest, and that every Python digests alike."""
import glob
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from model.codedigest import imported_code, source_digest
from model.env import write_env

ROOT = Path(__file__).resolve().parents[1]

BASE = b'''"""Module docstring."""
import torch


def clip(params, threshold):
    """Clip in place."""
    total = torch.nn.utils.clip_grad_norm_(params, threshold)
    return f"{total:.3f} > {threshold}"
'''


@pytest.mark.parametrize("edit", [
    lambda s: s.replace(b"import torch\n", b"import torch  # the only dependency\n"),
    lambda s: s.replace(b'"""Clip in place."""', b'"""Clip the gradients in place (reworded)."""'),
    lambda s: s.replace(b'"""Module docstring."""\n', b""),
    lambda s: s.replace(b"\n\n\ndef", b"\n\n\n\n# a section\n\ndef"),
])
def test_comments_docstrings_and_blank_lines_do_not_change_the_digest(edit):
    assert source_digest(edit(BASE)) == source_digest(BASE)


@pytest.mark.parametrize("edit", [
    lambda s: s.replace(b"threshold)\n", b"threshold * 2)\n"),
    lambda s: s.replace(b"{total:.3f}", b"{total:.4f}"),          # inside an f-string
    lambda s: s.replace(b"clip_grad_norm_", b"clip_grad_value_"),
    lambda s: s.replace(b"    return", b"    total = total\n    return"),
])
def test_any_code_change_changes_the_digest(edit):
    assert source_digest(edit(BASE)) != source_digest(BASE)


def _interpreters():
    """Every CPython on this machine (pyenv's versions and python3.X on PATH; not pyenv's shims)."""
    found = glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3"))
    found += [shutil.which("python3.%d" % minor) for minor in range(6, 15)]
    return sorted({os.path.realpath(p) for p in found if p and "/shims/" not in p})


# loads the module file alone (the package's __init__ may need more than an old Python has)
_DIGEST_MODEL = """
import glob, importlib.util, json
spec = importlib.util.spec_from_file_location("codedigest", "model/codedigest.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({p: module.file_digest(p) for p in sorted(glob.glob("model/**/*.py", recursive=True))}))
"""


def test_every_python_here_digests_model_alike():
    """The trainer digests in the images' Python 3.6, the harness in 3.10+: one file, one digest."""
    # the oldest (the images' 3.6) and the newest (3.12+ tokenizes f-strings apart) bound the rest
    found = sorted(_interpreters(), key=lambda p: [int(n) for n in p.rsplit("python", 1)[1].split(".") if n.isdigit()])
    pythons = sorted(set(found[:1] + found[-1:]))
    if len(pythons) < 2:
        pytest.skip("only one Python on this machine")
    digests = {}
    for python in pythons:
        out = subprocess.run([python, "-c", _DIGEST_MODEL], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, (python, out.stderr)
        digests[python] = json.loads(out.stdout)
    first = next(iter(digests.values()))
    assert all(None not in d.values() for d in digests.values())
    assert all(d == first for d in digests.values()), sorted(digests)


def test_imported_code_names_the_model_files_this_process_imported():
    import model.step  # noqa: F401  (imported: recorded)
    code = imported_code(ROOT)
    assert "model/step.py" in code and all(k.startswith("model/") for k in code)
    assert "harness/cli.py" not in code


def test_resuming_with_other_code_records_the_files_changed_mid_run(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"weights of the first launch")
    write_env(str(tmp_path), {"code": {"model/step.py": "aaaa", "model/train.py": "bbbb"}})
    write_env(str(tmp_path), {"code": {"model/step.py": "cccc", "model/train.py": "bbbb"}})
    assert json.loads((tmp_path / "env.json").read_text())["code_changed_mid_run"] == ["model/step.py"]
    write_env(str(tmp_path), {"code": {"model/step.py": "cccc", "model/train.py": "bbbb"}})  # kept
    assert json.loads((tmp_path / "env.json").read_text())["code_changed_mid_run"] == ["model/step.py"]


def test_a_fresh_start_over_an_old_env_json_is_not_a_mixed_run(tmp_path):
    write_env(str(tmp_path), {"code": {"model/step.py": "aaaa"}})
    write_env(str(tmp_path), {"code": {"model/step.py": "cccc"}})   # no checkpoint: trained from scratch
    assert "code_changed_mid_run" not in json.loads((tmp_path / "env.json").read_text())
