"""`repro images build|list`: the Click group the main CLI mounts as `images`.

Thin wrappers over harness.images; every user error is one line on stderr and
exit code 2, never a traceback.
"""
from __future__ import annotations

import os
import sys
import time

import click

from harness import images as _images
from harness.exitcodes import ExitCode

__all__ = ["images"]



@click.group("images")
def images():
    """Build and list the per-stack Docker images (docker/<stack>/Dockerfile)."""


@images.command("build")
@click.argument("stacks", nargs=-1)
@click.option("--base", envvar="REPRO_BASE_IMAGE", default=None, metavar="IMAGE",
              help="BASE build argument (cpu: a local base image, e.g. repro-base:bookworm "
                   "from docker/make-base.sh, where registries are unreachable). "
                   "Env: REPRO_BASE_IMAGE.")
@click.option("-v", "--verbose", is_flag=True, help="Print the whole build log, not only steps.")
def build(stacks, base, verbose):
    """Build STACK... images (default: all stacks under docker/)."""
    client = _connect_or_exit()
    for stack in stacks or _images.stacks():
        started = time.monotonic()
        click.echo("building %s" % _images.image_name(stack))
        try:
            info = _images.build(client, stack, base=base, on_line=_progress(stack, verbose))
        except _images.ImageError as e:
            _fail(str(e))
        click.echo("built %s (%s, %.0f MB) in %.0f s: %s" % (
            info.name, info.id[:19], info.size_mb, time.monotonic() - started,
            _images.describe(info)))


@images.command("list")
def list_():
    """Show which stack images exist, with their CUDA/cuDNN/PyTorch/Python labels."""
    client = _connect_or_exit()
    for stack, info in _images.list_images(client):
        if info is None:
            click.echo("- %-10s not built (repro images build %s)" % (stack, stack))
        else:
            click.echo("* %-10s %s  %s  %.0f MB" % (
                stack, info.id[:19], _images.describe(info), info.size_mb))


def _progress(stack: str, verbose: bool):
    """Line printer: build steps always, command output only with --verbose.

    Docker's classic builder prints "Step N/M : ..." per instruction, which is the
    progress a user wants; the pip/apt output in between is noise unless debugging.
    """
    def on_line(line: str) -> None:
        if verbose or line.startswith(("Step ", "downloading wheels", "base ", "Successfully")):
            click.echo("[%s] %s" % (stack, line))
    return on_line


def _connect_or_exit():
    try:
        return _images.connect()
    except _images.ImageError as e:
        _fail(str(e))


def _fail(message: str):
    click.echo("error: %s" % message, err=True)
    sys.exit(ExitCode.CONFIG_ERROR)


# `python -m harness.cli_images ...` works before the main CLI mounts the group.
if __name__ == "__main__":
    images(prog_name=os.path.basename(sys.argv[0]))
