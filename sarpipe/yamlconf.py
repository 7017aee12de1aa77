"""YAML configuration files checked by pydantic models, with errors that name the file, line, column and key.

Every problem is reported at once (pydantic collects them all), each as ``FILE:LINE:COL: dotted.key: message``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import InputError

Model = TypeVar("Model", bound=BaseModel)
Loc = tuple[Any, ...]


def _walk(node: yaml.Node, path: Loc, marks: dict[Loc, tuple[int, int]], dups: list | None = None) -> Any:
    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            if key in out and dups is not None:
                dups.append((path + (key,), (key_node.start_mark.line + 1, key_node.start_mark.column + 1)))
            out[key] = _walk(value_node, path + (key,), marks, dups)
            # a key's position is where the key is written, not where its value starts
            marks[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, path + (i,), marks, dups) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


class YamlDocument:
    """A parsed YAML file: its data, and the (line, column) of every key and list item, keyed by path.

    ``duplicates`` lists ``(loc, (line, col))`` of keys given twice in one mapping (YAML keeps the last one);
    ``overrides`` maps a path changed after parsing (e.g. by ``--set``) to the text shown instead of its line.
    """

    def __init__(self, data: Any, marks: dict[Loc, tuple[int, int]], source: str, duplicates: list | None = None):
        self.data = data
        self.marks = marks
        self.source = source
        self.duplicates: list[tuple[Loc, tuple[int, int]]] = list(duplicates or [])
        self.overrides: dict[Loc, str] = {}

    def where(self, loc: Loc) -> str:
        """``FILE:LINE:COL`` of the deepest known prefix of ``loc`` (or the override text that set it)."""
        for n in range(len(loc), 0, -1):
            if tuple(loc[:n]) in self.overrides:
                return self.overrides[tuple(loc[:n])]
        for n in range(len(loc), -1, -1):
            if tuple(loc[:n]) in self.marks:
                line, col = self.marks[tuple(loc[:n])]
                return f"{self.source}:{line}:{col}"
        return self.source


def load_yaml(path: str | os.PathLike | None = None, *, text: str | None = None, source: str | None = None) -> YamlDocument:
    """Parse a YAML file (or ``text``) keeping positions; a syntax error becomes :class:`InputError` with its line."""
    if text is None:
        p = Path(path)  # type: ignore[arg-type]
        if not p.is_file():
            raise InputError("no such file", where=os.fspath(p))
        text = p.read_text()
        source = source or os.fspath(p)
    source = source or "<yaml>"
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise InputError(f"invalid YAML: {exc.problem or exc}", where=pos) from exc
    marks: dict[Loc, tuple[int, int]] = {}
    dups: list = []
    data = {} if node is None else _walk(node, (), marks, dups)
    return YamlDocument(data, marks, source, dups)


def dotted(loc: Loc) -> str:
    """``('steps', 2, 'params', 'x')`` -> ``steps[2].params.x``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


_PYDANTIC_WRAPPERS = ("Value error, ", "Assertion failed, ")


def format_validation_error(exc: ValidationError, doc: YamlDocument | None, prefix: Loc = (),
                            relocate: Callable[[Loc, dict[str, Any]], Loc] | None = None) -> list[str]:
    """One line per problem: ``FILE:LINE:COL: key.path: message``.

    ``relocate(loc, error)`` may rewrite a location (e.g. drop pydantic's union tags) before it is looked up.
    """
    lines = []
    for err in exc.errors():
        loc = prefix + tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        if relocate is not None:
            loc = relocate(loc, err)
        where = doc.where(loc) if doc is not None else "<config>"
        msg = err["msg"]
        for wrapper in _PYDANTIC_WRAPPERS:
            msg = msg.removeprefix(wrapper)
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{where}: {dotted(loc)}: {msg}")
    return lines


class ConfigError(InputError):
    """Several configuration problems at once; ``problems`` holds one line each."""

    def __init__(self, problems: list[str], *, title: str = "invalid configuration"):
        self.problems = problems
        super().__init__(f"{title} ({len(problems)} problem{'s' if len(problems) != 1 else ''}):\n  " + "\n  ".join(problems))


def parse_model(model: type[Model], doc: YamlDocument, *, data: Any = None, prefix: Loc = ()) -> Model:
    """Validate ``doc.data`` (or ``data``, found at ``prefix`` in the document) against ``model``."""
    try:
        return model.model_validate(doc.data if data is None else data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, doc, prefix), title=f"{doc.source}: invalid configuration") from exc


def load_model(model: type[Model], path: str | os.PathLike) -> Model:
    """Read a YAML file and validate it against ``model``, reporting every problem with its line."""
    return parse_model(model, load_yaml(path))
