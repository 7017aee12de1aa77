"""The stage registry: built-in stages and third-party stages from the entry-point group ``sarpipe.stages``.

A stage is a function of a :class:`StageContext` plus a declaration: a pydantic model of its parameters
(``extra="forbid"``, defaults and descriptions, so ``sarpipe stages`` and ``sarpipe config template`` can list them),
its input slots and what each accepts, the kind of product it writes, and the worker resources it needs
(``{"GPU": 1}`` for a stage that must run on a GPU).

Third-party packages declare stages in their packaging metadata::

    [project.entry-points."sarpipe.stages"]
    my_stage = "my_package.stages:MY_STAGE"     # a Stage, a list of Stages, or a function returning either

Modules named in a pipeline's ``plugins:`` list are imported before validation and may call :func:`register`.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel

ENTRY_POINT_GROUP = "sarpipe.stages"


def _absolute(value: str) -> str:
    import os

    return os.path.abspath(os.path.expandvars(os.path.expanduser(value)))


#: Type for stage parameters that name a local file or folder: a relative path is made absolute against the folder
#: ``sarpipe run`` was started in, when the pipeline is validated, so workers started elsewhere find the same file.
LocalPath = Annotated[str, AfterValidator(_absolute)]

#: Product kinds a stage can write or accept.
#: ``raw``: raw-echo Zarr store; ``slc``: focused Zarr store; ``rfi``: RFI detection store (masks);
#: ``zarr``: any other Zarr store; ``files``: a folder of files (quicklooks, reports); ``scene``: a simulated
#: scene from the catalog (a simulator configuration, not a file); ``any``: anything.
PRODUCT_KINDS = ("raw", "slc", "rfi", "zarr", "files", "scene", "any")

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")

log = logging.getLogger("sarpipe.pipeline")


@dataclass(frozen=True)
class InputSlot:
    """A named input of a stage; ``kinds`` lists the product kinds it accepts."""

    name: str
    kinds: tuple[str, ...] = ("any",)
    required: bool = True
    help: str = ""

    def accepts(self, kind: str) -> bool:
        return "any" in self.kinds or kind == "any" or kind in self.kinds


@dataclass
class StageInput:
    """One resolved input: a path on disk, or (for a simulated scene) the catalog entry; never both empty."""

    ref: str
    kind: str
    path: Path | None = None
    entry: Any = None  # a sarpipe.catalog entry when the input comes from the catalog
    fingerprint: str = ""


@dataclass
class StageContext:
    """What a stage function receives.

    ``output`` is a temporary path the stage writes its product to (a Zarr store or a folder); the runner renames it
    to the step's output path when the function returns, so a stage never needs to write atomically itself.
    ``device`` is ``"cpu"`` or ``"cuda"``.
    """

    step: str
    entry: str | None
    params: BaseModel
    inputs: dict[str, StageInput]
    output: Path
    device: str = "cpu"
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("sarpipe.stage"))

    def path(self, slot: str) -> Path:
        """The file behind input ``slot`` (raises if the slot has no file, e.g. a simulated scene)."""
        inp = self.inputs[slot]
        if inp.path is None:
            raise ValueError(f"input '{slot}' ({inp.ref}) is not a file")
        return inp.path

    def has(self, slot: str) -> bool:
        return slot in self.inputs


@dataclass(frozen=True)
class Stage:
    """A registered stage. ``params`` is a pydantic model class, or a function returning one (resolved lazily so
    that listing stages does not import every library behind them)."""

    name: str
    run: Callable[[StageContext], Any]
    params: type[BaseModel] | Callable[[], type[BaseModel]]
    inputs: tuple[InputSlot, ...] = ()
    output: str = "zarr"
    output_suffix: str = ".zarr"
    resources: Mapping[str, float] = field(default_factory=dict)
    version: str = "1"
    help: str = ""
    origin: str = "built-in"
    #: optional cross-check of params and inputs at validation time:
    #: ``check(params, {slot: source}) -> [(loc_within_step, message), ...]``
    check: Callable[[BaseModel, dict[str, str]], list[tuple[tuple, str]]] | None = None
    #: optional extra fingerprint material beyond the params (e.g. the content of a file a param names)
    fingerprint_extra: Callable[[BaseModel], Any] | None = None

    def params_model(self) -> type[BaseModel]:
        p = self.params
        if isinstance(p, type) and issubclass(p, BaseModel):
            return p
        return p()  # type: ignore[operator]

    def slot(self, name: str) -> InputSlot | None:
        return next((s for s in self.inputs if s.name == name), None)

    @property
    def required_slots(self) -> tuple[InputSlot, ...]:
        return tuple(s for s in self.inputs if s.required)

    def summary(self) -> str:
        return self.help.strip().splitlines()[0] if self.help.strip() else ""


def _check_stage(stage: Any, origin: str) -> Stage:
    if not isinstance(stage, Stage):
        raise TypeError(f"{origin}: expected a sarpipe.pipeline.registry.Stage, got {type(stage).__name__}")
    if not _NAME.match(stage.name):
        raise ValueError(f"{origin}: stage name {stage.name!r} must match {_NAME.pattern}")
    if stage.output not in PRODUCT_KINDS:
        raise ValueError(f"{origin}: stage {stage.name!r} output kind {stage.output!r} is not one of {PRODUCT_KINDS}")
    for slot in stage.inputs:
        bad = [k for k in slot.kinds if k not in PRODUCT_KINDS]
        if bad:
            raise ValueError(f"{origin}: stage {stage.name!r} input {slot.name!r} accepts unknown kinds {bad}")
    return stage


class Registry:
    """Stages by name. Built-ins load on first use; entry points are read once; broken plugins are remembered with
    their error (shown by ``sarpipe stages`` and reported if a pipeline uses them) instead of breaking everything."""

    def __init__(self) -> None:
        self._stages: dict[str, Stage] = {}
        self._broken: dict[str, str] = {}
        self._loaded = False
        self._lock = threading.RLock()

    def register(self, stage: Stage, *, replace: bool = False) -> Stage:
        stage = _check_stage(stage, stage.origin)
        with self._lock:
            old = self._stages.get(stage.name)
            if old is not None and old is not stage and not replace:
                if old.run is stage.run and old.origin == stage.origin:
                    return old  # the same module imported twice
                raise ValueError(f"stage {stage.name!r} from {stage.origin} is already registered (from {old.origin})")
            self._stages[stage.name] = stage
            self._broken.pop(stage.name, None)
        return stage

    def _load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            from . import stages as builtin

            for stage in builtin.BUILTIN_STAGES:
                self.register(stage)
            try:
                eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
            except Exception as exc:  # noqa: BLE001 - broken metadata must not break sarpipe
                log.warning("cannot read entry points %s: %s", ENTRY_POINT_GROUP, exc)
                eps = []
            for ep in eps:
                origin = f"entry point {ep.name} = {ep.value}" + (
                    f" ({ep.dist.name})" if getattr(ep, "dist", None) else ""
                )
                try:
                    obj = ep.load()
                    if callable(obj) and not isinstance(obj, Stage):
                        obj = obj()
                    found = list(obj) if isinstance(obj, (list, tuple)) else [obj]
                    for stage in found:
                        stage = _check_stage(stage, origin)
                        if stage.origin == "built-in":
                            stage = Stage(**{**stage.__dict__, "origin": origin})
                        if stage.name in self._stages and self._stages[stage.name].origin == "built-in":
                            raise ValueError(f"stage name {stage.name!r} is taken by a built-in stage")
                        self.register(stage)
                except Exception as exc:  # noqa: BLE001
                    self._broken[ep.name] = f"{origin}: {type(exc).__name__}: {exc}"
                    log.debug(
                        "stage plugin %s failed to load: %s", ep.name, exc
                    )  # reported when used, and by `sarpipe stages`

    def import_plugins(self, modules: list[str]) -> dict[str, str]:
        """Import plugin modules (they call :func:`register`); returns {module: error} for those that failed."""
        self._load()
        errors = {}
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001
                errors[name] = f"{type(exc).__name__}: {exc}"
        return errors

    def get(self, name: str) -> Stage:
        self._load()
        with self._lock:
            if name in self._stages:
                return self._stages[name]
            if name in self._broken:
                raise KeyError(f"stage {name!r} failed to load: {self._broken[name]}")
            raise KeyError(f"unknown stage {name!r}")

    def names(self) -> list[str]:
        self._load()
        return sorted(self._stages)

    def all(self) -> list[Stage]:
        self._load()
        return [self._stages[n] for n in sorted(self._stages)]

    @property
    def broken(self) -> dict[str, str]:
        self._load()
        return dict(self._broken)


REGISTRY = Registry()


def register(stage: Stage | None = None, /, **declaration: Any):
    """Register a :class:`Stage`, or use as a decorator: ``@register(name="x", params=XParams, inputs=(...))``."""
    if stage is not None:
        return REGISTRY.register(stage)

    def deco(func: Callable[[StageContext], Any]) -> Callable[[StageContext], Any]:
        decl = dict(declaration)
        decl.setdefault("help", func.__doc__ or "")
        decl.setdefault("origin", f"module {func.__module__}")
        REGISTRY.register(Stage(run=func, **decl))
        return func

    return deco


def get_stage(name: str) -> Stage:
    """The stage called ``name`` (KeyError naming the problem otherwise)."""
    return REGISTRY.get(name)


def stage_names() -> list[str]:
    return REGISTRY.names()


# ------------------------------------------------------------------------------------------- describing stages


def _type_name(annotation: Any) -> str:
    """A short readable type: ``float | None``, ``rect | hamming``, ``path``, ``SimulationConfig``, ``list[str]``."""
    import types
    import typing

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return (
            "path" if args[1:] and any(getattr(m, "func", None) is _absolute for m in args[1:]) else _type_name(args[0])
        )
    if origin is typing.Literal:
        return " | ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join(_type_name(a) for a in args)
        return (
            f"{getattr(origin, '__name__', str(origin))}[{inner}]"
            if inner
            else getattr(origin, "__name__", str(origin))
        )
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def describe_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    """One dict per parameter: name, type, default (or ``required``), description."""
    from pydantic_core import PydanticUndefined

    out = []
    for name, f in model.model_fields.items():
        required = f.is_required()
        if required:
            default: Any = None
        elif f.default is not PydanticUndefined:
            default = f.default
        elif f.default_factory is not None:
            default = f.default_factory()  # type: ignore[call-arg]
        else:
            default = None
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json")
        out.append(
            {
                "name": f.alias or name,
                "type": _type_name(f.annotation),
                "required": required,
                "default": default,
                "description": (f.description or "").strip(),
            }
        )
    return out


def _nested_model(f: Any) -> type[BaseModel] | None:
    """The pydantic model inside a field's annotation (``Optional[Model]``), if any."""
    import typing

    if f is None:
        return None
    ann = f.annotation
    for cand in (ann, *typing.get_args(ann)):
        if isinstance(cand, type) and issubclass(cand, BaseModel):
            return cand
    return None


def template(stage: Stage, step_name: str | None = None) -> str:
    """A commented YAML step for ``stage``: every parameter with its default and description."""
    import yaml

    lines = [f"# {stage.name}: {stage.summary()}" if stage.summary() else f"# {stage.name}"]
    if stage.resources:
        lines.append(
            f"# needs worker resources {dict(stage.resources)} (runs as its own task on a worker that has them)"
        )
    lines.append(f"- name: {step_name or stage.name}")
    lines.append(f"  stage: {stage.name}")
    if stage.inputs:
        lines.append("  inputs:")
        for slot in stage.inputs:
            need = "required" if slot.required else "optional"
            hint = f"  # {need}; accepts {', '.join(slot.kinds)}" + (f"; {slot.help}" if slot.help else "")
            lines.append(
                f"    {slot.name}: STEP_OR_catalog:ENTRY{hint}"
                if slot.required
                else f"    # {slot.name}: STEP_OR_catalog:ENTRY{hint}"
            )
    params = describe_params(stage.params_model())
    if params:
        lines.append("  params:")
        for p in params:
            if p["description"]:
                for dline in p["description"].splitlines():
                    lines.append(f"    # {dline}")
            value = yaml.safe_dump(p["default"], default_flow_style=True, width=1000).strip()
            if value.endswith("..."):
                value = value[:-3].strip()
            if value.startswith("...") or value == "":
                value = "null"
            if p["required"]:
                lines.append(f"    {p['name']}:   # REQUIRED ({p['type']})")
            else:
                lines.append(f"    {p['name']}: {value}   # {p['type']}")
            nested = _nested_model(stage.params_model().model_fields.get(p["name"]))
            if nested is not None and p["default"] is None:
                lines.append(f"    # {p['name']}:   # its keys ({nested.__name__}):")
                for q in describe_params(nested):
                    shown = (
                        "REQUIRED"
                        if q["required"]
                        else yaml.safe_dump(q["default"], default_flow_style=True, width=1000)
                        .strip()
                        .removesuffix("...")
                        .strip()
                    )
                    lines.append(
                        f"    #   {q['name']}: {shown}"
                        + (f"   # {q['description'].splitlines()[0]}" if q["description"] else "")
                    )
    else:
        lines.append("  params: {}")
    suffix = stage.output_suffix or "/"
    lines.append(
        f"  # output: {step_name or stage.name}{suffix}   # default: OUTPUT_DIR/<name>{suffix} ({stage.output})"
    )
    return "\n".join(lines) + "\n"
