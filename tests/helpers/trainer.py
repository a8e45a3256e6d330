"""The real trainer for tests: `python -m model.train` on a cell YAML, and one run trained once per session.

`trained_run` is a tiny run of 18 steps with a checkpoint every 2 (about 10 s), long
enough for spike statistics and for a kill mid-run; tests read it, or copy it first.
"""
import os
import subprocess
import sys
from pathlib import Path

import yaml

__all__ = ["ROOT", "RESUMABLE", "write_cell", "trainer_argv", "trainer_env", "train", "trained_run"]

ROOT = Path(__file__).resolve().parents[2]
RESUMABLE = {"num_epochs": 3, "builtin_num_train": 24, "checkpoint_every": 2}  # tiny: 6 steps of 4 a epoch

_TRAINED = {}  # session cache: trained once for every test file that asks


def write_cell(folder: Path, name: str = "cell", **keys) -> Path:
    """folder/NAME.yaml: the tiny preset on one thread, with `keys` over it."""
    path = Path(folder) / (name + ".yaml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict({"preset": "tiny", "threads": 1}, **keys)))
    return path


def trainer_argv(config: Path, out: Path) -> list:
    return [sys.executable, "-m", "model.train", "--config", str(config), "--out", str(out)]


def trainer_env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1")


def train(config: Path, out: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the trainer to its end in a subprocess (one thread); stdout/stderr as text."""
    return subprocess.run(trainer_argv(config, out), cwd=ROOT, env=trainer_env(), capture_output=True,
                          text=True, timeout=timeout)


def trained_run(tmp_path_factory) -> Path:
    """The folder of a done RESUMABLE tiny run (trained on first use; treat it as read-only)."""
    if "run" not in _TRAINED:
        tmp = tmp_path_factory.mktemp("trained")
        done = train(write_cell(tmp, **RESUMABLE), tmp / "run")
        assert done.returncode == 0, done.stderr[-2000:]
        _TRAINED["run"] = tmp / "run"
    return _TRAINED["run"]
