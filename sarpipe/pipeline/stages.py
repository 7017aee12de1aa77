"""Built-in stages. Each is thin: it reads its inputs, calls the library, writes one product to ``ctx.output``.

- ``simulate``: a simulator configuration (inline, a file, or a simulated catalog entry) -> raw Zarr.
- ``focus``: raw Zarr -> SLC Zarr (range-Doppler; ``variable: echo_clean`` focuses the simulator's ground truth).
- ``detect_rfi``: SLC (+ raw) -> RFI detection store: ``rfi_image_mask`` and ``rfi_pulses``.
- ``clean_rfi``: raw (+ detection) -> cleaned raw Zarr (``echo`` cleaned, plus ``rfi_pulses``/``rfi_image_mask``).
- ``export``: raw or SLC -> folder with a PNG quicklook and a GeoTIFF in radar geometry (not georeferenced).
- ``report``: interfered/cleaned/reference images (+ the simulated raw) -> folder with metrics.json, report.md,
  a comparison figure, and the point-target analysis when the scene has point targets.

Library modules are imported inside the stage functions so that listing stages stays cheap.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from ..errors import InputError
from .registry import InputSlot, LocalPath, Stage, StageContext


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------------------- simulate


@functools.cache
def simulate_params() -> type[BaseModel]:
    """Params of ``simulate``; ``config`` is the simulator's own model, so its errors carry pipeline YAML lines."""
    try:
        from ..simulate import SimulationConfig

        config_type: Any = Optional[SimulationConfig]
    except ImportError:  # pragma: no cover - simulator not installed
        config_type = Optional[dict[str, Any]]
    return create_model(
        "SimulateParams",
        __base__=_Params,
        config=(config_type, Field(None, description="inline simulator configuration: sensor, scene, targets, noise, rfi, seed, ...")),
        config_file=(Optional[LocalPath], Field(None, description="simulator YAML file (instead of config or a scene input)")),
        seed=(Optional[int], Field(None, description="overrides the configuration's seed")),
        __validators__={"_files": model_validator(mode="after")(_absolute_scene_files)},
    )


def _absolute_scene_files(params: Any) -> Any:
    """Relative files inside an inline simulator config (extended.file) resolve against the working folder now,
    not on whichever worker runs the step."""
    ext = getattr(params.config, "extended", None) if params.config is not None and not isinstance(params.config, dict) else None
    if ext is not None and not Path(ext.file).is_absolute():
        ext.file = Path(ext.file).expanduser().absolute()
    return params


def _simulate_check(params: Any, inputs: dict[str, str]) -> list[tuple[tuple, str]]:
    given = [n for n, v in (("inputs.scene", inputs.get("scene")), ("params.config", params.config), ("params.config_file", params.config_file)) if v is not None]
    if len(given) != 1:
        what = " and ".join(given) if given else "none"
        return [((), f"give exactly one scene: an input 'scene' (catalog:ENTRY), params.config or params.config_file (got {what})")]
    if params.config_file is not None and not Path(params.config_file).is_file():
        return [(("params", "config_file"), f"missing input: no such file {params.config_file!r}")]
    return []


def _simulate_fingerprint(params: Any) -> Any:
    if params.config_file and Path(params.config_file).is_file():
        return hashlib.sha256(Path(params.config_file).read_bytes()).hexdigest()
    return None


def run_simulate(ctx: StageContext) -> None:
    """Simulate stripmap raw echoes (point targets, extended scene, noise, RFI) into a raw Zarr store."""
    from ..model import save_dataset
    from ..simulate import SimulationConfig, load_config, simulate

    p = ctx.params
    if ctx.has("scene"):
        entry = ctx.inputs["scene"].entry or {}
        if entry.get("config_file"):
            cfg = load_config(entry["config_file"])
        elif entry.get("config") is not None:
            cfg = _config_from_dict(entry["config"], f"catalog entry {entry.get('name')}")
            if entry.get("catalog_root"):
                cfg._base_dir = Path(entry["catalog_root"])
        else:
            raise InputError(f"input 'scene' ({ctx.inputs['scene'].ref}) is not a simulated scene")
    elif p.config_file:
        cfg = load_config(p.config_file)
    else:
        cfg = p.config if isinstance(p.config, SimulationConfig) else _config_from_dict(p.config, "params.config")
    if p.seed is not None:
        cfg = cfg.model_copy(update={"seed": p.seed})
    ds = simulate(cfg)
    ctx.log.info("simulated %d pulses x %d samples (%s)", ds.sizes["azimuth"], ds.sizes["range"], ds.attrs.get("sensor", ""))
    save_dataset(ds, ctx.output)


def _config_from_dict(data: dict, where: str) -> Any:
    from pydantic import ValidationError

    from ..simulate import SimulationConfig
    from ..yamlconf import ConfigError, dotted

    try:
        return SimulationConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([f"{where}.{dotted(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()],
                          title=f"{where}: invalid simulator configuration") from exc


# ---------------------------------------------------------------------------------------------- focus

_WINDOW = re.compile(r"^(rect|hamming:[0-9.eE+-]+|kaiser:[0-9.eE+-]+)$")


def _check_window(v: str) -> str:
    try:
        from ..focus import parse_window
    except ImportError:  # pragma: no cover
        if not _WINDOW.match(v):
            raise ValueError("expected rect, hamming:ALPHA or kaiser:BETA") from None
        return v
    try:
        parse_window(v)
    except InputError as exc:
        raise ValueError(str(exc)) from None
    return v


class FocusParams(_Params):
    range_window: str = Field("rect", description="rect | hamming:ALPHA | kaiser:BETA")
    azimuth_window: str = Field("rect", description="rect | hamming:ALPHA | kaiser:BETA")
    doppler_centroid: Optional[float] = Field(None, description="Hz; default: the raw data's attribute, else estimated")
    variable: Literal["echo", "echo_clean", "rfi"] = Field(
        "echo", description="raw variable to focus: echo, or the simulator's ground truth echo_clean / rfi")

    _windows = field_validator("range_window", "azimuth_window")(classmethod(lambda cls, v: _check_window(v)))


def run_focus(ctx: StageContext) -> None:
    """Focus raw echoes with the range-Doppler algorithm (streaming Zarr to Zarr; corner turn persisted)."""
    p: FocusParams = ctx.params  # type: ignore[assignment]
    raw = ctx.path("raw")
    kwargs = dict(range_window=p.range_window, azimuth_window=p.azimuth_window, doppler_centroid=p.doppler_centroid)
    if p.variable == "echo":
        from ..focus import focus_zarr

        focus_zarr(raw, ctx.output, **kwargs)
        return
    # focusing a ground-truth component: swap it in as 'echo' (in memory; simulated scenes are small)
    from ..focus import focus
    from ..model import open_raw, save_dataset

    ds = open_raw(raw)
    if p.variable not in ds.data_vars:
        raise InputError(f"no variable {p.variable!r} to focus (a simulated scene has echo_clean and, with RFI, rfi)", where=str(raw))
    swapped = ds[[p.variable]].rename({p.variable: "echo"}).load()
    slc = focus(swapped, **kwargs)
    slc.attrs["focused_variable"] = p.variable
    save_dataset(slc, ctx.output)


# ----------------------------------------------------------------------------------------- RFI stages


def _rfi_methods() -> list[str]:
    from ..rfi.methods import method_names

    return list(method_names())


@functools.cache
def detection_params() -> type[BaseModel]:
    """Pydantic mirror of ``sarpipe.rfi.clean.DetectionSettings`` (same names and defaults, checked types)."""
    import dataclasses
    import typing

    from ..rfi.clean import DetectionSettings

    hints = typing.get_type_hints(DetectionSettings)
    fields = {f.name: (hints[f.name], Field(f.default)) for f in dataclasses.fields(DetectionSettings)}
    return create_model("DetectionParams", __base__=_Params,
                        __doc__="Detection settings (sarpipe.rfi.clean.DetectionSettings; see docs/rfi.md).", **fields)


def _settings(params: BaseModel) -> Any:
    from ..rfi.clean import DetectionSettings

    return DetectionSettings(**params.model_dump())


def _pack(obj: Any, prefix: str, n_az: int, n_rg: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """A detection dataclass as (variables, attrs, layout): arrays become variables, the rest attrs."""
    import dataclasses

    import numpy as np

    variables, attrs, layout = {}, {}, {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if isinstance(v, np.ndarray):
            if v.shape == (n_az, n_rg):
                dims: tuple[str, ...] = ("azimuth", "range")
            elif v.ndim == 1 and len(v) in (n_az, n_rg):
                dims = ("azimuth",) if len(v) == n_az else ("range",)
            else:
                dims = tuple(f"{key}_{i}" for i in range(v.ndim))
            variables[key] = (dims, v)
            layout[f.name] = "variable"
        elif dataclasses.is_dataclass(v):
            attrs[key] = dataclasses.asdict(v)
            layout[f.name] = f"dataclass:{type(v).__module__}:{type(v).__qualname__}"
        else:
            attrs[key] = v
            layout[f.name] = "attr"
    return variables, attrs, layout


def _unpack(cls: type, ds: Any, prefix: str, layout: dict[str, str]) -> Any:
    import dataclasses
    import importlib

    import numpy as np

    kwargs = {}
    for f in dataclasses.fields(cls):
        kind = layout.get(f.name)
        key = f"{prefix}{f.name}"
        if kind is None:
            raise InputError(f"detection store lacks {key!r} (written by another sarpipe version); rerun the detect_rfi step")
        if kind == "variable":
            kwargs[f.name] = np.asarray(ds[key].values)
        elif kind.startswith("dataclass:"):
            _, mod, name = kind.split(":")
            kwargs[f.name] = getattr(importlib.import_module(mod), name)(**ds.attrs[key])
        else:
            kwargs[f.name] = ds.attrs[key]
    return cls(**kwargs)


def _detection_schema() -> list[str]:
    """Field names of the detection result classes: a change re-runs detect_rfi (its stored layout changes)."""
    import dataclasses

    from ..rfi.detect import ImageDetection
    from ..rfi.pulses import ApertureGeometry, PulseMapping

    return [f"{c.__name__}.{f.name}" for c in (ImageDetection, PulseMapping, ApertureGeometry) for f in dataclasses.fields(c)]


def run_detect_rfi(ctx: StageContext) -> None:
    """Find RFI in the focused image and the echo pulses that built the affected lines (rfi_image_mask, rfi_pulses)."""
    import numpy as np
    import xarray as xr

    from ..model import DIMS, load_dataset, save_dataset, with_history
    from ..rfi.clean import detect

    raw, slc = load_dataset(ctx.path("raw"), "raw"), load_dataset(ctx.path("slc"), "slc")
    det = detect(raw, slc, _settings(ctx.params))
    n_az, n_rg = raw["echo"].shape
    iv, ia, il = _pack(det.image, "image_", n_az, n_rg)
    mv, ma, ml = _pack(det.mapping, "mapping_", n_az, n_rg)
    ds = xr.Dataset(
        {"rfi_image_mask": (DIMS, np.asarray(det.rfi_image_mask, bool)), "rfi_pulses": (("azimuth",), np.asarray(det.rfi_pulses, bool)),
         **iv, **mv},
        coords={k: slc.coords[k] for k in ("azimuth_time", "slant_range")},
        attrs={**raw.attrs, **ia, **ma, "rfi_detection_layout": {"image": il, "mapping": ml}},
    )
    ctx.log.info("RFI on %d image lines, %d pulses flagged", int(np.count_nonzero(det.image.lines)), int(np.count_nonzero(det.rfi_pulses)))
    save_dataset(with_history(ds, "rfi_detect", ctx.params.model_dump()), ctx.output)


def detection_from_store(ds: Any) -> Any:
    """Rebuild ``sarpipe.rfi.clean.RFIDetection`` from a ``detect_rfi`` output store."""
    from ..rfi.clean import RFIDetection
    from ..rfi.detect import ImageDetection
    from ..rfi.pulses import PulseMapping

    layout = ds.attrs.get("rfi_detection_layout")
    if not isinstance(layout, dict):
        raise InputError("not a detect_rfi output (no 'rfi_detection_layout' attribute)")
    return RFIDetection(_unpack(ImageDetection, ds, "image_", layout["image"]), _unpack(PulseMapping, ds, "mapping_", layout["mapping"]), None)


@functools.cache
def clean_params() -> type[BaseModel]:
    def _known(v: str) -> str:
        names = _rfi_methods()
        if v not in names:
            raise ValueError(f"unknown cleanup method {v!r}; available: {', '.join(names)}")
        return v

    def _options(m: Any) -> Any:
        from ..rfi import methods as rm

        rm._builtin()
        factory = rm._METHODS.get(m.method)  # loaded methods: check option names now; lazy ones when they run
        if factory is not None and m.options:
            import inspect

            try:
                sig = inspect.signature(factory)
            except (TypeError, ValueError):
                return m
            if not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
                bad = [k for k in m.options if k not in sig.parameters]
                if bad:
                    raise ValueError(f"cleanup method {m.method!r} has no option {', '.join(map(repr, bad))} "
                                     f"(its options: {', '.join(sig.parameters)})")
        return m

    return create_model(
        "CleanParams", __base__=_Params,
        method=(str, Field("notch", description=f"cleanup method: {', '.join(_rfi_methods())} (and any registered later)")),
        options=(dict[str, Any], Field(default_factory=dict, description="the method's own parameters")),
        sr=(Optional[float], Field(None, gt=1, description="wrap the method with the super-resolution model at this factor")),
        detection=(detection_params(), Field(default_factory=detection_params(), description="detection settings (when no detection input is given)")),
        __validators__={"_method": field_validator("method")(classmethod(lambda cls, v: _known(v))),
                        "_opts": model_validator(mode="after")(_options)},
    )


def run_clean_rfi(ctx: StageContext) -> None:
    """Clean the RFI-contaminated pulses (STFT, cleanup method, ISTFT); all other pulses pass through bit for bit."""
    import xarray as xr

    from ..model import load_dataset, save_dataset
    from ..rfi.clean import clean

    p = ctx.params
    raw = load_dataset(ctx.path("raw"), "raw")
    detection = detection_from_store(xr.open_zarr(ctx.path("detection"), consolidated=False).load()) if ctx.has("detection") else None
    slc = load_dataset(ctx.path("slc"), "slc") if ctx.has("slc") and detection is None else None
    res = clean(raw, p.method, params=p.options, sr=p.sr, slc=slc, detection=detection, settings=_settings(p.detection))
    ctx.log.info("cleaned %d pulses with %s", int(res.detection.rfi_pulses.sum()), p.method)
    save_dataset(res.raw, ctx.output)


# --------------------------------------------------------------------------------------------- export


class ExportParams(_Params):
    variable: Optional[str] = Field(None, description="variable to export (default: slc, else echo)")
    png: bool = Field(True, description="write a PNG quicklook")
    geotiff: Literal["none", "amplitude", "db", "complex"] = Field(
        "amplitude", description="GeoTIFF in radar geometry (not georeferenced): amplitude, db, complex, or none")
    max_size: int = Field(1024, ge=16, description="quicklook: longest side in pixels")
    dynamic_range_db: float = Field(50.0, gt=0, description="quicklook: dB range below the top value shown")
    square_pixels: bool = Field(True, description="quicklook: multilook so pixels are roughly square on the ground")
    colormap: str = Field("gray", description="quicklook: gray or a matplotlib colormap name")
    name: Optional[str] = Field(None, description="file name stem (default: the step name)")


def run_export(ctx: StageContext) -> None:
    """Export an image: PNG quicklook (multilooked dB) and GeoTIFF in radar geometry (no georeferencing)."""
    import xarray as xr

    from ..export import image_variable, multilook_db, top_db, write_geotiff, write_quicklook

    p: ExportParams = ctx.params  # type: ignore[assignment]
    ds = xr.open_zarr(ctx.path("image"), consolidated=False)
    var = image_variable(ds, p.variable)
    stem = p.name or ctx.step
    ctx.output.mkdir(parents=True)
    info: dict[str, Any] = {"variable": var, "geometry": "radar (rows: azimuth, columns: slant range); not georeferenced"}
    if p.png:
        top = None
        if ctx.has("reference"):
            ref = xr.open_zarr(ctx.path("reference"), consolidated=False)
            top = top_db(multilook_db(ref, image_variable(ref, p.variable if p.variable in ref.data_vars else None),
                                      max_size=p.max_size, square_pixels=p.square_pixels))
        path, used = write_quicklook(ds, ctx.output / f"{stem}.png", var, max_size=p.max_size, dynamic_range_db=p.dynamic_range_db,
                                     top=top, square_pixels=p.square_pixels, colormap=p.colormap)
        info["png"] = {"file": path.name, "top_db": used, "dynamic_range_db": p.dynamic_range_db}
    if p.geotiff != "none":
        path = write_geotiff(ds, ctx.output / f"{stem}.tif", var, mode=p.geotiff)
        info["geotiff"] = {"file": path.name, "values": p.geotiff}
    (ctx.output / "export.json").write_text(json.dumps(info, indent=1) + "\n")


# --------------------------------------------------------------------------------------------- report


class ReportParams(_Params):
    point_targets: list[Literal["interfered", "cleaned", "reference"]] = Field(
        ["cleaned"], description="images whose simulated point targets are analysed (IRW, PSLR, ISLR, position vs. theory)")
    figure: bool = Field(True, description="write comparison.png (reference / interfered / cleaned, one dB scale)")
    dynamic_range_db: float = Field(50.0, gt=0, description="figure: dB range shown")
    max_size: int = Field(768, ge=16, description="figure: longest side of each panel in pixels")


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def run_report(ctx: StageContext) -> None:
    """RFI metrics (PSNR, ME, SIR before/after, pulse recall) and point-target analysis, as JSON and markdown."""
    import numpy as np
    import xarray as xr

    from ..rfi import metrics as m

    p: ReportParams = ctx.params  # type: ignore[assignment]
    images = {k: xr.open_zarr(ctx.path(k), consolidated=False).load() for k in ("interfered", "cleaned", "reference") if ctx.has(k)}
    raws = {k: xr.open_zarr(ctx.path(k), consolidated=False).load() for k in ("raw", "cleaned_raw") if ctx.has(k)}
    result: dict[str, Any] = {"inputs": {k: v.ref for k, v in ctx.inputs.items()}}
    amp = {k: np.asarray(v["slc"].values) for k, v in images.items()}
    if "reference" in amp:
        ref = amp["reference"]
        for k in ("interfered", "cleaned"):
            if k in amp:
                result[f"psnr_{k}_db"] = _finite(m.psnr(amp[k], ref))
                result[f"me_{k}"] = _finite(m.mean_entropy(amp[k], ref))
        result["me_reference"] = _finite(m.mean_entropy(ref, ref))
    raw = raws.get("raw")
    if raw is not None and "rfi" in raw.data_vars:
        rfi = np.asarray(raw["rfi"].values)
        echo = np.asarray(raw["echo"].values)
        signal = echo - rfi
        truth = np.any(rfi != 0, axis=1)
        result["contaminated_pulses"] = int(truth.sum())
        if truth.any():
            result["sir_before_db"] = _finite(m.sir_db(signal[truth], rfi[truth]))
        cleaned = raws.get("cleaned_raw")
        if cleaned is not None:
            after = np.asarray(cleaned["echo"].values)
            if truth.any():
                result["sir_after_db"] = _finite(m.sir_db(signal[truth], after[truth] - signal[truth]))
            if "rfi_pulses" in cleaned.data_vars:
                flagged = np.asarray(cleaned["rfi_pulses"].values, bool)
                result["pulse_recall"] = _finite(m.pulse_recall(flagged, truth))
                result["pulse_extra_fraction"] = _finite(m.pulse_extra_fraction(flagged, truth))
                result["cleaned_pulses"] = int(flagged.sum())
    ctx.output.mkdir(parents=True)
    chosen = [k for k in p.point_targets if k in images and images[k].attrs.get("point_targets")]
    if chosen:
        from ..quality import point_target_report

        result["point_targets"] = {k: point_target_report(images[k], out_dir=ctx.output / f"point_targets_{k}") for k in chosen}
    if p.figure and images:
        _comparison_figure(images, ctx.output / "comparison.png", p)
        result["figure"] = "comparison.png"
    (ctx.output / "metrics.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    (ctx.output / "report.md").write_text(_report_markdown(result))
    for key in ("psnr_interfered_db", "psnr_cleaned_db", "sir_before_db", "sir_after_db"):
        if key in result:
            ctx.log.info("%s = %s", key, result[key])


def _comparison_figure(images: dict[str, Any], path: Path, p: ReportParams) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..export import multilook_db, top_db

    order = [k for k in ("reference", "interfered", "cleaned") if k in images]
    dbs = {k: multilook_db(images[k], "slc", max_size=p.max_size) for k in order}
    top = top_db(dbs[order[0]])
    fig = Figure(figsize=(4.0 * len(order) + 1.0, 5.0), layout="constrained")
    FigureCanvasAgg(fig)
    titles = {"reference": "clean echo focused (truth)", "interfered": "interfered", "cleaned": "cleaned"}
    axes = fig.subplots(1, len(order), sharex=True, sharey=True, squeeze=False)[0]
    for ax, k in zip(axes, order):
        ds = images[k]
        rg = ds["slant_range"].values / 1e3
        az = ds["azimuth_time"].values
        im = ax.imshow(dbs[k], cmap="gray", vmin=top - p.dynamic_range_db, vmax=top, aspect="auto", interpolation="nearest",
                       extent=(rg[0], rg[-1], az[-1], az[0]))
        ax.set_title(titles[k])
        ax.set_xlabel("slant range [km]")
    axes[0].set_ylabel("azimuth time [s]")
    fig.colorbar(im, ax=list(axes), label="intensity [dB], one scale for all", shrink=0.9)
    fig.savefig(path, dpi=100, format="png")  # into the step's staged output folder: published whole by the runner


def _report_markdown(r: dict[str, Any]) -> str:
    def f(key: str, spec: str = ".2f") -> str:
        v = r.get(key)
        return "n/a" if v is None else format(v, spec)

    lines = ["# sarpipe run report", ""]
    if "psnr_interfered_db" in r or "psnr_cleaned_db" in r:
        lines += ["| metric | interfered | cleaned |", "|---|---|---|",
                  f"| PSNR [dB] (vs. image of the clean echo) | {f('psnr_interfered_db')} | {f('psnr_cleaned_db')} |",
                  f"| ME (lower is better; truth {f('me_reference', '.4g')}) | {f('me_interfered', '.4g')} | {f('me_cleaned', '.4g')} |",
                  f"| SIR [dB] over contaminated pulses | {f('sir_before_db')} | {f('sir_after_db')} |", ""]
    if "pulse_recall" in r:
        lines += [f"Contaminated pulses (truth): {r.get('contaminated_pulses')}; cleaned: {r.get('cleaned_pulses')}; "
                  f"recall {f('pulse_recall')}, extra {f('pulse_extra_fraction')} (as a fraction of the contaminated).", ""]
    for k, rows in (r.get("point_targets") or {}).items():
        lines += [f"## Point targets, {k} image", "", f"See point_targets_{k}/point_targets.md (measured / theory).", ""]
        for row in rows:
            lines.append(f"- target {row['target']}: range IRW {row['range_irw_m']:.3f} m (theory {row['range_irw_theory_m']:.3f}), "
                         f"PSLR {row['range_pslr_db']:.2f} dB; azimuth IRW {row['azimuth_irw_m']:.3f} m (theory "
                         f"{row['azimuth_irw_theory_m']:.3f}), PSLR {row['azimuth_pslr_db']:.2f} dB")
        lines.append("")
    if r.get("figure"):
        lines += ["![comparison](comparison.png)", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- registry

_RAWISH = ("raw",)
BUILTIN_STAGES: list[Stage] = [
    Stage("simulate", run_simulate, simulate_params, inputs=(InputSlot("scene", ("scene",), required=False, help="a simulated catalog entry"),),
          output="raw", help=run_simulate.__doc__ or "", check=_simulate_check, fingerprint_extra=_simulate_fingerprint),
    Stage("focus", run_focus, FocusParams, inputs=(InputSlot("raw", _RAWISH),), output="slc", help=run_focus.__doc__ or ""),
    Stage("detect_rfi", run_detect_rfi, detection_params,
          inputs=(InputSlot("raw", _RAWISH), InputSlot("slc", ("slc",), help="the focused image of raw")),
          output="rfi", help=run_detect_rfi.__doc__ or "", fingerprint_extra=lambda params: _detection_schema()),
    Stage("clean_rfi", run_clean_rfi, clean_params,
          inputs=(InputSlot("raw", _RAWISH),
                  InputSlot("detection", ("rfi",), required=False, help="from detect_rfi (else detected here)"),
                  InputSlot("slc", ("slc",), required=False, help="focused image of raw, used to detect when no detection is given")),
          output="raw", help=run_clean_rfi.__doc__ or ""),
    Stage("export", run_export, ExportParams,
          inputs=(InputSlot("image", ("slc", "raw", "zarr")), InputSlot("reference", ("slc", "raw", "zarr"), required=False, help="quicklook uses its dB scale")),
          output="files", output_suffix="", help=run_export.__doc__ or ""),
    Stage("report", run_report, ReportParams,
          inputs=(InputSlot("interfered", ("slc",), help="image before cleaning"),
                  InputSlot("cleaned", ("slc",), required=False, help="image after cleaning"),
                  InputSlot("reference", ("slc",), required=False, help="image focused from the clean echo (focus with variable: echo_clean)"),
                  InputSlot("raw", ("raw",), required=False, help="simulated raw with ground truth (rfi)"),
                  InputSlot("cleaned_raw", ("raw",), required=False, help="output of clean_rfi")),
          output="files", output_suffix="", help=run_report.__doc__ or ""),
]
