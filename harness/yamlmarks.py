"""Load YAML and remember the line of every key, so schema errors can say `file:line`."""
from pathlib import Path
from typing import Any, Dict, Tuple

import yaml

from model.config import YamlLoader, load_yaml

__all__ = ["Marks", "load_with_marks", "line_of", "YamlSyntaxError"]

Path_ = Tuple[Any, ...]
Marks = Dict[Path_, int]


class YamlSyntaxError(ValueError):
    """The file is not valid YAML; str() is one line `file:line: message`."""


def load_with_marks(path: Path) -> Tuple[Any, Marks]:
    """Parse `path`; return (data, marks) where marks maps a key path to its 1-based line.

    A key path is a tuple of mapping keys and sequence indices, e.g.
    `("axes", "stack", 0, "cuda")`; `()` is the document itself.
    """
    text = Path(path).read_text()
    try:
        node = yaml.compose(text, Loader=YamlLoader)
        data = load_yaml(text)  # the cell files' reader: `lr: 1e-3` is a number in both
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlSyntaxError("%s:%d: invalid YAML: %s" % (path, line, e.problem or e.context))
    except yaml.YAMLError as e:
        raise YamlSyntaxError("%s:1: invalid YAML: %s" % (path, str(e).splitlines()[0]))
    marks: Marks = {}
    if node is not None:
        _walk(node, (), marks)
    return data, marks


def _walk(node, where: Path_, marks: Marks) -> None:
    marks.setdefault(where, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            # the key's own line is where a reader looks for the mistake
            marks[where + (key,)] = key_node.start_mark.line + 1
            _walk(value_node, where + (key,), marks)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            marks[where + (i,)] = item.start_mark.line + 1
            _walk(item, where + (i,), marks)


def _scalar(node: "yaml.ScalarNode") -> Any:
    # resolve the key the way load_yaml does (so `1:` is the int 1, `on:` stays a string key)
    return load_yaml(yaml.serialize(node)) if node.tag != "tag:yaml.org,2002:str" else node.value


def line_of(marks: Marks, where: Path_) -> int:
    """Line of the longest known prefix of `where` (1 when nothing matches)."""
    for n in range(len(where), -1, -1):
        if where[:n] in marks:
            return marks[where[:n]]
    return 1

