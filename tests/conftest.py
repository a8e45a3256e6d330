import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
AUTHOR_CODE = SHARED / "third_party" / "unsup3d"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytest_plugins = ["tests.helpers.engine"]  # the Docker engine fixture `client` (marker: docker)


@pytest.fixture(autouse=True)
def _single_thread_torch():
    """Tests share 2 cores with each other: one torch thread keeps timings sane."""
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    yield
