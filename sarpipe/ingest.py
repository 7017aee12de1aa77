"""The ingest operation: one parameter model (:class:`IngestParams`) behind ``sarpipe ingest`` and the ``ingest``
pipeline stage, and the function both call (:func:`ingest_store`): a real acquisition in a source format -> raw (or
SLC) contract stores.

Formats are a registry (:data:`FORMATS`) of :class:`IngestFormat` entries naming a ``sniff(path) -> bool`` and a
``read(path, *, on_error="raise") -> dict[str, xr.Dataset]`` as ``"module:function"``, imported only when used; a
format whose module is not installed is skipped in detection. One part is written to OUT; several each to
``OUT-<key>.zarr`` beside it (OUT's stem), or only the ``select``-ed one to OUT. Every part is read and validated
before anything is written, and each store is written atomically.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import InputError
from .pipeline.registry import LocalPath

__all__ = ["FORMATS", "IngestFormat", "IngestParams", "detect_format", "ingest_outputs", "ingest_store", "read_parts"]


@dataclass(frozen=True)
class IngestFormat:
    """A source format: its name (``--format``), its sniff and read callables as ``"module:function"``."""

    name: str
    sniff: str
    read: str
    description: str

    def _load(self, ref: str) -> Callable[..., Any]:
        module, _, func = ref.partition(":")
        return getattr(importlib.import_module(module), func)

    def available(self) -> bool:
        """Whether the format's modules are installed (a format added by another part of sarpipe may not be)."""
        try:
            self._load(self.sniff)
            self._load(self.read)
        except (ModuleNotFoundError, AttributeError):
            return False
        return True

    def matches(self, path: Path) -> bool:
        return bool(self._load(self.sniff)(path))

    def reader(self) -> Callable[..., dict[str, Any]]:
        return self._load(self.read)


#: The known formats, tried in this order. One line per format.
FORMATS: list[IngestFormat] = [
    IngestFormat("s1-l0", "sarpipe.io.s1_level0:sniff_s1_level0", "sarpipe.io.s1_level0:read_s1_level0",
                 "Sentinel-1 Level-0 (measurement .dat file or .SAFE folder)"),
    IngestFormat("nisar-l0b", "sarpipe.io.nisar_l0b:sniff_nisar_l0b", "sarpipe.io.nisar_l0b:read_nisar_l0b",
                 "NISAR L0B raw signal data (RRSD HDF5)"),
    IngestFormat("s1-safe-slc", "sarpipe.io.safe:sniff_safe_slc", "sarpipe.io.safe:read_safe_slc",
                 "Sentinel-1 SLC product (.SAFE folder)"),
]  # fmt: skip


def _known() -> str:
    return ", ".join(f"{f.name} ({f.description})" for f in FORMATS)


class IngestParams(BaseModel):
    """What to ingest and how: the source file or folder, its format (detected when not given), which part."""

    model_config = ConfigDict(extra="forbid")

    source: LocalPath = Field(..., description="file or folder to ingest")
    format: str | None = Field(None, description="source format (default: detected): " + ", ".join(
        f.name for f in FORMATS))  # fmt: skip
    select: str | None = Field(None, description="write only this part (a key from --list) to the output")
    on_error: Literal["raise", "skip"] = Field(
        "raise", description="a damaged record: stop with its offset (raise) or leave it out and list it (skip)"
    )

    @field_validator("format")
    @classmethod
    def _known_format(cls, v: str | None) -> str | None:
        if v is not None and v not in {f.name for f in FORMATS}:
            raise ValueError(f"unknown format {v!r}; known formats: {_known()}")
        return v


def detect_format(path: Path, forced: str | None = None) -> IngestFormat:
    """The format of ``path``: ``forced`` if given (it must be installed), else the first whose sniff accepts it."""
    if forced is not None:
        fmt = next((f for f in FORMATS if f.name == forced), None)
        if fmt is None:
            raise InputError(f"unknown format {forced!r}; known formats: {_known()}", where="--format")
        if not fmt.available():
            raise InputError(f"the {forced} reader is not available in this installation", where="--format")
        return fmt
    for fmt in FORMATS:
        if fmt.available() and fmt.matches(path):
            return fmt
    raise InputError(f"not a format sarpipe can ingest; known formats: {_known()}", where=str(path))


def read_parts(params: IngestParams) -> tuple[IngestFormat, dict[str, Any]]:
    """Read and validate every part of the source (nothing is written)."""
    from .model import dataset_kind, validate

    path = Path(params.source)
    if not path.exists():
        raise InputError("no such file or folder", where=str(path))
    fmt = detect_format(path, params.format)
    parts = fmt.reader()(path, on_error=params.on_error)
    if not parts:
        raise InputError(f"no data found as {fmt.name}", where=str(path))
    if params.select is not None:
        if params.select not in parts:
            raise InputError(f"no part {params.select!r}; the parts are {', '.join(parts)}", where="--select")
        parts = {params.select: parts[params.select]}
    for key, ds in parts.items():
        validate(ds, dataset_kind(ds), f"{path} [{key}]", check_values=False)
    return fmt, parts


def ingest_outputs(output: str | os.PathLike, keys: list[str]) -> dict[str, Path]:
    """Where each part goes: one part -> ``output``; several -> ``<output stem>-<key>.zarr`` beside it."""
    out = Path(output)
    if len(keys) == 1:
        return {keys[0]: out}
    return {k: out.with_name(f"{out.stem}-{k}.zarr") for k in keys}


def ingest_store(
    output: str | os.PathLike, params: IngestParams, *, overwrite: bool = False, single: bool = False
) -> dict[str, Path]:
    """Ingest ``params.source`` into contract stores; returns ``{part key: store written}``.

    ``single`` (the pipeline stage): exactly one store, ``output``; several parts without ``select`` are refused.
    Every output path is checked before the first is written.
    """
    from .model import save_dataset, with_history
    from .outputs import check_output

    fmt, parts = read_parts(params)
    if single and len(parts) > 1:
        raise InputError(
            f"the source holds {len(parts)} parts ({', '.join(parts)}); choose one with select", where="params.select"
        )
    targets = ingest_outputs(output, list(parts))
    for target in targets.values():
        check_output(target, inputs=(params.source,), overwrite=overwrite)
    written: dict[str, Path] = {}
    for key, ds in parts.items():
        record = {"format": fmt.name, "source": os.fspath(params.source), "part": key, "on_error": params.on_error}
        save_dataset(with_history(ds, "ingest", record), targets[key], overwrite=overwrite, inputs=(params.source,))
        written[key] = targets[key]
    return written


def describe_parts(parts: dict[str, Any]) -> list[str]:
    """One line per part for ``--list``: key, size, and the attributes that tell parts apart."""
    lines = []
    for key, ds in parts.items():
        var = "echo" if "echo" in ds.data_vars else "slc" if "slc" in ds.data_vars else next(iter(ds.data_vars), "")
        shape = " x ".join(str(n) for n in ds[var].shape) if var else "-"
        tags = ", ".join(f"{a}={ds.attrs[a]}" for a in ("acquisition_mode", "swath", "polarisation", "signal_type")
                         if a in ds.attrs)  # fmt: skip
        skipped = len(ds.attrs.get("skipped_packets", []) or [])
        lines.append(f"{key}\t{var} {shape}\t{tags}" + (f"\t{skipped} damaged records skipped" if skipped else ""))
    return lines
