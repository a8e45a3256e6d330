"""The Docker engine for the tests that need one (marker: docker), and the local base images.

Without an engine (or debootstrap, for a base image not built yet) those tests skip
with the reason, except under CI=true, where anything missing is a failure: CI must
run them. tests/conftest.py loads this module as a plugin, so every test may ask for `client`.
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import images

__all__ = ["unavailable", "client", "local_base"]

ROOT = Path(__file__).resolve().parents[2]


def unavailable(reason: str) -> None:
    """Skip outside CI; under CI=true a missing engine or tool is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but %s" % reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def client():
    """One engine connection for the whole session."""
    try:
        c = images.connect()
    except images.ImageError as e:
        unavailable(str(e))
    yield c
    c.close()


def local_base(client, name: str) -> str:
    """Build the debootstrap base image `name` (docker/make-base.sh; cached by the engine); returns name.

    Registries are unreachable in CI, so the stack images are built on these.
    """
    if not shutil.which("debootstrap") and not _has_image(client, name):
        unavailable("debootstrap is not installed (docker/setup-engine.sh installs it)")
    subprocess.run([str(ROOT / "docker" / "make-base.sh"), name], check=True)
    return name


def _has_image(client, name: str) -> bool:
    try:
        client.images.get(name)
        return True
    except Exception:  # docker.errors.ImageNotFound, or an engine that cannot say
        return False
