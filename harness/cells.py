"""Expand a study into cells: the cartesian product of its axes, then exclude/include.

A cell is one training + evaluation run. Its id is a short hash of what determines
its result (axes, resolved trainer config, the stack's software) plus a schema
version, so it is stable across machines and runs, and changing one axis value
changes only the ids of the cells it touches. Execution details (executor, CPU
threads, absolute paths) stay out of the hash.
"""
import dataclasses
import hashlib
import itertools
import json
import os
from typing import Any, Dict, List, Mapping, Tuple

from harness.matrix import AXES, FACTOR_AXES, PATH_KEYS, SWEPT_AXES, Stack, Study
from model.config import DEFAULTS, ConfigError, resolve
from model.factors import describe_in_force, in_force, later_keys, torch_version

__all__ = ["SCHEMA_VERSION", "Cell", "CellConfigError", "expand", "cell_hash", "hashed_payload",
           "planned_numerics"]

SCHEMA_VERSION = 1      # bump when the meaning of a hashed field changes: every id changes
EXECUTION_KEYS = ("threads",)   # how a cell runs, not what it computes: not hashed
# trainer keys added after SCHEMA_VERSION 1, hashed only when set away from their default,
# so that adding a knob never changes the id (and the cached results) of an existing cell
# (builtin_version: the cells before it existed generated version 4)
LATER_KEYS = {"builtin_version": 4, **later_keys()}
_STACK_HASHED = ("image", "dockerfile", "cuda", "torch")  # the stack's software, not its executor


class CellConfigError(ValueError):
    """A combination of axes/config/overrides the trainer rejects; `where` is `file:line`."""

    def __init__(self, where: str, message: str):
        super().__init__("%s: %s" % (where, message))


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of the study.

    Attributes:
        cell_id: 12 hex digits, the hash of `axes`, `config` and the stack's software.
        name: readable, e.g. `cpu/ours/clip=none/seed=0` (presentation only, not hashed).
        axes: effective value of every axis (after overrides), sorted by AXES order.
        config: the trainer config, resolved by model.config.resolve.
        stack: the stack spec the cell runs on.
    """
    cell_id: str
    name: str
    axes: Tuple[Tuple[str, Any], ...]
    config: Mapping[str, Any] = dataclasses.field(hash=False, compare=False)
    stack: Stack = dataclasses.field(hash=False, compare=False)

    @property
    def axis(self) -> Dict[str, Any]:
        return dict(self.axes)

    def trainer_config(self, threads: int = 0) -> Dict[str, Any]:
        """The config to write as cell.yaml; `threads` is set by the executor's job split."""
        cfg = dict(self.config)
        cfg["threads"] = threads
        return cfg

    def to_dict(self) -> Dict[str, Any]:
        """What cell.json holds."""
        return {"cell_id": self.cell_id, "name": self.name, "schema": SCHEMA_VERSION,
                "axes": self.axis, "config": dict(self.config),
                "stack": self.stack.model_dump()}


def expand(study: Study) -> List[Cell]:
    """All cells of a study, in axis order, without duplicates.

    Args:
        study: a validated Study.

    Returns:
        Cells of the product of the axes minus `exclude` matches, plus `include`
        products. Combinations that resolve to the same config appear once.

    Raises:
        CellConfigError: the trainer rejects a combination (names file:line and key).
    """
    combos = [c for c in _product(study, {}) if not any(_matches(c, r.given()) for r in study.exclude)]
    for rule in study.include:
        combos += _product(study, rule.given())
    cells, seen = [], set()
    varying = _varying_axes(combos)
    for combo in combos:
        cell = _make_cell(study, combo, varying)
        if cell.cell_id not in seen:
            seen.add(cell.cell_id)
            cells.append(cell)
    return cells


def cell_hash(axes: Mapping[str, Any], config: Mapping[str, Any], stack: Stack) -> str:
    """12 hex digits of sha256 over canonical JSON (sorted keys, no whitespace) of `hashed_payload`."""
    text = json.dumps(hashed_payload(axes, config, stack), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def hashed_payload(axes: Mapping[str, Any], config: Mapping[str, Any], stack: Stack) -> Dict[str, Any]:
    """What a cell's id is the hash of (`repro status --why` prints it)."""
    hashed_cfg = {k: _portable(k, v) for k, v in config.items()
                  if k not in EXECUTION_KEYS and not (k in LATER_KEYS and v == LATER_KEYS[k])}
    # a factor axis is already in the config: hashing it again only when it leaves the trainer's
    # default keeps a study's baseline cells the same cells (same folder) as the default study's
    hashed_axes = {k: v for k, v in axes.items() if not (k in FACTOR_AXES and v == DEFAULTS[k])}
    return {"schema": SCHEMA_VERSION, "axes": hashed_axes, "config": hashed_cfg,
            "stack": {k: getattr(stack, k) for k in _STACK_HASHED}}


def planned_numerics(cell: Cell) -> str:
    """The numerics the cell will run with on its stack, as `repro run --dry-run` shows them.

    The stack's torch, CUDA and image (nmr) settle every `stack` value but TF32, which also
    depends on the GPU the cell lands on: where its supported GPUs disagree, the line says
    from which compute capability a setting is on.
    """
    stack = cell.stack
    version = torch_version(stack.torch) or (0, 0)
    capabilities = sorted(stack.gpu_capabilities, key=float) if stack.needs_gpu else [None]
    if stack.needs_gpu and not capabilities:
        capabilities = ["0.0"]
    lowest = in_force(cell.config, version, capabilities[0], stack.nmr)
    highest = in_force(cell.config, version, capabilities[-1], stack.nmr)
    shown = dict(highest)
    for key in ("tf32_conv", "tf32_matmul"):
        if lowest[key] != highest[key]:
            shown[key] = "on for sm>=8.0"
    return describe_in_force(shown)


# ---------------------------------------------------------------------------

def _product(study: Study, fixed: Dict[str, list]) -> List[Dict[str, Any]]:
    """Combos over every axis; `fixed` replaces an axis's values (include rules)."""
    stacks = study.stacks()
    values = {}
    for axis in SWEPT_AXES:
        if axis in fixed:
            values[axis] = [stacks[v] for v in fixed[axis]] if axis == "stack" else fixed[axis]
        else:
            given = getattr(study.axes, axis)
            values[axis] = given if given is not None else [None]  # None: axis not set
    return [dict(zip(SWEPT_AXES, combo)) for combo in itertools.product(*(values[a] for a in SWEPT_AXES))]


def _matches(combo: Dict[str, Any], rule: Dict[str, list]) -> bool:
    for axis, allowed in rule.items():
        value = combo[axis].name if axis == "stack" else combo[axis]
        if value not in allowed:
            return False
    return True


def _varying_axes(combos) -> set:
    """Axes beyond stack/impl/clip/seed that take more than one value: shown in names."""
    out = set()
    for axis in ("clip_threshold", "dataset", "preset") + FACTOR_AXES:
        if len({repr(c[axis]) for c in combos}) > 1:
            out.add(axis)
    return out


def _make_cell(study: Study, combo: Dict[str, Any], varying: set) -> Cell:
    stack = combo["stack"]
    user = dict(study.config)
    user.update({k: v for k, v in combo.items() if k != "stack" and v is not None})
    user.update(stack.overrides)  # the stack's own settings (e.g. its preset)
    for override in study.overrides:  # then rules that pick cells across axes
        if _matches(combo, override.when.given()):
            user.update(override.config)
    try:
        config = resolve(user)
    except ConfigError as e:
        raise CellConfigError(_where_key(study, stack, str(e)), "stack %s: %s" % (stack.name, e))
    axes = tuple((a, stack.name if a == "stack" else config[a]) for a in AXES)
    axes += tuple((a, config[a]) for a in FACTOR_AXES if combo[a] is not None)
    return Cell(cell_id=cell_hash(dict(axes), config, stack), name=_name(dict(axes), varying),
                axes=axes, config=config, stack=stack)


def _name(axes: Dict[str, Any], varying: set) -> str:
    parts = [axes["stack"], axes["impl"], "clip=%s" % axes["clip"]]
    parts += ["%s=%s" % (a, axes[a]) for a in ("clip_threshold", "dataset", "preset") + FACTOR_AXES
              if a in varying and a in axes]
    return "/".join(parts + ["seed=%s" % axes["seed"]])


def _portable(key: str, value: Any) -> Any:
    # a data folder's location differs per machine; its name identifies the data
    if key in PATH_KEYS and isinstance(value, str):
        return os.path.basename(os.path.normpath(value))
    return value


def _where_key(study: Study, stack: Stack, message: str) -> str:
    """file:line where the trainer key named in `message` is set (overrides, config, axes)."""
    key = message.split(":", 1)[0].strip()
    index = [s.name for s in study.axes.stack].index(stack.name)
    for i, override in reversed(list(enumerate(study.overrides))):
        if key in override.config:
            return study.where("overrides", i, "config", key)
    if key in stack.overrides:
        return study.where("axes", "stack", index, "overrides", key)
    if key in study.config:
        return study.where("config", key)
    return study.where("axes", key)
