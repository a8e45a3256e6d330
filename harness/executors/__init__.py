"""Executors by name. local ships here; docker and ray register when their module imports.

A new executor: a module whose class is decorated with base.register, named in _OPTIONAL
if importing it needs extra packages. `repro run --dry-run` is a flag, not an executor.
"""
import importlib
from typing import Optional, Type

from harness.executors import base, local  # noqa: F401  (registration side effect)

__all__ = ["load", "executor_names"]

# executors that live in their own module, imported only when asked for
_OPTIONAL = {"docker": "harness.executors.docker", "ray": "harness.executors.ray"}


def executor_names() -> list:
    """Every executor `--executor` may name: those registered plus those importable on demand."""
    return sorted(set(base.names()) | set(_OPTIONAL))


def load(name: str) -> Optional[Type[base.Executor]]:
    """The executor class called `name`, or None when it is not installed/importable."""
    if name in _OPTIONAL and name not in base.names():
        try:
            importlib.import_module(_OPTIONAL[name])
        except ImportError:
            return None
    try:
        return base.get(name)
    except KeyError:
        return None
