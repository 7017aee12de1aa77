"""``data_catalog.yaml``: the data a pipeline can start from, by name.

Entries are local products (raw-echo or SLC Zarr stores, Sentinel-1 SAFE folders, Sentinel-1 Level-0 files),
simulated scenes (a simulator configuration inline or in a file) and remote searches (a provider plus a query).
Metadata use STAC names (``sar:instrument_mode``, ``sar:polarizations``, ``sat:orbit_state``, ...), so a catalog
entry and a STAC item describe a product the same way.

Relative paths in a catalog are relative to the folder of the catalog file. A remote entry is searched and
downloaded by a catalog provider (:mod:`sarpipe.catalog_remote`: ``sarpipe catalog search|fetch``); a pipeline
input ``catalog:NAME`` of a remote entry is the product ``fetch`` downloaded into the entry's ``download_dir``.
Credentials are never part of a catalog: a key such as ``password`` is refused.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import InputError
from .yamlconf import ConfigError, YamlDocument, dotted, format_validation_error, load_yaml, parse_model

DEFAULT_CATALOG = "data_catalog.yaml"

_FREQUENCY_BANDS = ("P", "L", "S", "C", "X", "Ku", "K", "Ka")
_POLARIZATIONS = ("HH", "VV", "HV", "VH")

#: Namespaces whose field names sarpipe checks (a typo there is an error); fields in other namespaces
#: (``myorg:tile``) are kept as they are.
CHECKED_NAMESPACES = ("sar", "sat")


class Properties(BaseModel):
    """STAC-style metadata of a product (SAR and Satellite extensions plus common fields).

    ``sar:center_frequency`` is in GHz, as in STAC (sarpipe's datasets use Hz).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    instrument_mode: str | None = Field(None, alias="sar:instrument_mode", description="e.g. SM, IW, EW, WV, spotlight")
    frequency_band: Literal[_FREQUENCY_BANDS] | None = Field(None, alias="sar:frequency_band")  # type: ignore[valid-type]
    center_frequency: float | None = Field(None, alias="sar:center_frequency", gt=0, description="GHz")
    polarizations: list[Literal[_POLARIZATIONS]] | None = Field(None, alias="sar:polarizations")  # type: ignore[valid-type]
    product_type: str | None = Field(None, alias="sar:product_type", description="e.g. RAW, SLC, GRD")
    observation_direction: Literal["left", "right"] | None = Field(None, alias="sar:observation_direction")
    resolution_range: float | None = Field(None, alias="sar:resolution_range", gt=0, description="m")
    resolution_azimuth: float | None = Field(None, alias="sar:resolution_azimuth", gt=0, description="m")
    pixel_spacing_range: float | None = Field(None, alias="sar:pixel_spacing_range", gt=0, description="m")
    pixel_spacing_azimuth: float | None = Field(None, alias="sar:pixel_spacing_azimuth", gt=0, description="m")
    looks_range: int | None = Field(None, alias="sar:looks_range", ge=1)
    looks_azimuth: int | None = Field(None, alias="sar:looks_azimuth", ge=1)
    orbit_state: Literal["ascending", "descending", "geostationary"] | None = Field(None, alias="sat:orbit_state")
    relative_orbit: int | None = Field(None, alias="sat:relative_orbit", ge=1)
    absolute_orbit: int | None = Field(None, alias="sat:absolute_orbit", ge=1)
    platform: str | None = None
    constellation: str | None = None
    instruments: list[str] | None = None
    datetime: str | None = None
    start_datetime: str | None = None
    end_datetime: str | None = None
    title: str | None = None

    def stac(self) -> dict[str, Any]:
        """The properties under their STAC names, unset ones left out."""
        return self.model_dump(by_alias=True, exclude_none=True)


_KNOWN_PROPERTY_NAMES = {f.alias or n for n, f in Properties.model_fields.items()}


def _unknown_property_problems(props: dict[str, Any], doc: YamlDocument, prefix: tuple) -> list[str]:
    problems = []
    for key in props:
        if key in _KNOWN_PROPERTY_NAMES:
            continue
        ns = str(key).split(":", 1)[0] if ":" in str(key) else None
        if ns is None or ns in CHECKED_NAMESPACES:
            close = difflib.get_close_matches(str(key), sorted(_KNOWN_PROPERTY_NAMES), n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{doc.where(prefix + (key,))}: {dotted(prefix + (key,))}: unknown STAC field{hint}")
    return problems


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    properties: Properties = Field(default_factory=Properties)

    #: The pipeline product kind this entry provides, or None when sarpipe cannot read it yet.
    product: str | None = None

    def location(self) -> str:
        return ""


class _LocalEntry(_Entry):
    path: str = Field(..., description="file or folder; relative paths are relative to the catalog file")

    def location(self) -> str:
        return self.path


class RawEntry(_LocalEntry):
    """A raw-echo Zarr store (sarpipe's data contract)."""

    kind: Literal["raw"]
    product: str | None = "raw"


class SlcEntry(_LocalEntry):
    """A focused SLC Zarr store."""

    kind: Literal["slc"]
    product: str | None = "slc"


class SafeEntry(_LocalEntry):
    """A Sentinel-1 SAFE product folder (reader: Sentinel-1 issue)."""

    kind: Literal["safe"]


class Level0Entry(_LocalEntry):
    """A Sentinel-1 Level-0 product (ISP packets; decoder: Sentinel-1 issue)."""

    kind: Literal["level0"]


class SimulatedEntry(_Entry):
    """A simulated scene: a simulator configuration inline (``config``) or in a YAML file (``config_file``)."""

    kind: Literal["simulated"]
    product: str | None = "scene"
    config: dict[str, Any] | None = None
    config_file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SimulatedEntry:
        if (self.config is None) == (self.config_file is None):
            raise ValueError("give exactly one of 'config' (inline simulator configuration) or 'config_file'")
        return self

    def location(self) -> str:
        return self.config_file or "(inline simulator configuration)"


class RemoteQuery(Properties):
    """A search: collection, area, time, and STAC property filters."""

    collection: str | None = Field(None, description="e.g. SENTINEL-1")
    bbox: list[float] | None = Field(None, description="west, south, east, north in degrees (WGS84)")
    intersects: dict[str, Any] | None = Field(None, description="GeoJSON geometry")
    wkt: str | None = Field(None, description="search area as WKT (POINT, POLYGON or MULTIPOLYGON), lon/lat degrees")
    limit: int | None = Field(None, ge=1, description="most products a search returns (default 20)")

    @field_validator("wkt")
    @classmethod
    def _wkt(cls, v: str | None) -> str | None:
        if v is not None:
            from .catalog_remote.records import wkt_to_geojson  # noqa: PLC0415

            wkt_to_geojson(v)  # raises ValueError with the reason
        return v

    @model_validator(mode="after")
    def _one_area(self) -> RemoteQuery:
        if sum(x is not None for x in (self.bbox, self.intersects, self.wkt)) > 1:
            raise ValueError("give one search area: bbox, intersects or wkt")
        return self

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        if len(v) != 4:
            raise ValueError("bbox needs 4 numbers: west, south, east, north")
        w, s, e, n = v
        if not (-90 <= s <= n <= 90 and -180 <= w <= 180 and -180 <= e <= 180):
            raise ValueError("bbox must be west, south, east, north in degrees with south <= north")
        return v


class RetryPolicy(BaseModel):
    """Retries of catalog requests and downloads (429, 5xx, dropped connections): the n-th wait is
    ``backoff_s * 2**n`` s capped at ``max_backoff_s`` (or the server's ``Retry-After``), at most ``attempts``
    tries and ``max_total_s`` of waiting in all."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(6, ge=1, description="tries in all, the first included")
    backoff_s: float = Field(2.0, ge=0, description="first wait, s")
    max_backoff_s: float = Field(120.0, ge=0, description="longest single wait, s")
    max_total_s: float = Field(900.0, ge=0, description="most waiting in all, s")
    timeout_s: float = Field(60.0, gt=0, description="connect/read timeout of one request, s")


class RemoteEntry(_Entry):
    """A remote search: a catalog provider, its endpoint and a query; ``sarpipe catalog fetch`` downloads the
    products into ``download_dir`` (default ``downloads/NAME`` beside the catalog)."""

    kind: Literal["remote"]
    provider: str = Field(
        ...,
        description="cdse (Copernicus Data Space), dhus (any DHuS; url required), stac (any STAC API; url), or a plugin's",
    )
    url: str | None = Field(None, description="service root; overrides the provider's default (dhus, stac: required)")
    download_url: str | None = Field(None, description="cdse: download service root (default: url if given)")
    auth_url: str | None = Field(
        None, description="cdse: token endpoint (default: url + the CDSE token path if url is given)"
    )
    asset: str | None = Field(None, description="stac: the asset to download (default: the first with role data)")
    query: RemoteQuery = Field(default_factory=RemoteQuery)
    download_dir: str | None = Field(None, description="where fetch puts the products (default downloads/NAME)")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    product: str | None = "any"

    @field_validator("provider")
    @classmethod
    def _provider(cls, v: str) -> str:
        from .catalog_remote.providers import provider_names  # noqa: PLC0415

        names = provider_names()
        if v not in names:
            raise ValueError(f"unknown catalog provider {v!r}; registered: {', '.join(names)}")
        return v

    @model_validator(mode="after")
    def _endpoint(self) -> RemoteEntry:
        from .catalog_remote.providers import provider_class  # noqa: PLC0415

        try:
            cls = provider_class(self.provider)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        if self.url is None and cls.default_url is None:
            raise ValueError(
                f"provider {self.provider!r} has no default endpoint: give 'url'"
                + (
                    " (the DHuS api_url, e.g. https://HOST/dhus/; the original Open Access Hub is closed)"
                    if self.provider == "dhus"
                    else ""
                )
            )
        return self

    def location(self) -> str:
        return f"{self.provider}" + (f" {self.url}" if self.url else "")


Entry = Annotated[
    RawEntry | SlcEntry | SafeEntry | Level0Entry | SimulatedEntry | RemoteEntry,
    Field(discriminator="kind"),
]

ENTRY_KINDS = ("raw", "slc", "safe", "level0", "simulated", "remote")

NOT_YET = {
    "safe": "reading SAFE products comes with the Sentinel-1 issue; sarpipe cannot use this entry yet",
    "level0": "decoding Sentinel-1 Level-0 comes with the Sentinel-1 issue; sarpipe cannot use this entry yet",
}


class CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    entries: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")], Entry] = Field(default_factory=dict)


class Catalog:
    """A loaded catalog: entries by name, plus where the file is (relative paths resolve against its folder)."""

    def __init__(self, model: CatalogFile, path: Path | None):
        self.model = model
        self.path = path
        self.root = path.absolute().parent if path is not None else Path.cwd()

    @property
    def entries(self) -> dict[str, Any]:
        return self.model.entries

    def __contains__(self, name: str) -> bool:
        return name in self.model.entries

    def get(self, name: str) -> Any:
        try:
            return self.model.entries[name]
        except KeyError:
            known = ", ".join(sorted(self.model.entries)) or "none"
            raise InputError(
                f"no catalog entry {name!r} (entries: {known})", where=str(self.path or DEFAULT_CATALOG)
            ) from None

    def resolve(self, relative: str) -> Path:
        p = Path(os.path.expandvars(os.path.expanduser(relative)))
        return p if p.is_absolute() else (self.root / p)

    def entry_path(self, name: str) -> Path | None:
        """The local file or folder behind entry ``name`` (None for simulated inline configs and for remote searches
        not downloaded yet)."""
        e = self.get(name)
        if isinstance(e, _LocalEntry):
            return self.resolve(e.path)
        if isinstance(e, SimulatedEntry) and e.config_file:
            return self.resolve(e.config_file)
        if isinstance(e, RemoteEntry):  # the product `sarpipe catalog fetch` downloaded, once there is one
            try:
                return self.downloaded_product(name)
            except InputError:
                return None
        return None

    def download_dir(self, name: str) -> Path:
        """Where ``sarpipe catalog fetch NAME`` puts the products of remote entry ``name``."""
        e = self.get(name)
        return self.resolve(getattr(e, "download_dir", None) or f"downloads/{name}")

    def downloaded_product(self, name: str) -> Path:
        """The product ``fetch`` downloaded and verified for remote entry ``name``: exactly one, else bad input
        (none yet: run the fetch; several: narrow the query)."""
        from .catalog_remote.manifest import downloaded_files  # noqa: PLC0415

        folder = self.download_dir(name)
        files = downloaded_files(folder)
        if not files:
            raise InputError(
                f"catalog entry {name!r} is a remote search with nothing downloaded in {folder} yet; "
                f"run `sarpipe catalog fetch {name}` first"
            )
        if len(files) > 1:
            raise InputError(
                f"catalog entry {name!r} has {len(files)} downloaded products in {folder}; a pipeline input needs "
                "one: set query.limit: 1 (and fetch again) or give the file as the input"
            )
        return files[0]

    def match(self, patterns: str | list[str]) -> list[str]:
        """Entry names matching a glob (``"scene_*"``) or a list of names/globs, in catalog order, no repeats."""
        pats = [patterns] if isinstance(patterns, str) else list(patterns)
        out: list[str] = []
        for name in self.model.entries:
            if any(fnmatch.fnmatchcase(name, p) for p in pats) and name not in out:
                out.append(name)
        return out

    def simulation_config(self, name: str) -> dict[str, Any]:
        """The simulator configuration (a plain dict) of a simulated entry."""
        e = self.get(name)
        if not isinstance(e, SimulatedEntry):
            raise InputError(f"catalog entry {name!r} is {e.kind}, not a simulated scene")
        if e.config is not None:
            return dict(e.config)
        doc = load_yaml(self.resolve(e.config_file))  # type: ignore[arg-type]
        doc.refuse_duplicates("invalid simulator configuration")
        if not isinstance(doc.data, dict):
            raise InputError("a simulator configuration must be a mapping", where=doc.source)
        return doc.data

    def fingerprint(self, name: str) -> str:
        """A short hash that changes when the entry's data (or its simulator configuration) changes."""
        e = self.get(name)
        if isinstance(e, SimulatedEntry):
            if e.config is not None:
                return json_fingerprint({"simulated": e.config})
            p = self.resolve(e.config_file)  # type: ignore[arg-type]
            return json_fingerprint(
                {"simulated_file": hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "missing"}
            )
        path = self.entry_path(name)
        if path is not None:
            return path_fingerprint(path)
        return json_fingerprint({"entry": e.model_dump(mode="json", by_alias=True)})


def json_fingerprint(obj: Any) -> str:
    """A short hash of a JSON-serialisable value (key order does not matter)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def path_fingerprint(path: str | os.PathLike) -> str:
    """Hash of the names, sizes and modification times of every file under ``path`` (a file or a folder).

    Cheap (no data are read); it changes whenever a file is rewritten, added or removed.
    """
    p = Path(path)
    if not p.exists():
        return "missing"
    items = []
    if p.is_file():
        st = p.stat()
        items.append(("", st.st_size, st.st_mtime_ns))
    else:
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames.sort()
            for f in sorted(filenames):
                fp = Path(dirpath) / f
                st = fp.stat()
                items.append((os.path.relpath(fp, p), st.st_size, st.st_mtime_ns))
    return json_fingerprint(items)


def parse_catalog(doc: YamlDocument, path: Path | None = None) -> Catalog:
    """Validate a parsed catalog document; every problem is reported at once with its line."""
    problems: list[str] = doc.duplicate_problems()
    data_for_model, secret_problems = _without_credentials(doc)
    problems.extend(secret_problems)
    try:
        model = CatalogFile.model_validate(data_for_model)
    except ValidationError as exc:
        problems.extend(_problems(exc, doc))
        model = None
    data = doc.data if isinstance(doc.data, dict) else {}
    entries = data.get("entries") if isinstance(data.get("entries"), dict) else {}
    for name, raw in entries.items():
        if not isinstance(raw, dict):
            continue
        props = raw.get("properties")
        if isinstance(props, dict):
            problems.extend(_unknown_property_problems(props, doc, ("entries", name, "properties")))
        query = raw.get("query")
        if raw.get("kind") == "remote" and isinstance(query, dict):
            qprops = {k: v for k, v in query.items() if k not in RemoteQuery.model_fields}
            problems.extend(_unknown_property_problems(qprops, doc, ("entries", name, "query")))
        if raw.get("kind") == "simulated" and isinstance(raw.get("config"), dict):
            problems.extend(_simulation_problems(raw["config"], doc, ("entries", name, "config")))
    if problems:
        raise ConfigError(problems, title=f"{doc.source}: invalid data catalog")
    assert model is not None
    return Catalog(model, path)


def _without_credentials(doc: YamlDocument) -> tuple[Any, list[str]]:
    """The catalog data without credential keys (``password``, ``user``, ``token``, ...), and one problem per key
    found: credentials come from the environment or ``~/.netrc``, never from a catalog (its value is not shown)."""
    from .catalog_remote.credentials import SECRET_KEYS  # noqa: PLC0415

    problems: list[str] = []

    def strip(node: Any, loc: tuple) -> Any:
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if str(k).lower() in SECRET_KEYS:
                    problems.append(
                        f"{doc.where(loc + (k,))}: {dotted(loc + (k,))}: credentials are never read from the catalog "
                        "file; remove this key and use the environment or ~/.netrc (see docs/catalog.md)"
                    )
                    continue
                skip = k == "config" and node.get("kind") == "simulated"  # a simulator configuration, not ours
                out[k] = v if skip else strip(v, loc + (k,))
            return out
        if isinstance(node, list):
            return [strip(v, loc + (i,)) for i, v in enumerate(node)]
        return node

    data = doc.data
    if isinstance(data, dict) and isinstance(data.get("entries"), dict):
        data = {**data, "entries": strip(data["entries"], ("entries",))}
    return data, problems


def _without_tags(loc: tuple, data: Any) -> tuple:
    """Drop the discriminator values pydantic puts into error locations (``entries.a.raw.path`` -> ``entries.a.path``):
    an element that is not a key of the mapping at that point but one of its values."""
    out, node = [], data
    for part in loc:
        if isinstance(node, dict):
            if part not in node and part in [v for v in node.values() if isinstance(v, str)]:
                continue
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
        out.append(part)
    return tuple(out)


def _problems(exc: ValidationError, doc: YamlDocument, prefix: tuple = ()) -> list[str]:
    def relocate(loc: tuple, err: dict) -> tuple:
        loc = _without_tags(loc, doc.data)
        return loc + ("kind",) if err["type"] in ("union_tag_invalid", "union_tag_not_found") else loc

    return format_validation_error(exc, doc, prefix, relocate)


def _simulation_problems(config: dict, doc: YamlDocument, prefix: tuple) -> list[str]:
    """Check an inline simulator configuration against ``sarpipe.simulate.SimulationConfig`` (when available)."""
    try:
        from .simulate import SimulationConfig  # noqa: PLC0415
    except ImportError:
        return []
    try:
        cfg = parse_model(SimulationConfig, doc, data=config, prefix=prefix)
    except ConfigError as exc:
        return list(exc.problems)
    from .simulate.config import scene_problems  # noqa: PLC0415

    try:  # targets or RFI intervals outside the scene, an empty or a too large scene: found before any step runs
        found = scene_problems(cfg)
    except InputError as exc:
        return [f"{doc.where(prefix)}: {dotted(prefix)}: {exc}"]
    return [f"{doc.where(prefix + loc)}: {dotted(prefix + loc)}: {msg}" for loc, msg in found]


def load_catalog(path: str | os.PathLike | None = None) -> Catalog:
    """Read and validate a catalog file (default ``./data_catalog.yaml``)."""
    p = Path(path if path is not None else DEFAULT_CATALOG)
    if not p.exists():
        raise InputError("no such catalog file", where=os.fspath(p))
    return parse_catalog(load_yaml(p), p)  # a folder or a binary file is refused there


def empty_catalog() -> Catalog:
    return Catalog(CatalogFile(), None)
