"""Turn a copy of a real run folder into another cell: new id, axes, config keys or env keys.

For tests that need two or more real cells that differ in one thing (clip mode, stack,
PyTorch version) without training each: the trainer's files stay as it wrote them,
except the keys named here.
"""
import json
from pathlib import Path

__all__ = ["recast"]


def _update(path: Path, changes: dict) -> None:
    path.write_text(json.dumps(dict(json.loads(path.read_text()), **changes)))


def recast(run: Path, cell_id: str, axes: dict = None, env: dict = None, stack: dict = None) -> Path:
    """Give the run folder `run` a new cell id and name, and change axes (also in the configs),
    env.json keys and cell.json's stack keys. Returns the folder, renamed to the new id."""
    axes, env, stack = axes or {}, env or {}, stack or {}
    cell = json.loads((run / "cell.json").read_text())
    cell["axes"] = dict(cell["axes"], **axes)
    cell["config"] = dict(cell.get("config", {}), **{k: v for k, v in axes.items() if k in cell.get("config", {})})
    cell["stack"] = dict(cell.get("stack", {}), **stack)
    a = cell["axes"]
    cell.update(cell_id=cell_id, name=f"{a['stack']}/{a['impl']}/clip={a['clip']}/seed={a['seed']}")
    (run / "cell.json").write_text(json.dumps(cell))
    config = {k: v for k, v in axes.items() if k in cell["config"]}
    if (run / "config.json").exists() and config:
        _update(run / "config.json", config)
    if env:
        _update(run / "env.json", env)
    return run.rename(run.parent / cell_id)
