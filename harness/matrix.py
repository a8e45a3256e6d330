"""The study file (matrix.yml): schema, loading, and one-line errors with file:line.

A study names its axes (`stack` is a list of stack specs, the others lists of
values), optional `exclude`/`include` rules, per-stack `overrides` of trainer keys
and `config` (trainer keys for every cell). pydantic checks the shape; errors are
mapped back to YAML line numbers. Trainer keys are checked against model.config.
"""
import os
import typing
from pathlib import Path
from typing import Annotated, Any, Dict, List, Literal, Optional

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from harness.yamlmarks import Marks, YamlSyntaxError, line_of, load_with_marks
from model.config import DEFAULTS, PRESETS

__all__ = ["MatrixError", "Stack", "Axes", "Rule", "Override", "Study", "load_study", "AXES", "PATH_KEYS"]

# the axes a study may sweep, in the order cell names and tables show them
AXES = ("stack", "impl", "clip", "clip_threshold", "seed", "dataset", "preset")
# trainer keys holding filesystem paths: resolved against the matrix file's folder
PATH_KEYS = ("data_dir", "vgg_weights", "author_code_dir")

Impl = Literal["ours", "author"]
Clip = Literal["none", "norm", "value"]
Dataset = Literal["builtin", "synface", "celeba"]
Preset = Literal[tuple(PRESETS)]  # type: ignore[valid-type]
Executor = Literal["local", "docker", "ray"]
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


class Axes(BaseModel):
    """Values swept by the study; an axis left out keeps the trainer's (or `config`'s) value."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    stack: Annotated[List[Stack], Field(min_length=1)]
    impl: _axis(Impl) = None
    clip: _axis(Clip) = None
    clip_threshold: _axis(Annotated[float, Field(ge=0)]) = None
    seed: _axis(Annotated[int, Field(ge=0)]) = None
    dataset: _axis(Dataset) = None
    preset: _axis(Preset) = None


class Rule(BaseModel):
    """An exclude/include rule: axis -> value or list of values; a cell matches if all keys match."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    stack: _axis(str) = None
    impl: _axis(Impl) = None
    clip: _axis(Clip) = None
    clip_threshold: _axis(Annotated[float, Field(ge=0)]) = None
    seed: _axis(Annotated[int, Field(ge=0)]) = None
    dataset: _axis(Dataset) = None
    preset: _axis(Preset) = None

    def given(self) -> Dict[str, list]:
        """The axes this rule constrains."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


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
    _absolutize_paths(study)
    return study


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


_ALL_KEYS = set(AXES) | set(Stack.model_fields) | set(Study.model_fields)


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
            if isinstance(value, str) and not os.path.isabs(value):
                mapping[key] = str(base / value)
