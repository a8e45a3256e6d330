"""docker/fetch-vgg.sh: the CUDA images' VGG16 weights are kept only when their hash matches the name."""
import hashlib
import subprocess
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "docker" / "fetch-vgg.sh"


def _stand_in(folder: Path, corrupt: bool = False) -> Path:
    """A real (tiny) state dict saved under torchvision's naming rule: vgg16-<sha256 prefix>.pth."""
    raw = folder / "raw.pth"
    torch.save({"features.0.weight": torch.zeros(2, 3, 3, 3)}, raw)
    prefix = hashlib.sha256(raw.read_bytes()).hexdigest()[:8]
    path = folder / ("vgg16-%s.pth" % prefix)
    path.write_bytes(raw.read_bytes() + (b"x" if corrupt else b""))
    return path


def _fetch(url: str, dest: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(SCRIPT), str(dest), url], capture_output=True, text=True, timeout=60)


def test_a_file_whose_hash_matches_its_name_is_installed(tmp_path):
    src = _stand_in(tmp_path)
    done = _fetch(src.as_uri(), tmp_path / "weights")
    assert done.returncode == 0, done.stderr
    installed = tmp_path / "weights" / src.name
    assert installed.read_bytes() == src.read_bytes()
    assert "features.0.weight" in torch.load(str(installed))


def test_a_corrupt_file_is_refused_and_nothing_is_left(tmp_path):
    src = _stand_in(tmp_path, corrupt=True)
    done = _fetch(src.as_uri(), tmp_path / "weights")
    assert done.returncode != 0 and "does not start with" in done.stderr
    assert list((tmp_path / "weights").iterdir()) == []


def test_a_name_without_a_hash_is_refused(tmp_path):
    src = tmp_path / "vgg16.pth"
    src.write_bytes(b"weights")
    done = _fetch(src.as_uri(), tmp_path / "weights")
    assert done.returncode != 0 and "vgg16-<sha256 prefix>.pth" in done.stderr
