"""docker/fetch-vgg.sh: the images' VGG16 weights are kept only when their hash matches the name."""
import os
import subprocess
from pathlib import Path

import torch

from tests.helpers.vgg import stand_in_weights

SCRIPT = Path(__file__).resolve().parents[1] / "docker" / "fetch-vgg.sh"


def _fetch(dest: Path, name: str, store: Path, *flags: str) -> subprocess.CompletedProcess:
    """Run the script with `store` (a folder) standing in for PyTorch's model store."""
    env = dict(os.environ, VGG16_BASE_URL=store.as_uri())
    return subprocess.run(["sh", str(SCRIPT), *flags, str(dest), name], capture_output=True, text=True,
                          timeout=120, env=env)


def test_a_download_whose_hash_matches_its_name_is_installed_at_the_fixed_path(tmp_path):
    src = stand_in_weights(tmp_path / "store")
    done = _fetch(tmp_path / "opt", src.name, tmp_path / "store")
    assert done.returncode == 0, done.stderr
    fixed = tmp_path / "opt" / "vgg16.pth"
    assert os.readlink(fixed) == src.name and fixed.read_bytes() == src.read_bytes()
    assert "features.0.weight" in torch.load(str(fixed))
    assert not list((tmp_path / "opt").glob("*.part"))


def test_a_copy_from_the_build_context_is_used_without_downloading(tmp_path):
    src = stand_in_weights(tmp_path / "opt")  # where the Dockerfile's COPY puts docker/vgg16-*.pth
    done = _fetch(tmp_path / "opt", src.name, tmp_path / "empty-store")
    assert done.returncode == 0, done.stderr
    assert "from the build context verified" in done.stdout
    assert (tmp_path / "opt" / "vgg16.pth").read_bytes() == src.read_bytes()


def test_a_corrupt_file_is_refused_and_nothing_is_left(tmp_path):
    src = stand_in_weights(tmp_path / "store")
    src.write_bytes(src.read_bytes() + b"x")
    done = _fetch(tmp_path / "opt", src.name, tmp_path / "store", "--optional")  # --optional never excuses it
    assert done.returncode != 0 and "does not start with" in done.stderr
    assert list((tmp_path / "opt").iterdir()) == []


def test_a_name_without_a_hash_is_refused(tmp_path):
    done = _fetch(tmp_path / "opt", "vgg16.pth", tmp_path / "store")
    assert done.returncode != 0 and "vgg16-<sha256 prefix>.pth" in done.stderr


def test_unreachable_weights_fail_the_build_naming_the_fix_unless_optional(tmp_path):
    name = "vgg16-397923af.pth"
    required = _fetch(tmp_path / "a", name, tmp_path / "no-store")
    assert required.returncode != 0
    assert "cannot download" in required.stderr and "put %s into docker/" % name in required.stderr
    optional = _fetch(tmp_path / "b", name, tmp_path / "no-store", "--optional")
    assert optional.returncode == 0, optional.stderr
    assert "WARNING: no VGG16 weights in this image" in optional.stdout
    assert list((tmp_path / "b").iterdir()) == []
