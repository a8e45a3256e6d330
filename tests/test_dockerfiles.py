"""The Dockerfiles and the scripts they run, checked without an engine: pins, labels, the author fetch, the NMR patch."""
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from model.author_shims import AUTHOR_COMMIT

ROOT = Path(__file__).resolve().parents[1]


def _instructions(path):
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(l for l in path.read_text().splitlines()
                                          if not l.lstrip().startswith("#")))
    return [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l.strip() else "")
            for l in text.splitlines() if l.strip()]


def _pinned_image(ref):
    name, _, tag = ref.partition("@sha256:")[0].rpartition(":")
    return "@sha256:" in ref or (bool(name) and tag != "latest" and bool(re.search(r"\d", tag)))


def _unpinned_pip_specs(run):
    bad = []
    for cmd in re.findall(r"pip install ([^&|;]*)", run):
        tokens, skip = cmd.split(), False
        for tok in tokens:
            if skip or tok.startswith("-"):
                skip = tok in ("-f", "-r", "-c", "--find-links", "--index-url", "--extra-index-url")
                continue
            if tok != "." and "==" not in tok:
                bad.append(tok)
    return bad


@pytest.mark.parametrize("stack", ["cuda9.2", "cuda10.0", "cuda11.3"])
def test_cuda_images_fetch_the_pinned_author_commit_where_the_trainer_looks(stack):
    instr = _instructions(ROOT / "docker" / stack / "Dockerfile")
    args = dict(a.split("=", 1) for i, a in instr if i == "ARG" and "=" in a)
    assert args["UNSUP3D_COMMIT"] == AUTHOR_COMMIT   # the commit the adapter's provenance names
    copied = [a.split() for i, a in instr if i == "COPY" and "fetch-author.sh" in a]
    assert copied and copied[0][0] == "fetch-author.sh"
    # the script runs with the pinned commit, into one folder, which the trainer is pointed at
    (run,) = [a for i, a in instr if i == "RUN" and copied[0][1] in a]
    call = shlex.split(run[run.index(copied[0][1]) - len("sh "):].split("&&")[0])
    assert call[:3] == ["sh", copied[0][1], "${UNSUP3D_COMMIT}"]
    env = dict(a.split("=", 1) for i, a in instr if i == "ENV" and "=" in a)
    assert env["REPRO_AUTHOR_CODE_DIR"] == call[3]


def _git(cwd, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.skipif(not shutil.which("git"), reason="needs git")
def test_fetch_author_checks_out_exactly_the_pinned_commit(tmp_path):
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    _git(upstream, "init", "-q")
    (upstream / "model.py").write_text("pinned\n")
    _git(upstream, "add", "model.py")
    _git(upstream, "commit", "-q", "-m", "pinned")
    pinned = _git(upstream, "rev-parse", "HEAD")
    (upstream / "model.py").write_text("later\n")
    _git(upstream, "commit", "-q", "-am", "later")
    script = str(ROOT / "docker" / "fetch-author.sh")

    subprocess.run(["sh", script, pinned, str(tmp_path / "code"), upstream.as_uri()], check=True)
    assert (tmp_path / "code" / "model.py").read_text() == "pinned\n"
    assert (tmp_path / "code" / "COMMIT").read_text() == pinned + "\n"

    missing = subprocess.run(["sh", script, "0" * 40, str(tmp_path / "none"), upstream.as_uri()],
                             capture_output=True)
    assert missing.returncode != 0 and not (tmp_path / "none" / "COMMIT").exists()


@pytest.mark.parametrize("stack", ["cpu", "cpu-torch1.8", "cuda9.2", "cuda10.0", "cuda11.3"])
def test_dockerfile_lint_pins_and_labels(stack):
    instr = _instructions(ROOT / "docker" / stack / "Dockerfile")
    args = dict(a.split("=", 1) for i, a in instr if i == "ARG" and "=" in a)
    for ref in [a.split()[0] for i, a in instr if i == "FROM"]:
        ref = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), ref)
        assert _pinned_image(ref), "%s: FROM %r is not pinned by digest or exact tag" % (stack, ref)
    labels = dict(re.findall(r'org\.repro\.(\w+)="([^"]*)"', " ".join(a for i, a in instr if i == "LABEL")))
    assert {"stack", "cuda", "cudnn", "pytorch", "python"} <= set(labels), stack
    assert labels["stack"] == stack
    wheel_cuda = {"cpu-torch1.8": "10.2"}  # torch 1.8.1's registry wheel is a CUDA 10.2 build
    assert labels["cuda"] == (stack[4:] if stack.startswith("cuda") else wheel_cuda.get(stack, "none"))
    for i, a in instr:
        if i == "RUN":
            assert not _unpinned_pip_specs(a), "%s: unpinned pip install %s" % (stack, _unpinned_pip_specs(a))
    if (ROOT / "docker" / stack / "wheels.txt").exists():
        wheels = [l for l in (ROOT / "docker" / stack / "wheels.txt").read_text().splitlines()
                  if l.strip() and not l.startswith("#")]
        assert wheels and all("==" in w for w in wheels)


def test_nmr_patch_applies_to_published_source(tmp_path):
    nmr = ROOT.parent / "shared" / "third_party" / "neural_renderer"
    if not nmr.is_dir() or not shutil.which("patch"):
        pytest.skip("needs ../shared/third_party/neural_renderer and the patch tool")
    shutil.copytree(nmr / "neural_renderer", tmp_path / "neural_renderer")
    subprocess.run(["patch", "-p1", "-i", str(ROOT / "docker" / "nmr-torch1.11.patch")],
                   cwd=tmp_path, check=True, capture_output=True)
    sources = "".join(p.read_text() for p in (tmp_path / "neural_renderer" / "cuda").glob("*.c*"))
    assert "AT_CHECK" not in sources and ".type()" not in sources and ".data<" not in sources
    assert "COPY nmr-torch1.11.patch" in (ROOT / "docker/cuda11.3/Dockerfile").read_text()
