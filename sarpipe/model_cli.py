"""Command-line commands generated from an operation's pydantic parameter model.

Each operation (focus, simulate, RFI detect and clean, export, report) declares its parameters once, as a pydantic
model in its domain package; the pipeline stage uses that model as its ``params`` and the command line gets one
option per field from here, so an option added to the model appears in both.

Field -> option: ``name`` -> ``--name`` with underscores as dashes, the description as help, the default as default;
``bool`` -> ``--name/--no-name``; ``Literal`` -> a choice; ``list[Literal]`` -> a repeatable choice; a ``dict`` field
-> repeatable ``KEY=VALUE`` (values read as YAML); a nested model -> its own fields as options. A field's
``json_schema_extra`` may say ``{"cli": "--flag"}`` (another option name) or ``{"cli": False}`` (pipeline only, e.g. an
inline configuration block; the command takes a file instead).

Commands are built only when invoked (or listed in ``--help``): building one imports its domain package.
"""

from __future__ import annotations

import enum
import inspect
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import typer
from pydantic import BaseModel, ValidationError

from .errors import InputError

try:  # typer >= 0.29 builds its commands on its own vendored click
    from typer.core import TyperGroup
except ImportError:  # pragma: no cover
    TyperGroup = None  # type: ignore[assignment,misc]

__all__ = [
    "CliParam",
    "CommandSpec",
    "LazyGroup",
    "ModelOption",
    "build_command",
    "model_options",
    "parse_pairs",
    "register_lazy",
]


@dataclass(frozen=True)
class ModelOption:
    """One model field on the command line: ``field`` is its dotted path in the model (``detection.image_pfa``),
    ``flag`` the option (``--image-pfa``), ``kind`` one of ``value``, ``flag``, ``choice``, ``choices``, ``pairs``."""

    field: str
    flag: str
    kind: str
    py_name: str
    annotation: Any
    default: Any
    help: str


@dataclass(frozen=True)
class CliParam:
    """A command-line parameter that is not a model field (``-o/--output``, ``--slc``, ``--overwrite``), or a
    positional argument standing for the model field ``field``."""

    name: str
    annotation: Any
    info: Any  # typer.Argument(...) or typer.Option(...)
    field: str | None = None


@dataclass
class CommandSpec:
    """A generated command: ``model()`` returns the parameter model; ``run(params, **extras)`` does the work."""

    name: str
    model: Callable[[], type[BaseModel]]
    run: Callable[..., Any]
    help: str
    params: Sequence[CliParam] = ()
    stage: str | None = None  # the pipeline stage built on the same model
    short_help: str = ""


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _strip_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    base, _ = _unwrap_optional(_strip_annotated(annotation))
    return base if isinstance(base, type) and issubclass(base, BaseModel) else None


def _choice_enum(name: str, values: Sequence[Any]) -> type[enum.Enum]:
    return enum.Enum(name, {str(v): str(v) for v in values}, type=str)  # type: ignore[return-value]


def _default(f: Any) -> Any:
    from pydantic_core import PydanticUndefined

    if f.default is not PydanticUndefined:
        return f.default
    if f.default_factory is not None:
        return f.default_factory()
    return None


def model_options(model: type[BaseModel], *, skip: Sequence[str] = (), prefix: str = "") -> list[ModelOption]:
    """The options for every field of ``model`` (nested models flattened), except the fields in ``skip``."""
    out: list[ModelOption] = []
    for name, f in model.model_fields.items():
        path = prefix + name
        if path in skip:
            continue
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        cli = extra.get("cli", True)
        if cli is False:
            continue
        nested = _nested_model(f.annotation)
        if nested is not None:
            out.extend(model_options(nested, skip=skip, prefix=path + "."))
            continue
        flag = cli if isinstance(cli, str) else "--" + name.replace("_", "-")
        py_name = "opt_" + path.replace(".", "__")
        base, optional = _unwrap_optional(_strip_annotated(f.annotation))
        base = _strip_annotated(base)
        default = _default(f)
        help_text = (f.description or "").strip()
        origin = typing.get_origin(base)
        if base is bool:
            out.append(ModelOption(path, flag, "flag", py_name, bool, bool(default), help_text))
        elif origin is typing.Literal:
            choice = _choice_enum(f"{name}_choice", typing.get_args(base))
            ann = choice | None if optional else choice
            out.append(
                ModelOption(
                    path, flag, "choice", py_name, ann, None if default is None else choice(str(default)), help_text
                )
            )
        elif origin is list and typing.get_origin(typing.get_args(base)[0]) is typing.Literal:
            choice = _choice_enum(f"{name}_choice", typing.get_args(typing.get_args(base)[0]))
            out.append(
                ModelOption(
                    path, flag, "choices", py_name, list[choice], [choice(str(v)) for v in default or []], help_text
                )
            )
        elif origin is dict or base is dict:
            out.append(ModelOption(path, flag, "pairs", py_name, list[str], [], help_text + " (KEY=VALUE, repeatable)"))
        elif base in (int, float, str):
            out.append(ModelOption(path, flag, "value", py_name, base | None if optional else base, default, help_text))
        else:
            raise TypeError(
                f"{model.__name__}.{path}: no command-line form for {f.annotation!r}; "
                "mark it json_schema_extra={'cli': False} or give it a simple type"
            )
    return out


def parse_pairs(items: Sequence[str], flag: str = "--param") -> dict[str, Any]:
    """``["pfa=1e-3", "window_bins=63"]`` -> ``{"pfa": 0.001, "window_bins": 63}`` (values read as YAML)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"expected KEY=VALUE, got {item!r}", where=flag)
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise InputError(f"cannot read the value of {key!r}: {exc}", where=flag) from exc
        if isinstance(parsed, str):  # YAML 1.1 reads 1e-3 as text
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        out[key.strip()] = parsed
    return out


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for p in parents:
        data = data.setdefault(p, {})
    data[last] = value


def _error_where(
    err: dict[str, Any], options: Sequence[ModelOption], bound: dict[str, str], pair_keys: dict[str, Sequence[str]]
) -> tuple[str, str]:
    """(option, message) for one pydantic error: the option the user wrote, and pydantic's message without its
    ``Value error, `` wrapper. A ``pairs`` option names the key too (``--param pfa``) when the message starts
    with one of the keys given, ``KEY: ``."""
    loc = tuple(str(x) for x in err.get("loc", ()))
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    by_field = {o.field: o for o in options}
    for n in range(len(loc), 0, -1):
        path = ".".join(loc[:n])
        if path in bound:
            return bound[path], msg
        opt = by_field.get(path)
        if opt is not None:
            if opt.kind == "pairs":
                key = loc[n] if n < len(loc) else None
                head, sep, rest = msg.partition(": ")
                if key is None and sep and head in pair_keys.get(opt.field, ()):
                    key, msg = head, rest
                return (f"{opt.flag} {key}" if key else opt.flag), msg
            return opt.flag, msg
    return "", msg


def validate_options(
    model: type[BaseModel],
    options: Sequence[ModelOption],
    values: dict[str, Any],
    bound: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> BaseModel:
    """Build ``model`` from command-line ``values`` (by ``py_name``); a bad value is an :class:`InputError` naming its
    option."""
    data: dict[str, Any] = {}
    pair_keys: dict[str, list[str]] = {}
    for opt in options:
        v = values[opt.py_name]
        if opt.kind == "choice":
            v = None if v is None else (v.value if isinstance(v, enum.Enum) else v)
        elif opt.kind == "choices":
            v = [x.value if isinstance(x, enum.Enum) else x for x in v]
        elif opt.kind == "pairs":
            v = parse_pairs(v, opt.flag)
            pair_keys[opt.field] = list(v)
        _set(data, opt.field, v)
    for path, v in (extra or {}).items():
        _set(data, path, v)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [_error_where(e, options, bound or {}, pair_keys) for e in exc.errors()]
        where, msg = errors[0]
        more = "; ".join(f"{w}: {m}" if w else m for w, m in errors[1:])
        raise InputError(msg + (f"; also {more}" if more else ""), where=where or None) from None


def build_command(spec: CommandSpec) -> Any:
    """The click command for ``spec`` (built with typer); it carries ``model_options`` for introspection."""
    model = spec.model()
    bound = {
        p.field: (p.info.param_decls[0] if getattr(p.info, "param_decls", None) else p.name.upper())
        for p in spec.params
        if p.field
    }
    options = model_options(model, skip=tuple(bound))
    sig_params = []
    annotations: dict[str, Any] = {}
    for p in spec.params:
        sig_params.append(
            inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=p.info, annotation=p.annotation)
        )
        annotations[p.name] = p.annotation
    for o in options:
        decls = (f"{o.flag}/--no-{o.flag[2:]}",) if o.kind == "flag" else (o.flag,)
        info = typer.Option(o.default, *decls, help=o.help or None, show_default=o.kind != "pairs")
        sig_params.append(
            inspect.Parameter(o.py_name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=o.annotation)
        )
        annotations[o.py_name] = o.annotation

    def command(**kwargs: Any) -> Any:
        values = {o.py_name: kwargs.pop(o.py_name) for o in options}
        fixed = {p.field: None if kwargs[p.name] is None else str(kwargs[p.name]) for p in spec.params if p.field}
        params = validate_options(model, options, values, bound, fixed)
        return spec.run(params, **kwargs)

    command.__signature__ = inspect.Signature(sig_params)  # type: ignore[attr-defined]
    command.__annotations__ = annotations
    command.__doc__ = spec.help
    command.__name__ = spec.name.replace("-", "_")
    sub = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    sub.command(spec.name, short_help=spec.short_help or None)(command)
    cmd = typer.main.get_command(sub)
    cmd.name = spec.name
    cmd.model_options = options  # type: ignore[attr-defined]
    cmd.bound_fields = dict(bound)  # type: ignore[attr-defined]
    return cmd


#: group name -> {command name: spec}; ``LazyGroup`` builds them on first use.
_LAZY: dict[str, dict[str, CommandSpec]] = {}


def register_lazy(group: str, spec: CommandSpec) -> CommandSpec:
    _LAZY.setdefault(group, {})[spec.name] = spec
    return spec


def lazy_specs(group: str) -> dict[str, CommandSpec]:
    return dict(_LAZY.get(group, {}))


if TyperGroup is not None:

    class LazyGroup(TyperGroup):  # type: ignore[misc,valid-type]
        """A typer group whose model-derived commands are built when first asked for."""

        def list_commands(self, ctx: Any) -> list[str]:
            names = list(super().list_commands(ctx))
            return names + [n for n in _LAZY.get(self.name or "", {}) if n not in names]

        def get_command(self, ctx: Any, cmd_name: str) -> Any:
            cmd = super().get_command(ctx, cmd_name)
            if cmd is None and cmd_name in _LAZY.get(self.name or "", {}):
                cmd = build_command(_LAZY[self.name or ""][cmd_name])
                self.add_command(cmd, cmd_name)
            return cmd
else:  # pragma: no cover
    LazyGroup = None  # type: ignore[assignment,misc]
