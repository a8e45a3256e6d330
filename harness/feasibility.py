"""Decide whether a cell can run here, and if not, say why in one line.

Pure functions of (cell, executor class, host): the core reads the executor's
declared capabilities, never its name.
"""
from typing import Optional

from harness.cells import Cell
from harness.host import Host
from harness.images import carries_author_code, image_name, image_stack_of
from model.author_code import find_author_code

__all__ = ["why_not_runnable"]


def why_not_runnable(cell: Cell, executor_cls, host: Host, executor_name: str = "") -> Optional[str]:
    """None when `cell` can run on `host` with `executor_cls`, else the reason it is skipped.

    Args:
        cell: the cell.
        executor_cls: the executor class that would run it (None: not installed).
        host: the probed machine.
        executor_name: the executor's name, for the message when it is not installed.
    """
    stack = cell.stack
    remote = executor_cls is not None and executor_cls.capabilities.remote
    if stack.needs_gpu and not host.gpus and not remote:
        return "stack %s needs a CUDA %s GPU and none is visible (nvidia-smi lists none)" % (stack.name, stack.cuda)
    if executor_cls is None:
        return "executor %r is not installed in this checkout" % executor_name
    caps = executor_cls.capabilities
    if caps.remote:  # a cluster executor places the cell on a node that fits
        return None
    if stack.needs_gpu and not caps.gpu:
        return "stack %s needs a GPU and executor %r cannot give one (use --executor docker)" % (
            stack.name, executor_cls.name)
    if caps.needs_image and not host.docker:
        return "stack %s runs in docker and %s" % (stack.name, host.docker_why)
    if caps.needs_image and host.images is not None and image_stack_of(stack) not in host.images:
        return "stack %s needs image %s, not built here: run `repro images build %s`" % (
            stack.name, image_name(image_stack_of(stack)), image_stack_of(stack))
    if stack.needs_gpu:
        return _capability_problem(cell, host) or _author_code_problem(cell, caps)
    return _author_code_problem(cell, caps)


def _author_code_problem(cell: Cell, caps) -> Optional[str]:
    """An impl=author cell needs the authors' code: its image's own, or the checkout this host's lookup finds."""
    if cell.config.get("impl") != "author" or (caps.needs_image and carries_author_code(cell.stack)):
        return None
    return find_author_code(cell.config.get("author_code_dir"))[1]


def _capability_problem(cell: Cell, host: Host) -> Optional[str]:
    supported = set(cell.stack.gpu_capabilities)
    if any(g.capability in supported for g in host.gpus):
        return None
    seen = ", ".join("%s (sm %s)" % (g.name, g.capability) for g in host.gpus)
    return "GPU %s is not supported by CUDA %s (stack %s supports sm %s)" % (
        seen, cell.stack.cuda, cell.stack.name, ", ".join(cell.stack.gpu_capabilities) or "none")
