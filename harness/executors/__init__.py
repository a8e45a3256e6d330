"""Executors by name: the one list of them, declared below.

Each entry names the module and class of an executor. A module is imported only
when its executor is asked for, so docker and ray (extra packages) cost nothing
until used. `repro run --dry-run` is a flag, not an executor. A new executor: a
module with an `Executor` subclass whose `name` is its key here (its settings a
`settings_model`, which becomes `repro run --<name>-*` options and `REPRO_<NAME>_*`
variables; its `schedule` if its cells run elsewhere; a cluster executor runs cells on
its nodes with harness/executors/node.py), and one line below. tests/helpers/fake_executor.py
is such a module, run by the contract suite.
"""
import importlib
from typing import Dict, Optional, Type

from harness.executors.base import Executor

__all__ = ["EXECUTORS", "load", "executor_names"]

EXECUTORS: Dict[str, str] = {  # name -> "module:Class"
    "local": "harness.executors.local:LocalExecutor",
    "docker": "harness.executors.docker:DockerExecutor",
    "ray": "harness.executors.ray:RayExecutor",
}


def executor_names() -> list:
    """Every executor `--executor` and a stack's `executor:` may name."""
    return sorted(EXECUTORS)


def load(name: str) -> Optional[Type[Executor]]:
    """The executor class called `name`, or None when it is unknown or its module cannot import."""
    if name not in EXECUTORS:
        return None
    module, _, cls = EXECUTORS[name].partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError:
        return None
