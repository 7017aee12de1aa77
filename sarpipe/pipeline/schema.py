"""Pipeline files: the YAML schema, ``--set`` overrides, and validation that reports every problem at once.

A pipeline is an ordered list of named steps. Each step names a registered ``stage``, its ``params`` (checked
against the stage's own pydantic model), its ``inputs`` (an earlier step, ``catalog:ENTRY``, ``$entry`` in a batch,
or a path) and optionally its ``output`` path. Optional sections: ``dask:`` (where steps run), ``device:`` (CPU/GPU),
``batch:`` (run the steps for many catalog entries), ``catalog:`` (which data catalog), ``plugins:`` (modules to
import so that they can register stages).

Nothing runs and nothing is written until the whole file validates; the error lists each problem as
``FILE:LINE:COL: dotted.key: message``. Relative paths in a pipeline file are relative to the working directory.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..catalog import DEFAULT_CATALOG, NOT_YET, Catalog, empty_catalog, load_catalog
from ..errors import InputError
from ..yamlconf import ConfigError, YamlDocument, dotted, format_validation_error, load_yaml
from .registry import REGISTRY, Stage

_STEP_NAME = r"^[A-Za-z_][A-Za-z0-9_-]*$"
ADDRESS = re.compile(r"^(tcp|tls|ws|wss|ucx|inproc)://\S+$")
ENTRY_REF = "$entry"


def is_scheduler(value: str) -> bool:
    """A scheduler name sarpipe knows (threads, synchronous, local) or a scheduler address such as tcp://HOST:PORT."""
    return value in ("threads", "synchronous", "local") or bool(ADDRESS.match(value))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AdaptSpec(_Strict):
    minimum: int = Field(0, ge=0, description="fewest workers (or jobs) to keep")
    maximum: int = Field(4, ge=1, description="most workers (or jobs) to ask for")


class ClusterSpec(_Strict):
    """A cluster sarpipe starts for the run and stops after it."""

    kind: Literal["local", "slurm", "pbs", "kubernetes"] = Field(
        ..., description="local: dask.distributed.LocalCluster; slurm/pbs: dask-jobqueue; kubernetes: dask-kubernetes"
    )
    n_workers: int | None = Field(None, ge=1, description="workers (local) or jobs (slurm/pbs/kubernetes) to start")
    threads_per_worker: int | None = Field(None, ge=1, description="local clusters only")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="passed to the cluster class (queue, cores, memory, walltime, image, resources, ...)",
    )
    adapt: AdaptSpec | None = Field(None, description="scale between minimum and maximum instead of n_workers")


class DaskSpec(_Strict):
    """Where steps run. Default: the local threaded scheduler (nothing to start)."""

    scheduler: str = Field(
        "threads", description="threads | synchronous | local (a LocalCluster) | an address such as tcp://HOST:PORT"
    )
    cluster: ClusterSpec | None = Field(None, description="start a cluster for the run (instead of 'scheduler')")
    max_parallel: int | None = Field(
        None, ge=1, description="threaded scheduler: steps (or batch scenes) at once; default min(4, CPUs)"
    )
    connect_timeout: float = Field(30.0, gt=0, description="seconds to wait for a scheduler (and its workers)")

    @field_validator("scheduler")
    @classmethod
    def _scheduler(cls, v: str) -> str:
        if is_scheduler(v):
            return v
        raise ValueError("must be 'threads', 'synchronous', 'local' or an address such as tcp://127.0.0.1:8786")

    @model_validator(mode="after")
    def _either(self) -> DaskSpec:
        if self.cluster is not None and self.scheduler not in ("threads",):
            raise ValueError("give either 'scheduler' or 'cluster', not both")
        return self


class DeviceSpec(_Strict):
    """Which device GPU-capable stages use."""

    kind: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: cuda when a GPU step runs on a machine that has one"
    )
    gpus: int = Field(1, ge=1, description="threaded scheduler: GPU steps at once")


class BatchSpec(_Strict):
    """Run the steps once per catalog entry; ``$entry`` in a step's inputs stands for the current entry."""

    entries: str | list[str] = Field(
        ..., description="a glob over catalog entry names ('scene_*') or a list of names/globs"
    )


class StepSpec(_Strict):
    name: str = Field(..., pattern=_STEP_NAME)
    stage: str
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str] | str = Field(default_factory=dict)
    output: str | None = None
    resources: dict[str, float] | None = None
    description: str | None = None

    @field_validator("resources")
    @classmethod
    def _positive(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is not None and any(x <= 0 for x in v.values()):
            raise ValueError("resource amounts must be positive")
        return v


class PipelineSpec(_Strict):
    name: str | None = Field(None, description="default: the file name without .yaml")
    description: str | None = None
    output_dir: str = Field("runs/{name}", description="where outputs go; {name} is the pipeline name")
    catalog: str | None = Field(None, description=f"data catalog file (default ./{DEFAULT_CATALOG} when present)")
    plugins: list[str] = Field(
        default_factory=list, description="Python modules to import first (they register stages)"
    )
    dask: DaskSpec = Field(default_factory=DaskSpec)
    device: DeviceSpec = Field(default_factory=DeviceSpec)
    batch: BatchSpec | None = None
    steps: list[Any] = Field(..., min_length=1)


# ------------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class Ref:
    """Where an input comes from: an earlier ``step``, a ``catalog`` entry, the batch ``entry``, or a ``file``."""

    kind: Literal["step", "catalog", "entry", "file"]
    target: str = ""

    def __str__(self) -> str:
        return {"step": self.target, "catalog": f"catalog:{self.target}", "entry": ENTRY_REF, "file": self.target}[
            self.kind
        ]


@dataclass
class StepDef:
    index: int
    name: str
    stage: Stage
    params: BaseModel
    inputs: dict[str, Ref]
    output: str | None
    resources: dict[str, float]
    output_where: str = ""  # FILE:LINE:COL of the step's output (or of the step) for messages about it

    @property
    def params_json(self) -> dict[str, Any]:
        return self.params.model_dump(mode="json", by_alias=True)


@dataclass
class Pipeline:
    spec: PipelineSpec
    name: str
    source: str
    steps: list[StepDef]
    catalog: Catalog
    entries: list[str] | None = None  # batch entries, in order
    plugins: list[str] = field(default_factory=list)
    output_dir_where: str = ""  # FILE:LINE:COL (or the --set) that gave output_dir; "" for the default

    @property
    def output_dir(self) -> Path:
        return Path(self.spec.output_dir.replace("{name}", self.name))

    def step(self, name: str) -> StepDef:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)


# ---------------------------------------------------------------------------------------------- overrides


def _parse_scalar(text: str, label: str = "--set") -> Any:
    """A ``--set`` value read as YAML (text that is not YAML stays text); aliases are expanded with the same
    bound as in files, so a value cannot blow up the validation that walks it."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return text
    if node is None:
        return None
    return load_yaml(text=text, source=label).data


def apply_overrides(doc: YamlDocument, sets: list[str]) -> list[str]:
    """Apply ``key.path=value`` overrides to ``doc.data`` (values parsed as YAML). Steps may be addressed by
    name (``steps.focus.params.range_window=hamming:0.75``) or index (``steps.1...``). Returns problems."""
    problems = []
    if not isinstance(doc.data, dict):
        return problems
    for item in sets:
        label = f"--set {item}"
        if "=" not in item:
            problems.append(f"{label}: expected KEY.PATH=VALUE")
            continue
        key, _, text = item.partition("=")
        parts = [p for p in key.strip().split(".")]
        if not parts or any(p == "" for p in parts):
            problems.append(f"{label}: empty key")
            continue
        node: Any = doc.data
        loc: list[Any] = []
        created: list[tuple] = []  # mappings this option brought into being: their problems are its problems
        ok = True
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                idx = None
                if part.lstrip("-").isdigit():
                    idx = int(part)
                else:
                    idx = next((j for j, s in enumerate(node) if isinstance(s, dict) and s.get("name") == part), None)
                if idx is None or not -len(node) <= idx < len(node):
                    names = [s.get("name") for s in node if isinstance(s, dict)]
                    problems.append(
                        f"{label}: {dotted(tuple(loc))} has no item {part!r}"
                        + (f" (steps: {', '.join(map(str, names))})" if names else "")
                    )
                    ok = False
                    break
                idx %= len(node)
                loc.append(idx)
                if last:
                    node[idx] = _parse_scalar(text, label)
                else:
                    node = node[idx]
            elif isinstance(node, dict):
                loc.append(part)
                if last:
                    node[part] = _parse_scalar(text, label)
                else:
                    if node.get(part) is None:
                        node[part] = {}
                        created.append(tuple(loc))
                    node = node[part]
            else:
                problems.append(f"{label}: {dotted(tuple(loc))} is a value, not a mapping or list")
                ok = False
                break
        if ok:
            doc.overrides[tuple(loc)] = label
            for prefix in created:
                doc.overrides.setdefault(prefix, label)
    return problems


# --------------------------------------------------------------------------------------------- validation


def _problem(doc: YamlDocument, loc: tuple, message: str) -> str:
    return f"{doc.where(loc)}: {dotted(loc)}: {message}"


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_ref(text: str, earlier: dict[str, int], later: set[str]) -> Ref:
    if text == ENTRY_REF:
        return Ref("entry")
    if text.startswith("catalog:"):
        return Ref("catalog", text[len("catalog:") :])
    if text in earlier or text in later:
        return Ref("step", text)
    # expanded once here, so validation, planning and fingerprints all see the same path
    return Ref("file", os.path.expandvars(os.path.expanduser(text)))


def validate_pipeline(doc: YamlDocument, *, sets: list[str] | None = None, catalog_path: str | None = None) -> Pipeline:
    """Validate a parsed pipeline document (after applying ``sets``); raise :class:`ConfigError` listing every
    problem with its location. Imports plugin modules; reads (but writes nothing to) the filesystem."""
    problems: list[str] = []
    problems += apply_overrides(doc, list(sets or []))
    for loc, (line, col) in doc.duplicates:
        problems.append(f"{doc.source}:{line}:{col}: {dotted(loc)}: key given twice (YAML would keep only the last)")
    if not isinstance(doc.data, dict):
        raise ConfigError(
            [f"{doc.where(())}: the pipeline file must be a mapping with a 'steps:' list"],
            title=f"{doc.source}: invalid pipeline",
        )

    try:
        spec = PipelineSpec.model_validate(doc.data)
    except ValidationError as exc:
        problems += format_validation_error(exc, doc)
        spec = None

    data = doc.data
    name = (spec.name if spec else data.get("name")) or Path(doc.source).stem
    plugins = spec.plugins if spec else [p for p in data.get("plugins", []) or [] if isinstance(p, str)]
    plugin_errors = REGISTRY.import_plugins(plugins)
    for i, mod in enumerate(plugins):
        if mod in plugin_errors:
            problems.append(_problem(doc, ("plugins", i), f"cannot import plugin module {mod!r}: {plugin_errors[mod]}"))

    # dask extras that must be installed
    dask_data = data.get("dask") if isinstance(data.get("dask"), dict) else {}
    cluster = dask_data.get("cluster") if isinstance(dask_data.get("cluster"), dict) else {}
    need = {"slurm": "dask_jobqueue", "pbs": "dask_jobqueue", "kubernetes": "dask_kubernetes"}.get(
        str(cluster.get("kind"))
    )
    if need and importlib.util.find_spec(need) is None:
        pkg = need.replace("_", "-")
        problems.append(
            _problem(doc, ("dask", "cluster", "kind"), f"needs {pkg}, which is not installed (pip install {pkg})")
        )

    # catalog: needed when a step says catalog:... or the pipeline is a batch
    raw_steps = data.get("steps") if isinstance(data.get("steps"), list) else []
    uses_catalog = bool(data.get("batch")) or any(
        isinstance(s, dict)
        and isinstance(s.get("inputs"), (dict, str))
        and any(
            isinstance(v, str) and v.startswith("catalog:")
            for v in (s["inputs"].values() if isinstance(s["inputs"], dict) else [s["inputs"]])
        )
        for s in raw_steps
    )
    catalog = empty_catalog()
    cat_file = catalog_path or (spec.catalog if spec else data.get("catalog"))
    if cat_file is None and Path(DEFAULT_CATALOG).is_file():
        cat_file = DEFAULT_CATALOG
    catalog_ok = True
    if cat_file is not None and (uses_catalog or catalog_path or (spec and spec.catalog)):
        try:
            catalog = load_catalog(cat_file)
        except ConfigError as exc:
            problems += exc.problems
            catalog_ok = False
        except InputError as exc:
            problems.append(_problem(doc, ("catalog",), f"{exc}") if "catalog" in data else f"{doc.source}: {exc}")
            catalog_ok = False
    elif uses_catalog:
        problems.append(
            f"{doc.source}: this pipeline uses catalog entries but there is no {DEFAULT_CATALOG} here; set 'catalog:' or --catalog"
        )
        catalog_ok = False

    # batch entries
    entries: list[str] | None = None
    if spec is not None and spec.batch is not None and catalog_ok:
        entries = catalog.match(spec.batch.entries)
        if not entries:
            problems.append(
                _problem(
                    doc,
                    ("batch", "entries"),
                    f"matches no catalog entry (entries: {', '.join(sorted(catalog.entries)) or 'none'})",
                )
            )

    # steps
    all_names = [s.get("name") for s in raw_steps if isinstance(s, dict) and isinstance(s.get("name"), str)]
    earlier: dict[str, int] = {}
    steps: list[StepDef] = []
    outputs: dict[str, tuple[int, str]] = {}
    for i, raw in enumerate(raw_steps):
        loc = ("steps", i)
        valid = True
        try:
            st = StepSpec.model_validate(raw)
        except ValidationError as exc:
            problems += format_validation_error(exc, doc, loc)
            st = _partial_step(raw)
            if st is None:
                continue
            valid = False  # keep checking what can be checked, so every problem is reported at once
        if st.name in earlier:
            problems.append(
                _problem(doc, loc + ("name",), f"duplicate step name {st.name!r} (also step {earlier[st.name]})")
            )
            valid = False
        try:
            stage = REGISTRY.get(st.stage)
        except KeyError as exc:
            msg = str(exc.args[0])
            if msg.startswith("unknown stage"):
                msg += _suggest(st.stage, REGISTRY.names()) + f"; known stages: {', '.join(REGISTRY.names())}"
            problems.append(_problem(doc, loc + ("stage",), msg))
            earlier.setdefault(st.name, i)
            continue
        try:
            params = stage.params_model().model_validate(st.params)
        except ValidationError as exc:
            problems += format_validation_error(exc, doc, loc + ("params",))
            params = None

        # inputs
        later = set(all_names[i + 1 :]) - set(earlier)
        inputs: dict[str, Ref] = {}
        given: dict[str, str]
        if isinstance(st.inputs, str):
            req = stage.required_slots or stage.inputs
            if len(req) == 1:
                given = {req[0].name: st.inputs}
            else:
                slots = ", ".join(s.name for s in stage.inputs) or "none"
                problems.append(
                    _problem(
                        doc,
                        loc + ("inputs",),
                        f"stage {stage.name} has inputs {slots}: give them as a mapping SLOT: SOURCE",
                    )
                )
                given = {}
        else:
            given = dict(st.inputs)
        for slot_name, text in given.items():
            iloc = loc + ("inputs",) if isinstance(st.inputs, str) else loc + ("inputs", slot_name)
            slot = stage.slot(slot_name)
            if slot is None:
                names = [s.name for s in stage.inputs]
                problems.append(
                    _problem(
                        doc,
                        iloc,
                        f"stage {stage.name} has no input {slot_name!r}{_suggest(slot_name, names)} (its inputs: {', '.join(names) or 'none'})",
                    )
                )
                continue
            ref = parse_ref(text, earlier, later)
            kinds = _ref_kinds(
                ref, text, earlier, steps, catalog, entries, spec, doc, iloc, problems, later, catalog_ok
            )
            for kind in kinds:
                if not slot.accepts(kind):
                    problems.append(
                        _problem(
                            doc,
                            iloc,
                            f"{text!r} gives a {kind} product; input {slot_name!r} of stage {stage.name} accepts {', '.join(slot.kinds)}",
                        )
                    )
                    break
            inputs[slot_name] = ref
        missing = [s.name for s in stage.required_slots if s.name not in given]
        for slot_name in missing:
            slot = stage.slot(slot_name)
            mloc = loc + ("inputs",) if "inputs" in (raw or {}) else loc
            problems.append(
                _problem(
                    doc,
                    mloc,
                    f"missing input {slot_name!r}: stage {stage.name} needs it (accepts {', '.join(slot.kinds)})",
                )
            )
        if params is not None and stage.check is not None:
            for key, msg in stage.check(params, {k: str(v) for k, v in inputs.items()}):
                problems.append(_problem(doc, loc + tuple(key), msg))

        # output
        if st.output is not None:
            if entries is not None and Path(st.output).is_absolute() and "{entry}" not in st.output:
                problems.append(
                    _problem(doc, loc + ("output",), "in a batch an absolute output path must contain {entry}")
                )
        out_key = st.output or f"{st.name}{stage.output_suffix}"
        if out_key in outputs and outputs[out_key][1] != st.name:  # (a duplicate name is reported already)
            problems.append(
                _problem(
                    doc,
                    loc + ("output",) if st.output else loc,
                    f"output {out_key!r} is also written by step {outputs[out_key][1]!r}",
                )
            )
        outputs[out_key] = (i, st.name)

        earlier.setdefault(st.name, i)
        if params is not None and valid:
            res = dict(stage.resources) if st.resources is None else dict(st.resources)
            steps.append(
                StepDef(
                    i,
                    st.name,
                    stage,
                    params,
                    inputs,
                    st.output,
                    res,
                    output_where=doc.where(loc + ("output",) if st.output else loc),
                )
            )

    if problems:
        raise ConfigError(_sorted(problems, doc.source), title=f"{doc.source}: invalid pipeline")
    assert spec is not None
    return Pipeline(
        spec=spec,
        name=name,
        source=doc.source,
        steps=steps,
        catalog=catalog,
        entries=entries,
        plugins=list(spec.plugins),
        output_dir_where=doc.where(("output_dir",)) if "output_dir" in data else "",
    )


def _partial_step(raw: Any) -> StepSpec | None:
    """The well-typed parts of a step that failed validation (None without a usable name and stage)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not isinstance(raw.get("stage"), str):
        return None
    inputs = raw.get("inputs", {})
    if not (isinstance(inputs, str) or (isinstance(inputs, dict) and all(isinstance(v, str) for v in inputs.values()))):
        inputs = {}
    params = raw.get("params") if isinstance(raw.get("params"), dict) else {}
    output = raw.get("output") if isinstance(raw.get("output"), str) else None
    return StepSpec.model_construct(
        name=raw["name"],
        stage=raw["stage"],
        params=params,
        inputs=inputs,
        output=output,
        resources=None,
        description=None,
    )


_POS = re.compile(r"^(.*?):(\d+):(\d+): ")


def _sorted(problems: list[str], source: str) -> list[str]:
    """Problems in the pipeline file by line and column, then the others in the order found."""

    def key(item: tuple[int, str]) -> tuple:
        k, text = item
        m = _POS.match(text)
        if m and m.group(1) == source:
            return (0, int(m.group(2)), int(m.group(3)), k)
        return (1, 0, 0, k)

    return [t for _, t in sorted(enumerate(problems), key=key)]


def _ref_kinds(
    ref: Ref,
    text: str,
    earlier: dict[str, int],
    steps: list[StepDef],
    catalog: Catalog,
    entries: list[str] | None,
    spec: PipelineSpec | None,
    doc: YamlDocument,
    iloc: tuple,
    problems: list[str],
    later: set[str],
    catalog_ok: bool,
) -> list[str]:
    """The product kinds an input reference can give (one per batch entry); problems are appended."""
    if ref.kind == "step":
        if ref.target in later:
            problems.append(_problem(doc, iloc, f"step {ref.target!r} comes later; steps run in the order listed"))
            return []
        up = next((s for s in steps if s.name == ref.target), None)
        return [up.stage.output] if up is not None else []
    if ref.kind == "entry":
        if spec is not None and spec.batch is None:
            problems.append(
                _problem(doc, iloc, f"{ENTRY_REF} means the current batch entry; this pipeline has no 'batch:' section")
            )
            return []
        return [k for e in (entries or []) for k in _catalog_kinds(catalog, e, doc, iloc, problems)]
    if ref.kind == "catalog":
        if not catalog_ok:
            return []
        if ref.target not in catalog:
            problems.append(
                _problem(
                    doc,
                    iloc,
                    f"missing input: no catalog entry {ref.target!r}{_suggest(ref.target, list(catalog.entries))}"
                    + (f" in {catalog.path}" if catalog.path else ""),
                )
            )
            return []
        return _catalog_kinds(catalog, ref.target, doc, iloc, problems)
    # a path
    p = Path(ref.target)
    if not p.exists():
        close = _suggest(text, list(earlier) + sorted(later))
        problems.append(
            _problem(
                doc,
                iloc,
                f"missing input: {text!r} is no earlier step, catalog entry (catalog:NAME) or existing file{close}",
            )
        )
        return []
    return ["any"]


def _catalog_kinds(catalog: Catalog, name: str, doc: YamlDocument, iloc: tuple, problems: list[str]) -> list[str]:
    e = catalog.get(name)
    if e.kind in NOT_YET:
        problems.append(_problem(doc, iloc, f"catalog entry {name!r} ({e.kind}): {NOT_YET[e.kind]}"))
        return []
    if e.kind == "remote":  # the product `sarpipe catalog fetch NAME` downloaded
        try:
            catalog.downloaded_product(name)
        except InputError as exc:
            problems.append(_problem(doc, iloc, f"missing input: {exc}"))
            return []
        return [e.product or "any"]
    path = catalog.entry_path(name)
    if path is not None and not path.exists():
        problems.append(
            _problem(doc, iloc, f"missing input: catalog entry {name!r} points to {path}, which does not exist")
        )
        return []
    return [e.product]


def load_pipeline(
    path: str | os.PathLike, *, sets: list[str] | None = None, catalog_path: str | None = None
) -> Pipeline:
    """Read and validate a pipeline file (see :func:`validate_pipeline`)."""
    return validate_pipeline(load_yaml(path), sets=sets, catalog_path=catalog_path)
