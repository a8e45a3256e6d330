"""The per-stack Docker images: naming, engine connection, build, list, lookup.

One image per folder `docker/<stack>/` holding a Dockerfile; it is tagged
`repro-unsup3d:<stack>` and carries `org.repro.*` labels (cuda, cudnn, pytorch,
python, nmr). Images hold only the software stack: the executor bind-mounts the
project source at run time, so every stack runs the same model code.

Build contexts:
  * a stack with `wheels.txt` (cpu) is built from a context under the user cache
    holding its Dockerfile plus the pinned wheels, downloaded here by the host's pip
    (so the host's pip configuration, mirrors included, decides where they come from);
  * the CUDA stacks use `docker/` itself as context (they need the NMR patch file)
    and download their packages inside the build;
  * a Dockerfile that runs fetch-vgg.sh finds it, and any `docker/vgg16-*.pth` (a local
    copy of the VGG16 weights, used instead of downloading), in its context.
Every failure a user can cause raises ImageError, whose str() is one line that
says what to do.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

from harness import PROJECT_ROOT
from model.author_code import AUTHOR_CODE_ENV

__all__ = [
    "DOCKER_DIR", "REPOSITORY", "LABEL_PREFIX", "ImageError", "ImageInfo",
    "stacks", "image_name", "image_stack_of", "connect", "image_info", "list_images",
    "carries_author_code", "missing_reason", "require_image", "build", "describe",
]

DOCKER_DIR = PROJECT_ROOT / "docker"
REPOSITORY = "repro-unsup3d"      # images are REPOSITORY:<stack>
LABEL_PREFIX = "org.repro."       # org.repro.cuda, .cudnn, .pytorch, .python, .nmr, .stack


class ImageError(RuntimeError):
    """A user-fixable image or engine problem; str() is one line ending in the fix."""


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """A built stack image as the engine reports it."""
    stack: str
    name: str          # repro-unsup3d:<stack>
    id: str            # sha256:... content digest of the image config (what env.json records)
    labels: dict       # org.repro.* labels, prefix stripped ("cuda" -> "11.3")
    created: str       # ISO time from the engine
    size_mb: float


def stacks() -> list[str]:
    """Stacks that have a Dockerfile under docker/, sorted."""
    return sorted(p.parent.name for p in DOCKER_DIR.glob("*/Dockerfile"))


def image_name(stack: str) -> str:
    """The tag of a stack's image, e.g. `repro-unsup3d:cpu`."""
    return "%s:%s" % (REPOSITORY, stack)


def image_stack_of(stack) -> str:
    """The docker/<folder> a matrix stack's image is built from: its `dockerfile`
    folder (cuda10.2 -> cpu-torch1.8), else its name."""
    return Path(stack.dockerfile).name if getattr(stack, "dockerfile", None) else stack.name


def carries_author_code(stack) -> bool:
    """Does a matrix stack's image hold its own checkout of the authors' code (the CUDA images do)?"""
    dockerfile = DOCKER_DIR / image_stack_of(stack) / "Dockerfile"
    return dockerfile.is_file() and "ENV %s=" % AUTHOR_CODE_ENV in dockerfile.read_text()


def missing_reason(stack: str) -> str:
    """The one-line reason a cell fails with when its image is not built."""
    return "image %s not built: run `repro images build %s`" % (image_name(stack), stack)


def connect():
    """A docker.DockerClient that has answered a ping.

    Raises:
        ImageError: the SDK is missing, no engine answers, or the socket is not ours.
    """
    try:
        import docker
    except ImportError:
        raise ImageError("the Docker SDK is not installed: pip install 'docker>=7'") from None
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as e:
        raise ImageError(_engine_error(host, e)) from None
    return client


def _engine_error(host: str, err: Exception) -> str:
    """Turn the SDK's connection exception into the one line a user needs."""
    text = str(err)
    if "Permission denied" in text or "PermissionError" in text:
        return ("no permission to use the Docker engine at %s: add your user to the "
                "`docker` group (then log in again) or set DOCKER_HOST" % host)
    return ("no Docker engine reachable at %s: start dockerd (CI: docker/setup-engine.sh) "
            "or set DOCKER_HOST" % host)


def image_info(client, stack: str) -> ImageInfo | None:
    """The stack's built image, or None when it is not built."""
    import docker
    try:
        image = client.images.get(image_name(stack))
    except docker.errors.ImageNotFound:
        return None
    attrs = image.attrs
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return ImageInfo(
        stack=stack, name=image_name(stack), id=image.id,
        labels={k[len(LABEL_PREFIX):]: v for k, v in labels.items() if k.startswith(LABEL_PREFIX)},
        created=attrs.get("Created", ""), size_mb=round(attrs.get("Size", 0) / 2**20, 1))


def list_images(client) -> list[tuple[str, ImageInfo | None]]:
    """Every known stack with its built image (None where not built)."""
    return [(stack, image_info(client, stack)) for stack in stacks()]


def require_image(client, stack: str) -> ImageInfo:
    """The stack's image; raises ImageError(missing_reason(stack)) when not built."""
    info = image_info(client, stack)
    if info is None:
        raise ImageError(missing_reason(stack))
    return info


def build(client, stack: str, *, base: str | None = None,
          on_line: Callable[[str], None] = lambda line: None) -> ImageInfo:
    """Build one stack's image, streaming the build log line by line to on_line.

    Args:
        client: a connected docker.DockerClient (see connect()).
        stack: a folder name under docker/ (see stacks()).
        base: value of the Dockerfile's BASE build argument (cpu: a local base image
            such as the one docker/make-base.sh imports), None for the file's default,
            or, when that cannot be pulled, the local `repro-base:<release>`.
        on_line: called with each log line ("Step 3/9 : RUN ...", command output).

    Returns:
        The built image.

    Raises:
        ImageError: unknown stack, wheel download failed, or the build failed
            (its message carries the build's last error line).
    """
    if stack not in stacks():
        raise ImageError("unknown stack %r: known stacks are %s (folders of docker/)"
                         % (stack, ", ".join(stacks())))
    base = base or _pullable_or_local_base(client, DOCKER_DIR / stack / "Dockerfile", on_line)
    context, dockerfile = _prepare_context(stack, on_line)
    buildargs = {"BASE": base} if base else {}
    last = ""
    for line in _stream_build(client, context, dockerfile, image_name(stack), buildargs):
        last = line or last
        on_line(line)
    info = image_info(client, stack)
    if info is None:  # the engine said nothing wrong but produced no tag
        raise ImageError("building %s produced no image (last log line: %s)" % (stack, last))
    return info


def _pullable_or_local_base(client, dockerfile: Path,
                            on_line: Callable[[str], None]) -> str | None:
    """The BASE to build on: None (the Dockerfile's default) when it is here or can be
    pulled, else the local debootstrap base of the same Debian release.

    Raises:
        ImageError: the default cannot be pulled and no local base exists; the message
            is the offline recipe.
    """
    import docker
    default = _default_base(dockerfile)
    if not default:
        return None  # a fixed FROM (CUDA stacks): the build itself reports a pull problem
    try:
        client.images.get(default)
        return None
    except docker.errors.ImageNotFound:
        pass
    try:
        client.images.pull(default)
        return None
    except docker.errors.DockerException as e:
        why = _one_line(str(getattr(e, "explanation", None) or e))  # the engine's words, not the URL
    local = "repro-base:%s" % _debian_release(default)
    try:
        client.images.get(local)
    except docker.errors.ImageNotFound:
        raise ImageError("base %s cannot be pulled (%s): make a local one with "
                         "`docker/make-base.sh %s` (debootstrap, a Debian mirror only) and "
                         "build again; it is then used automatically" % (default, why, local)) from None
    on_line("base %s cannot be pulled; using the local %s" % (default, local))
    return local


def _default_base(dockerfile: Path) -> str:
    """The default of `ARG BASE=...` in a Dockerfile ("" when it has none)."""
    match = re.search(r"^ARG BASE=(\S+)", dockerfile.read_text(), re.M)
    return match.group(1) if match else ""


def _debian_release(base: str) -> str:
    """The Debian release a base tag names (python:3.9-slim-bullseye -> bullseye)."""
    match = re.search(r"(bookworm|bullseye|buster|trixie)", base)
    return match.group(1) if match else "bookworm"


def _stream_build(client, context: Path, dockerfile: str, tag: str,
                  buildargs: dict) -> Iterator[str]:
    """Run `docker build` through the low-level API and yield its log lines.

    network_mode=host: sandboxes without a bridge network can still reach package
    mirrors during RUN steps; on normal hosts it changes nothing that matters.
    """
    import docker
    try:
        chunks = client.api.build(path=str(context), dockerfile=dockerfile, tag=tag,
                                  buildargs=buildargs, network_mode="host", rm=True,
                                  forcerm=True, decode=True)
        for chunk in chunks:
            if "error" in chunk:
                raise ImageError("building %s failed: %s" % (tag, _one_line(chunk["error"])))
            for line in chunk.get("stream", "").splitlines():
                yield line.rstrip()
    except docker.errors.DockerException as e:
        raise ImageError("building %s failed: %s" % (tag, _one_line(str(e)))) from None


def _one_line(text: str) -> str:
    """Last non-empty line of an engine message: that is where the cause is."""
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    return lines[-1] if lines else text.strip()


def _prepare_context(stack: str, on_line: Callable[[str], None]) -> tuple[Path, str]:
    """The build context folder and the Dockerfile path inside it for a stack."""
    stack_dir = DOCKER_DIR / stack
    if not (stack_dir / "wheels.txt").exists():
        return DOCKER_DIR, "%s/Dockerfile" % stack
    context = _cache_dir() / "docker-context" / stack
    context.mkdir(parents=True, exist_ok=True)
    for name in ("Dockerfile", "wheels.txt"):
        shutil.copy2(stack_dir / name, context / name)
    if "fetch-vgg.sh" in (stack_dir / "Dockerfile").read_text():
        _copy_vgg_files(context)
    _download_wheels(stack_dir, context / "wheels", on_line)
    return context, "Dockerfile"


def _copy_vgg_files(context: Path) -> None:
    """fetch-vgg.sh and exactly the docker/vgg16-*.pth copies there are now (hard links:
    the real file is 528 MB), as the CUDA stacks see them in docker/."""
    shutil.copy2(DOCKER_DIR / "fetch-vgg.sh", context / "fetch-vgg.sh")
    for stale in context.glob("vgg16-*.pth"):
        stale.unlink()
    for weights in DOCKER_DIR.glob("vgg16-*.pth"):
        try:
            os.link(weights, context / weights.name)
        except OSError:  # another filesystem
            shutil.copy2(weights, context / weights.name)


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "repro"


def _download_wheels(stack_dir: Path, dest: Path, on_line: Callable[[str], None]) -> None:
    """pip-download the stack's pinned wheels for the image's Python into dest.

    The previous download is only offered to pip as --find-links, then removed, so a
    changed pin never leaves two versions for pip to choose from inside the build,
    and an unchanged one (torch 1.8.1: 800 MB) is not downloaded again.
    """
    python = _label(stack_dir / "Dockerfile", "python")
    if not python:
        raise ImageError("%s/Dockerfile: missing LABEL org.repro.python (needed to pick wheels)"
                         % stack_dir)
    previous = dest.with_name(dest.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if dest.exists():
        dest.rename(previous)
    platforms = [a for p in _WHEEL_PLATFORMS for a in ("--platform", p)]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
           "--python-version", python, "--implementation", "cp", *platforms,
           "--find-links", str(previous), "--dest", str(dest),
           "-r", str(stack_dir / "wheels.txt")]
    on_line("downloading wheels for Python %s: %s" % (python, " ".join(cmd[2:])))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    shutil.rmtree(previous, ignore_errors=True)
    if proc.returncode != 0:
        raise ImageError("downloading the %s wheels failed: %s (check pip's index settings, "
                         "e.g. PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu)"
                         % (stack_dir.name, _one_line(proc.stderr or proc.stdout)))


# glibc tags both Debian bases accept (bullseye has glibc 2.31, bookworm 2.36): torch
# 2.13's wheel is manylinux_2_28, torch 1.8.1's the old manylinux1, and pip does not
# infer the older tags from a newer one.
_WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64",
                    "manylinux2010_x86_64", "manylinux1_x86_64")


def _label(dockerfile: Path, key: str) -> str:
    """Value of LABEL org.repro.<key> in a Dockerfile ("" when absent)."""
    match = re.search(r'%s%s="([^"]*)"' % (re.escape(LABEL_PREFIX), re.escape(key)),
                      dockerfile.read_text())
    return match.group(1) if match else ""


def describe(info: ImageInfo) -> str:
    """One line for `repro images list`: the labels in a fixed order."""
    keys = ("cuda", "cudnn", "pytorch", "python", "nmr")
    return "  ".join("%s=%s" % (k, info.labels.get(k, "?")) for k in keys)

