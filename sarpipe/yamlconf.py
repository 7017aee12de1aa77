"""YAML configuration files checked by pydantic models, with errors that name the file, line, column and key.

Every problem is reported at once (pydantic collects them all), each as ``FILE:LINE:COL: dotted.key: message``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import InputError

Model = TypeVar("Model", bound=BaseModel)
Loc = tuple[Any, ...]


#: Most nodes a document may expand to (aliases counted each time they are used): a bound on "billion laughs".
MAX_YAML_NODES = 1_000_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Walker:
    """Turns a composed node tree into plain data, recording where each key is written.

    Scalars are built by PyYAML's safe constructor (the composer has already resolved their tags). Aliases are
    expanded, so the nodes visited are counted and a document expanding beyond :data:`MAX_YAML_NODES` is refused;
    an alias that contains itself is refused too.
    """

    def __init__(self, source: str, max_nodes: int = MAX_YAML_NODES):
        self.source = source
        self.max_nodes = max_nodes
        self.count = 0
        self.marks: dict[Loc, tuple[int, int]] = {}
        self.dups: list[tuple[Loc, tuple[int, int]]] = []
        self.first: dict[Loc, tuple[int, int]] = {}
        self._open: set[int] = set()
        self._scalars = yaml.SafeLoader("")

    def _at(self, node: yaml.Node) -> str:
        return f"{self.source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"

    def scalar(self, node: yaml.Node) -> Any:
        try:
            return self._scalars.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise InputError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", where=self._at(node)) from exc

    def walk(self, node: yaml.Node, path: Loc) -> Any:
        self.count += 1
        if self.count > self.max_nodes:
            raise InputError(
                f"the document expands to more than {self.max_nodes:,} nodes (aliases counted each "
                "time they are used); refusing to expand it",
                where=self._at(node),
            )
        self.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if id(node) in self._open:
            raise InputError("an alias refers to a node that contains it (a recursive structure)", where=self._at(node))
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.walk(item, path + (i,)) for i, item in enumerate(node.value)]
            return self.mapping(node, path)
        finally:
            self._open.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: Loc) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        merged: list[dict[Any, Any]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:  # '<<: *base' or '<<: [*a, *b]': keys given here take precedence
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for src in sources:
                    value = self.walk(src, path)
                    if not isinstance(value, dict):
                        raise InputError(
                            "a merge key '<<' needs a mapping (or a list of mappings)", where=self._at(src)
                        )
                    merged.append(value)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise InputError("a key must be a plain value, not a list or mapping", where=self._at(key_node))
            key = self.scalar(key_node)
            at = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in out:
                self.dups.append((path + (key,), at))
                self.first.setdefault(path + (key,), self.marks[path + (key,)])
            out[key] = self.walk(value_node, path + (key,))
            # a key's position is where the key is written, not where its value starts
            self.marks[path + (key,)] = at
        for extra in merged:
            for key, value in extra.items():
                out.setdefault(key, value)
        return out


class YamlDocument:
    """A parsed YAML file: its data, and the (line, column) of every key and list item, keyed by path.

    ``duplicates`` lists ``(loc, (line, col))`` of keys given twice in one mapping (YAML keeps the last one);
    ``overrides`` maps a path changed after parsing (e.g. by ``--set``) to the text shown instead of its line.
    """

    def __init__(
        self,
        data: Any,
        marks: dict[Loc, tuple[int, int]],
        source: str,
        duplicates: list | None = None,
        first_marks: dict[Loc, tuple[int, int]] | None = None,
        empty: bool = False,
    ):
        self.data = data
        self.marks = marks
        self.source = source
        self.duplicates: list[tuple[Loc, tuple[int, int]]] = list(duplicates or [])
        #: (line, column) of the first occurrence of each key in ``duplicates``
        self.first_marks: dict[Loc, tuple[int, int]] = dict(first_marks or {})
        #: True when the document holds nothing (an empty file, or only comments)
        self.empty = empty
        self.overrides: dict[Loc, str] = {}

    def duplicate_problems(self) -> list[str]:
        """One line per key given twice in one mapping, naming both lines (YAML itself keeps the last silently)."""
        out = []
        for loc, (line, col) in self.duplicates:
            first = self.first_marks.get(loc)
            also = f" (first at line {first[0]})" if first else ""
            out.append(
                f"{self.source}:{line}:{col}: {dotted(loc)}: key given twice{also}; YAML would keep only the last"
            )
        return out

    def refuse_duplicates(self, title: str = "invalid configuration") -> None:
        """Raise :class:`ConfigError` when a key is given twice in one mapping."""
        problems = self.duplicate_problems()
        if problems:
            raise ConfigError(problems, title=f"{self.source}: {title}")

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


def _read_text(path: str | os.PathLike) -> str:
    """The text of a YAML file; a folder, an unreadable or a binary file becomes :class:`InputError`."""
    p = Path(path)
    if p.is_dir():
        raise InputError("is a folder, expected a YAML file", where=os.fspath(p))
    if not p.exists():
        raise InputError("no such file", where=os.fspath(p))
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror or exc})", where=os.fspath(p)) from exc
    if b"\0" in raw[:65536]:
        raise InputError("is a binary file (it holds NUL bytes), expected a YAML text file", where=os.fspath(p))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}), expected a YAML text file",
            where=os.fspath(p),
        ) from exc


def load_yaml(
    path: str | os.PathLike | None = None, *, text: str | None = None, source: str | None = None
) -> YamlDocument:
    """Parse a YAML file (or ``text``) keeping positions; a syntax error becomes :class:`InputError` with its line.

    A folder, a binary file, a document that expands (through aliases) beyond :data:`MAX_YAML_NODES` nodes or
    nests too deeply are refused the same way. Keys given twice are kept in ``duplicates`` for the caller to refuse.
    """
    if text is None:
        text = _read_text(path)  # type: ignore[arg-type]
        source = source or os.fspath(path)  # type: ignore[arg-type]
    source = source or "<yaml>"
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise InputError(f"invalid YAML: {exc.problem or exc}", where=pos) from exc
    except yaml.YAMLError as exc:  # e.g. a control character the reader refuses
        raise InputError(f"invalid YAML: {exc}".splitlines()[0], where=source) from exc
    except RecursionError as exc:
        raise InputError("invalid YAML: nested too deeply", where=source) from exc
    if node is None:
        return YamlDocument({}, {}, source, empty=True)
    walker = _Walker(source)
    try:
        data = walker.walk(node, ())
    except RecursionError as exc:
        raise InputError("invalid YAML: nested too deeply", where=source) from exc
    return YamlDocument(data, walker.marks, source, walker.dups, walker.first)


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


def format_validation_error(
    exc: ValidationError,
    doc: YamlDocument | None,
    prefix: Loc = (),
    relocate: Callable[[Loc, dict[str, Any]], Loc] | None = None,
) -> list[str]:
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
        super().__init__(
            f"{title} ({len(problems)} problem{'s' if len(problems) != 1 else ''}):\n  " + "\n  ".join(problems)
        )


def parse_model(model: type[Model], doc: YamlDocument, *, data: Any = None, prefix: Loc = ()) -> Model:
    """Validate ``doc.data`` (or ``data``, found at ``prefix`` in the document) against ``model``."""
    try:
        return model.model_validate(doc.data if data is None else data)
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(exc, doc, prefix), title=f"{doc.source}: invalid configuration"
        ) from exc


def load_model(model: type[Model], path: str | os.PathLike) -> Model:
    """Read a YAML file and validate it against ``model``, reporting every problem with its line (a key given
    twice is one of them)."""
    doc = load_yaml(path)
    doc.refuse_duplicates()
    return parse_model(model, doc)
