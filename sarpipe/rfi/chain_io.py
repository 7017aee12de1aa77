"""The RFI operations on Zarr stores: their parameter models (:class:`DetectParams`, :class:`CleanParams`), behind both
``sarpipe rfi detect|clean`` and the ``detect_rfi``/``clean_rfi`` pipeline stages, and the store-to-store functions
(:func:`detect_store`, :func:`clean_store`).

Both stream: detection reads the raw store and the image (given, or focused first by the streaming ``focus_zarr``
into a scratch store) a slab of lines or pulses at a time and writes the image mask block by block; the clean step
goes Zarr chunk by Zarr chunk with memory bounded by the pulse batch (:mod:`sarpipe.rfi.streaming_clean`). Outputs
are written atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import InputError

__all__ = [
    "CleanParams",
    "DetectParams",
    "check_method_options",
    "clean_store",
    "detect_store",
    "detection_summary",
    "parse_params",
]


class DetectParams(BaseModel):
    """RFI detection settings (:class:`sarpipe.rfi.clean.DetectionSettings`, same names and defaults; docs/rfi.md)."""

    model_config = ConfigDict(extra="forbid")

    image_pfa: float = Field(1e-7, gt=0, lt=1, description="false-alarm rate per image line")
    range_block: int = Field(256, ge=1, description="range cells per block of the floor statistic and the mask")
    background_quantile: float = Field(
        0.25, gt=0, lt=1, description="the floor null is fitted to the lines up to this quantile"
    )
    window_lines: int | None = Field(
        None, ge=1, description="fit the floor null over a running window of this many lines (default: all valid lines)"
    )
    min_run: int = Field(8, ge=1, description="flagged runs shorter than this many lines are dropped")
    echo_pfa: float = Field(1e-5, gt=0, lt=1, description="false-alarm rate per pulse of the echo-domain refinement")
    refine: bool = Field(True, description="keep only candidate pulses the echo-domain detector confirms")
    margin: float = Field(0.05, ge=0, description="extra aperture fraction on each side of the mapped interval")
    wrap: bool = Field(True, description="azimuth indices wrap (circular focuser)")
    close_gap: int = Field(2, ge=0, description="gaps of up to this many pulses between refined pulses are closed")
    exclude_edges: bool = Field(True, description="leave the first and last half aperture of lines out of the test")
    use_floor: bool = Field(False, description="also flag lines by the floor statistic (scene texture trips it)")
    spectral_aperture: float = Field(
        0.25, gt=0, description="line spectra are averaged over this fraction of an aperture"
    )
    tone_test: bool = Field(True, description="run the Doppler-tone test on every pulse (docs/rfi.md)")
    tone_db: float = Field(20.0, gt=0, description="smallest range-frequency x Doppler cell over its background [dB]")
    tone_block: int = Field(64, ge=16, description="pulses per block of the Doppler-tone test")

    def settings(self) -> Any:
        """As the :class:`~sarpipe.rfi.clean.DetectionSettings` dataclass the chain takes."""
        from .clean import DetectionSettings

        return DetectionSettings(**self.model_dump())


def check_method_options(method: str, options: Mapping[str, Any]) -> None:
    """Check the option names and value types of a cleanup method registered in this process, and build it once,
    before any step runs; raises ``ValueError`` with ``KEY: problem``. A lazily registered method (the learned
    ones, entry points) is left to :func:`~.methods.create_method`, which checks its options where it is built:
    building it here would load its weights and claim its device (``device=cuda`` for a cluster's GPU workers) in
    a process that may have neither, and whether it was loaded before must not change what is checked."""
    import inspect
    import typing

    from pydantic import TypeAdapter, ValidationError

    from . import methods as rm

    if not options or rm.registered_lazily(method):
        return
    factory = rm.method_factory(method)
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    params = sig.parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        bad = [k for k in options if k not in params]
        if bad:
            raise ValueError(
                f"{bad[0]}: cleanup method {method!r} has no option {', '.join(map(repr, bad))} "
                f"(its options: {', '.join(params)})"
            )
    hints = rm.parameter_hints(factory)
    for key, value in options.items():
        p = params.get(key)
        hint = hints.get(key)
        if hint is None and p is not None and p.default is not inspect.Parameter.empty and p.default is not None:
            hint = type(p.default)
        if hint is None or hint is typing.Any:
            continue
        try:
            TypeAdapter(hint).validate_python(value)
        except ValidationError:
            kind = getattr(hint, "__name__", str(hint).replace("typing.", ""))
            raise ValueError(f"{key}: expected {kind}, got {value!r}") from None
        except Exception:  # noqa: BLE001 - a type pydantic cannot check
            continue
    try:  # a loaded method is cheap to build: values it refuses are found now, not when the step runs
        factory(**rm.checked_params(factory, options, f"cleanup method {method!r}"))  # as create_method builds it
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad parameters for cleanup method {method!r}: {exc}") from None


class CleanParams(BaseModel):
    """RFI cleanup: the method, its options, the optional super-resolution wrapper, and the detection settings used
    when no detection product is given."""

    model_config = ConfigDict(extra="forbid")

    method: str = Field("notch", description="cleanup method: notch | fnotch | esf | any registered one")
    options: dict[str, Any] = Field(
        default_factory=dict, description="the method's own parameters", json_schema_extra={"cli": "--param"}
    )
    sr: float | None = Field(None, gt=1, description="wrap the method with the super-resolution model at this factor")
    detection: DetectParams = Field(
        default_factory=DetectParams, description="detection settings (when no detection input is given)"
    )
    batch_pulses: int = Field(
        256, ge=1, description="contaminated pulses cleaned together (the clean step's memory: one batch)"
    )

    @field_validator("method")
    @classmethod
    def _known(cls, v: str) -> str:
        from .methods import method_names

        names = method_names()
        if v not in names:
            raise ValueError(f"unknown cleanup method {v!r}; available: {', '.join(names)}")
        return v

    @field_validator("options")
    @classmethod
    def _options(cls, v: dict[str, Any], info) -> dict[str, Any]:
        method = info.data.get("method")
        if method is not None:
            check_method_options(method, v)
        return v


def parse_params(items: Any) -> dict[str, Any]:
    """``["pfa=1e-3", "window_bins=63"]`` -> ``{"pfa": 0.001, "window_bins": 63}`` (values read as YAML)."""
    from ..model_cli import parse_pairs

    return parse_pairs(list(items), "--param")


def _open(raw_path: str | os.PathLike, slc_path: str | os.PathLike | None):
    """Raw store and image, opened lazily (Dask) and validated (the NaN/Inf scan streams chunk by chunk)."""
    from ..model import open_dataset

    raw = open_dataset(raw_path, "raw")
    slc = open_dataset(slc_path, "slc") if slc_path is not None else None
    if slc is not None and slc["slc"].shape != raw["echo"].shape:
        raise InputError(f"the image is {slc['slc'].shape}, the echo {raw['echo'].shape}", where=os.fspath(slc_path))
    return raw, slc


def _streamed_detection(raw_path, slc_path, settings, scratch_near: str | os.PathLike | None):
    """Detection on the streamed image: the raw store and image opened lazily, read a slab of lines or pulses at a
    time (:func:`sarpipe.rfi.clean.detect`); without ``slc_path`` the image is focused first with the streaming
    ``focus_zarr`` into a scratch store beside ``scratch_near`` (removed afterwards). Memory: one slab, the
    per-line and per-pulse statistics, not the scene. Returns ``(detection, raw, slc, scratch)``; ``scratch`` (a
    TemporaryDirectory or None) must stay alive while the lazy image mask is used."""
    import tempfile

    from .clean import detect

    scratch = None
    if slc_path is None:
        import shutil

        from ..focus import focus_zarr
        from ..model import gib, open_dataset

        parent = Path(scratch_near).parent if scratch_near is not None else Path(tempfile.gettempdir())
        lazy = open_dataset(raw_path, "raw", check_values=False)
        need = 2 * int(lazy["echo"].nbytes)  # the image and focusing's corner-turned intermediate
        free = shutil.disk_usage(parent).free
        if need > free:
            sizes = " x ".join(f"{n:,}" for n in lazy["echo"].shape)
            raise InputError(
                f"holds {gib(lazy['echo'].nbytes)} ({sizes} samples); focusing it for the detection needs about "
                f"{gib(need)} of scratch disk in {parent}, more than the {gib(free)} free there: give its image "
                "with --slc",
                where=os.fspath(raw_path),
            )
        _open(raw_path, None)  # bad input is refused before focusing
        scratch = tempfile.TemporaryDirectory(prefix=".sarpipe-detect-", dir=parent)
        slc_path = Path(scratch.name) / "slc.zarr"
        focus_zarr(raw_path, slc_path)
    raw, slc = _open(raw_path, slc_path)
    return detect(raw, slc, settings), raw, slc, scratch


def _runs(flags: np.ndarray) -> list[list[int]]:
    from .clean import pulse_runs

    return [[a, b] for a, b in pulse_runs(flags)]


def detection_summary(det) -> dict[str, Any]:
    """Plain-JSON summary of an :class:`~sarpipe.rfi.clean.RFIDetection`."""
    g = det.mapping.geometry
    return {
        "rfi_pulses": _runs(det.rfi_pulses),
        "n_rfi_pulses": int(np.count_nonzero(det.rfi_pulses)),
        "candidate_pulses": _runs(det.mapping.candidates),
        "image_lines": _runs(det.image.lines),
        "n_image_lines": int(np.count_nonzero(det.image.lines)),
        "image_mask_fraction": float(np.mean(det.rfi_image_mask)),
        "aperture_pulses": g.length_pulses,
        "beam_centre_shift_pulses": g.shift_pulses,
        "aperture_source": g.source,
        "line_threshold_z": det.image.threshold,
        "max_line_z": float(np.nanmax(det.image.z)) if np.isfinite(det.image.z).any() else None,
    }


def detect_store(
    raw_path: str | os.PathLike,
    output: str | os.PathLike | None = None,
    params: DetectParams | None = None,
    *,
    slc_path: str | os.PathLike | None = None,
    json_path: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Detect RFI in a raw store (its image focused here unless ``slc_path``); write the detection product to
    ``output`` (:mod:`sarpipe.rfi.detection`) and the summary as JSON to ``json_path`` when given. Returns the summary."""
    from ..atomic import atomic_path
    from ..outputs import PRODUCT_ATTR, check_output
    from .detection import save_detection

    params = params or DetectParams()
    inputs = tuple(p for p in (raw_path, slc_path) if p is not None)
    # refuse a bad output before the detection runs, not after
    if output is not None:
        check_output(output, inputs=inputs, overwrite=overwrite)
    if json_path is not None:
        check_output(json_path, inputs=inputs, overwrite=overwrite, option="--json")
    det, raw, slc, scratch = _streamed_detection(raw_path, slc_path, params.settings(), output or json_path)
    try:
        if output is not None:
            save_detection(
                det,
                output,
                attrs=raw.attrs,
                coords=slc.coords if slc_path is not None else raw.coords,
                params=params.model_dump(),
                overwrite=overwrite,
                inputs=inputs,
            )
        summary = detection_summary(det)
    finally:
        if scratch is not None:
            scratch.cleanup()
    if json_path is not None:
        with atomic_path(json_path, overwrite=overwrite, inputs=inputs, option="--json") as tmp:
            Path(tmp).write_text(json.dumps({PRODUCT_ATTR: "rfi-detection-summary", **summary}, indent=2) + "\n")
    return summary


def clean_store(
    raw_path: str | os.PathLike,
    out_path: str | os.PathLike,
    params: CleanParams | None = None,
    *,
    slc_path: str | os.PathLike | None = None,
    detection_path: str | os.PathLike | None = None,
    image_path: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run the chain on a raw store and write the cleaned raw store (``echo``, ``rfi_pulses``, ``rfi_image_mask``).

    The RFI is taken from ``detection_path`` (a detection product) when given, else detected with
    ``params.detection`` (in the image ``slc_path``, else in the image focused here). With ``image_path`` the
    re-focused cleaned image is written too. Returns the detection summary.
    """
    from ..outputs import check_output
    from .detection import open_detection_lazily
    from .streaming_clean import clean_zarr

    params = params or CleanParams()
    inputs = tuple(p for p in (raw_path, slc_path, detection_path) if p is not None)
    check_output(out_path, inputs=inputs, overwrite=overwrite)  # before any work
    if image_path is not None:
        check_output(image_path, inputs=inputs + (out_path,), overwrite=overwrite, option="--image")
    if detection_path is not None:
        detection, mask = open_detection_lazily(detection_path)  # the image mask stays on disk
        record = None
    scratch = None
    if detection_path is None:
        detection, _, _, scratch = _streamed_detection(raw_path, slc_path, params.detection.settings(), out_path)
        mask, record = detection.rfi_image_mask, params.detection.settings().as_dict()
    try:
        clean_zarr(
            raw_path,
            out_path,
            detection if detection_path is None else detection_path,
            method=params.method,
            params=params.options,
            sr=params.sr,
            detection_record=record,
            batch_pulses=params.batch_pulses,
            overwrite=overwrite,
            inputs=inputs,
        )
        summary = detection_summary(detection)
        summary["image_mask_fraction"] = float(np.asarray(mask.mean()))  # the lazy mask: a chunked reduction
    finally:
        if scratch is not None:
            scratch.cleanup()
    if image_path is not None:
        from ..focus import focus_zarr

        focus_zarr(out_path, image_path, overwrite=overwrite)
    return summary
