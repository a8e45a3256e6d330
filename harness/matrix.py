"""The study file (matrix.yml): schema, loading, and one-line errors with file:line.

A study names its axes (`stack` is a list of stack specs, the others lists of
values), optional `exclude`/`include` rules, per-stack `overrides` of trainer keys
and `config` (trainer keys for every cell). pydantic checks the shape; errors are
mapped back to YAML line numbers. Trainer keys are checked against model.config.
"""
import math
import os
import typing
from pathlib import Path
from typing import Annotated, Any, Dict, List, Literal, Optional, Union

import pydantic
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from harness.executors import executor_names
from harness.yamlmarks import Marks, YamlSyntaxError, line_of, load_with_marks
from model.config import DEFAULTS, PRESETS, is_host_path
from model.factors import FACTOR_NAMES, FACTORS

__all__ = ["MatrixError", "Stack", "Axes", "Rule", "Override", "Study", "load_study", "AXES", "FACTOR_AXES",
           "SWEPT_AXES", "PATH_KEYS"]

# the axes every cell has, in the order cell names and tables show them
AXES = ("stack", "impl", "clip", "clip_threshold", "seed", "dataset", "preset")
# factor axes (model/factors.py): trainer keys a causes study sweeps; a cell carries one only
# when its study sets it, so adding a factor never changes an existing cell's id
FACTOR_AXES = FACTOR_NAMES
SWEPT_AXES = AXES + FACTOR_AXES
# trainer keys holding filesystem paths: resolved against the matrix file's folder
PATH_KEYS = ("data_dir", "vgg_weights", "author_code_dir")
# bounds that keep any study file's load under a second and a few MiB: the seed's full
# study is 3 KB, 9 levels deep, ~300 YAML nodes and 44 cells
MAX_FILE_BYTES = 1 << 20      # 1 MiB
MAX_DEPTH = 64                # nested mappings/sequences
MAX_NODES = 100_000           # YAML nodes after expanding aliases (stops "billion laughs")
MAX_CELLS = 10_000            # cells the axes may multiply to (stops a --dry-run that never ends)

Impl = Literal["ours", "author"]
Clip = Literal["none", "norm", "value"]
Dataset = Literal["builtin", "synface", "celeba"]
Preset = Literal[tuple(PRESETS)]  # type: ignore[valid-type]
Executor = Literal[tuple(executor_names())]  # type: ignore[valid-type]
Version = Annotated[str, Field(pattern=r"^\d+\.\d+(\.\d+)?$"), BeforeValidator(lambda v: str(v) if isinstance(v, (int, float)) else v)]
Capability = Annotated[str, Field(pattern=r"^\d+\.\d$"), BeforeValidator(lambda v: str(v) if isinstance(v, (int, float)) else v)]


class MatrixError(ValueError):
    """A mistake in a study file; str() holds one line per mistake, `file:line: key: what`."""


def _listify(value):
    # a rule or axis may give one value instead of a list of one
    return value if isinstance(value, list) else [value]


def _axis(item):
    return Optional[Annotated[List[item], BeforeValidator(_listify), Field(min_length=1)]]


class Stack(BaseModel):
    """One software stack: where its image comes from, what it supports, how it runs."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # also the cell name's first part
    image: Optional[str] = None        # docker image tag, or "local" = this Python environment
    dockerfile: Optional[str] = None   # folder holding the stack's Dockerfile (e.g. docker/cuda11.3)
    cuda: Optional[Version] = None     # CUDA version of the stack's torch; null = CPU only
    torch: Version                     # PyTorch version of the stack
    gpu_capabilities: List[Capability] = []  # compute capabilities its CUDA build supports, e.g. ["7.0", "7.5"]
    nmr: bool = False                  # the image builds neural_renderer: where `renderer: stack` means nmr
    executor: Executor = "local"       # executor used unless `repro run --executor` says otherwise
    overrides: Dict[str, Any] = {}     # trainer keys for this stack's cells (win over everything)

    @pydantic.model_validator(mode="after")
    def _consistent(self):
        if not self.image and not self.dockerfile:
            raise ValueError("a stack needs `image` (a tag or 'local') or `dockerfile` (a folder)")
        if self.cuda is None and self.gpu_capabilities:
            raise ValueError("gpu_capabilities given but cuda is null (a CPU stack)")
        return self

    @property
    def needs_gpu(self) -> bool:
        return self.cuda is not None


def _factor_type(values):
    """A factor's axis type from its declared values (model/factors.py); None in values is not
    sweepable (an axis value of null would mean "axis not set")."""
    if values is None:
        return Annotated[float, Field(gt=0)]
    values = tuple(v for v in values if v is not None)
    words = tuple(v for v in values if isinstance(v, str))
    if any(isinstance(v, bool) for v in values):  # the literal words first: "stack" is no bool
        return Union[Literal[words], bool] if words else bool  # type: ignore[valid-type]
    return Literal[words]  # type: ignore[valid-type]


# every axis but `stack`: its value type; Axes and Rule are both made from this one mapping
_AXIS_TYPES = {
    "impl": Impl, "clip": Clip, "clip_threshold": Annotated[float, Field(ge=0)],
    "seed": Annotated[int, Field(ge=0)], "dataset": Dataset, "preset": Preset,
    **{f.name: _factor_type(f.values) for f in FACTORS},
}
assert tuple(_AXIS_TYPES) == SWEPT_AXES[1:]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _RuleBase(_Frozen):
    def given(self) -> Dict[str, list]:
        """The axes this rule constrains."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


# Values swept by the study; an axis left out keeps the trainer's (or `config`'s) value.
Axes = pydantic.create_model(
    "Axes", __base__=_Frozen, stack=(Annotated[List[Stack], Field(min_length=1)], ...),
    **{axis: (_axis(kind), None) for axis, kind in _AXIS_TYPES.items()})
# An exclude/include rule: axis -> value or list of values; a cell matches if all keys match.
Rule = pydantic.create_model(
    "Rule", __base__=_RuleBase, stack=(_axis(str), None),
    **{axis: (_axis(kind), None) for axis, kind in _AXIS_TYPES.items()})


class Override(BaseModel):
    """Trainer keys for the cells a rule matches (e.g. a shorter run for impl=author on CPU)."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    when: Rule                         # axis -> value(s); all must match
    config: Dict[str, Any]             # trainer keys; win over config, axes and stack overrides


class Study(BaseModel):
    """A whole matrix.yml."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""              # one line shown by `repro run --dry-run`
    axes: Axes
    config: Dict[str, Any] = {}        # trainer keys for every cell (below axes and overrides)
    exclude: List[Rule] = []           # drop cells matching any rule
    include: List[Rule] = []           # add cells: rule keys fixed, other axes swept
    overrides: List[Override] = []     # applied last, in order, to the cells they match
    _source: Path = pydantic.PrivateAttr(default=Path("matrix.yml"))
    _marks: Marks = pydantic.PrivateAttr(default_factory=dict)

    @property
    def source(self) -> Path:
        return self._source

    def stacks(self) -> Dict[str, Stack]:
        return {s.name: s for s in self.axes.stack}

    def where(self, *path) -> str:
        """`file:line` of a key path, for error messages."""
        return "%s:%d" % (self._source, line_of(self._marks, tuple(path)))


def load_study(path) -> Study:
    """Read and validate a study file.

    Args:
        path: the matrix YAML file.

    Returns:
        The validated Study (paths in trainer keys made absolute).

    Raises:
        MatrixError: one line per mistake, naming file, line and key.
    """
    path = Path(path)
    if not path.is_file():
        raise MatrixError("%s: no such matrix file (give one with --matrix)" % path)
    check_yaml_bounds(path)
    try:
        data, marks = load_with_marks(path)
    except YamlSyntaxError as e:
        raise MatrixError(str(e))
    if not isinstance(data, dict):
        raise MatrixError("%s:1: the file must be a mapping with at least `axes:`" % path)
    try:
        study = Study.model_validate(data)
    except pydantic.ValidationError as e:
        raise MatrixError("\n".join(_describe(err, path, marks) for err in e.errors()))
    study._source, study._marks = path, marks
    problems = list(_check_trainer_keys(study)) + list(_check_rule_stacks(study))
    if problems:
        raise MatrixError("\n".join(problems))
    _check_cell_count(study)
    _absolutize_paths(study)
    return study


# ---------------------------------------------------------------------------
# bounds: any bytes end in one line, in bounded time and memory

def check_yaml_bounds(path: Path) -> None:
    """Refuse a YAML file that is too big, not UTF-8 text, too deep or alias-exponential.

    Runs on parser events (no recursion, no objects built), so it is linear in the
    file's size; syntax errors are left for the loader, which names their line.

    Raises:
        MatrixError: one line naming the file and what is wrong.
    """
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise MatrixError("%s: %d bytes; a study file may have at most %d (is this the right file?)"
                          % (path, size, MAX_FILE_BYTES))
    raw = path.read_bytes()
    if b"\0" in raw:
        raise MatrixError("%s: binary file (NUL bytes); a study file is YAML text" % path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MatrixError("%s: not UTF-8 text (byte %d: %s); save it as UTF-8" % (path, e.start, e.reason))
    try:
        _count_nodes(path, yaml.parse(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return


def _count_nodes(path: Path, events) -> None:
    # open collections as [size, anchor]; an alias weighs what its anchor expanded to
    open_: List[list] = []
    weight: Dict[str, int] = {}
    total = 0
    for event in events:
        if isinstance(event, yaml.CollectionStartEvent):
            open_.append([1, event.anchor])
            if len(open_) > MAX_DEPTH:
                raise MatrixError("%s:%d: nests deeper than %d levels; a study file is a few levels deep"
                                  % (path, event.start_mark.line + 1, MAX_DEPTH))
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            size, anchor = open_.pop()
        elif isinstance(event, yaml.ScalarEvent):
            size, anchor = 1, event.anchor
        elif isinstance(event, yaml.AliasEvent):
            size, anchor = weight.get(event.anchor, 1), None
        else:
            continue
        if anchor:
            weight[anchor] = size
        if open_:
            open_[-1][0] += size
        total += 1 if isinstance(event, yaml.CollectionEndEvent) else size
        if total > MAX_NODES or (open_ and open_[-1][0] > MAX_NODES):
            raise MatrixError("%s:%d: expands to more than %d YAML nodes (anchors/aliases nested into each "
                              "other?); write the values out" % (path, event.start_mark.line + 1, MAX_NODES))


def _check_cell_count(study: Study) -> None:
    # the product's size is known before any cell is made: refuse before expanding
    lengths = {a: len(getattr(study.axes, a)) for a in SWEPT_AXES if getattr(study.axes, a)}
    count = math.prod(lengths.values())
    for rule in study.include:
        count += math.prod(len(v) for v in rule.given().values()) * math.prod(
            n for a, n in lengths.items() if a not in rule.given())
    if count > MAX_CELLS:
        raise MatrixError("%s: expands to %d cells, more than %d: %s multiply; shorten an axis or split the study"
                          % (study.where("axes"), count, MAX_CELLS,
                             " x ".join("%s (%d)" % (a, n) for a, n in lengths.items() if n > 1)))


# ---------------------------------------------------------------------------
# error wording

def _describe(err: dict, path: Path, marks: Marks) -> str:
    loc = _yaml_loc(err["loc"])
    key = _dotted(loc) or "(top level)"
    line = line_of(marks, loc)
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        what = "unknown key; allowed: %s" % ", ".join(allowed) if allowed else "unknown key"
    elif err["type"] == "missing":
        what = "required key is missing"
    elif err["type"] == "literal_error":
        what = "%r is not allowed; allowed: %s" % (err.get("input"), err["ctx"]["expected"])
    else:
        msg = err["msg"]
        msg = msg[len("Value error, "):] if msg.startswith("Value error, ") else msg
        what = "%s (got %r)" % (msg, err.get("input")) if not isinstance(err.get("input"), dict) else msg
    return "%s:%d: %s: %s" % (path, line, key, what)


def _yaml_loc(loc) -> tuple:
    # pydantic inserts validator names (e.g. 'function-before[...]') into loc; drop them
    return tuple(p for p in loc if isinstance(p, int) or ("[" not in p and "-" not in p or p in _ALL_KEYS))


def _dotted(loc) -> str:
    out = ""
    for p in loc:
        out += "[%d]" % p if isinstance(p, int) else ("." if out else "") + str(p)
    return out


def _allowed_keys(loc) -> List[str]:
    """Field names of the model reached by following `loc` from Study (empty if unknown)."""
    model: Any = Study
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return []
        model = _inner_model(fields[part].annotation)
    fields = getattr(model, "model_fields", None)
    return list(fields) if fields else []


def _inner_model(annotation):
    # unwrap Optional[...], Annotated[...] and List[...] down to a BaseModel class
    for _ in range(6):
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if not args:
            return None
        annotation = args[0]
    return None


_ALL_KEYS = set(SWEPT_AXES) | set(Stack.model_fields) | set(Study.model_fields)


# ---------------------------------------------------------------------------
# checks pydantic cannot do: trainer keys (model/config.py) and stack names in rules

def _check_trainer_keys(study: Study):
    known = ", ".join(sorted(DEFAULTS))
    places = [(("config",), study.config)]
    places += [(("axes", "stack", i, "overrides"), s.overrides) for i, s in enumerate(study.axes.stack)]
    places += [(("overrides", i, "config"), o.config) for i, o in enumerate(study.overrides)]
    for where, mapping in places:
        for key in mapping:
            if key not in DEFAULTS:
                yield "%s: %s.%s: unknown trainer key; allowed: %s" % (
                    study.where(*where, key), _dotted(where), key, known)


def _check_rule_stacks(study: Study):
    names = study.stacks()
    for kind in ("exclude", "include"):
        for i, rule in enumerate(getattr(study, kind)):
            for j, name in enumerate(rule.stack or []):
                if name not in names:
                    yield "%s: %s[%d].stack: %r is not a stack of this study; allowed: %s" % (
                        study.where(kind, i, "stack", j), kind, i, name, ", ".join(names))
    for i, override in enumerate(study.overrides):
        for j, name in enumerate(override.when.stack or []):
            if name not in names:
                yield "%s: overrides[%d].when.stack: %r is not a stack of this study; allowed: %s" % (
                    study.where("overrides", i, "when", "stack", j), i, name, ", ".join(names))
    seen = set()
    for i, s in enumerate(study.axes.stack):
        if s.name in seen:
            yield "%s: axes.stack[%d].name: %r is used twice; stack names must be unique" % (
                study.where("axes", "stack", i, "name"), i, s.name)
        seen.add(s.name)


def _absolutize_paths(study: Study) -> None:
    # relative data paths mean "next to the matrix file", whatever the cwd is
    base = study.source.resolve().parent
    mappings = [study.config] + [s.overrides for s in study.axes.stack] + [o.config for o in study.overrides]
    for mapping in mappings:
        for key in PATH_KEYS:
            value = mapping.get(key)
            if isinstance(value, str) and is_host_path(key, value) and not os.path.isabs(value):
                mapping[key] = str(base / value)
