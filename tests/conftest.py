import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# the Docker engine fixture `client` (marker: docker); the authors' checkout `author_code`
pytest_plugins = ["tests.helpers.engine", "tests.helpers.author_code"]


@pytest.fixture(autouse=True)
def _single_thread_torch():
    """Tests share 2 cores with each other: one torch thread keeps timings sane."""
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    yield
