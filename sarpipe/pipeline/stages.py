"""Built-in stages. Each is thin: it reads its inputs, calls the library, writes one product to ``ctx.output``.

- ``ingest``: a real acquisition (Sentinel-1 Level-0, NISAR L0B, SAFE SLC; format detected) -> one contract store.
- ``simulate``: a simulator configuration (inline, a file, or a simulated catalog entry) -> raw Zarr.
- ``focus``: raw Zarr -> SLC Zarr (range-Doppler; ``variable: echo_clean`` focuses the simulator's ground truth).
- ``detect_rfi``: SLC (+ raw) -> RFI detection store (:mod:`sarpipe.rfi.detection`; ``rfi_image_mask``, ``rfi_pulses``).
- ``clean_rfi``: raw (+ detection) -> cleaned raw Zarr (``echo`` cleaned, plus ``rfi_pulses``/``rfi_image_mask``).
- ``export``: raw or SLC -> folder with a PNG quicklook and a GeoTIFF georeferenced by GCPs (annotation grid or orbit + ellipsoid; radar metres without a CRS for a simulated scene with no orbit).
- ``report``: interfered/cleaned/reference images (+ the simulated raw) -> folder with metrics.json, report.md,
  a comparison figure, and the point-target analysis when the scene has point targets.
- ``train_difnet``: a DIFNet training recipe (YAML) -> training folder (log, checkpoints, ``weights/``).
- ``train_scorecam``: a Score-CAM classifier training recipe (YAML) -> training folder (``weights/``).
- ``train_samsnet``: a Sams-Net echo / RFI separation training recipe (YAML) -> training folder (``weights/``).
- ``train_sr``: an SR (``--sr``) training recipe (YAML) -> training folder (``weights/``).

Each stage's parameter model and work are its operation's (the same as the command line's); library modules are
imported inside the stage functions so that listing stages stays cheap.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..errors import InputError
from .registry import InputSlot, Stage, StageContext

# Each stage's params are its operation's one parameter model, defined in the domain package (the command line is
# generated from the same model, sarpipe/cli.py); the loaders below import it only when asked for.


@functools.cache
def simulate_params() -> type[BaseModel]:
    from ..simulate.simulate_operation import SimulateParams

    return SimulateParams


@functools.cache
def ingest_params() -> type[BaseModel]:
    from ..ingest import IngestParams

    return IngestParams


@functools.cache
def focus_params() -> type[BaseModel]:
    from ..focus.focus_operation import FocusParams

    return FocusParams


@functools.cache
def detection_params() -> type[BaseModel]:
    from ..rfi.chain_io import DetectParams

    return DetectParams


@functools.cache
def clean_params() -> type[BaseModel]:
    from ..rfi.chain_io import CleanParams

    return CleanParams


@functools.cache
def export_params() -> type[BaseModel]:
    from ..export import ExportParams

    return ExportParams


@functools.cache
def report_params() -> type[BaseModel]:
    from ..report import ReportParams

    return ReportParams


@functools.cache
def train_difnet_params() -> type[BaseModel]:
    from ..models.training import TrainDIFNetParams

    return TrainDIFNetParams


@functools.cache
def train_scorecam_params() -> type[BaseModel]:
    from ..spectral.scorecam_training import TrainScoreCAMParams

    return TrainScoreCAMParams


@functools.cache
def train_samsnet_params() -> type[BaseModel]:
    from ..spectral.samsnet_training import TrainSamsNetParams

    return TrainSamsNetParams


@functools.cache
def train_sr_params() -> type[BaseModel]:
    from ..spectral.sr_training import TrainSRParams

    return TrainSRParams


# ------------------------------------------------------------------------------------------- simulate


def _simulate_check(params: Any, inputs: dict[str, str]) -> list[tuple[tuple, str]]:
    given = [
        n
        for n, v in (
            ("inputs.scene", inputs.get("scene")),
            ("params.config", params.config),
            ("params.config_file", params.config_file),
        )
        if v is not None
    ]
    if len(given) != 1:
        what = " and ".join(given) if given else "none"
        return [
            (
                (),
                f"give exactly one scene: an input 'scene' (catalog:ENTRY), params.config or params.config_file (got {what})",
            )
        ]
    if params.config_file is not None and not Path(params.config_file).is_file():
        return [(("params", "config_file"), f"missing input: no such file {params.config_file!r}")]
    return []


def _simulate_fingerprint(params: Any) -> Any:
    if params.config_file and Path(params.config_file).is_file():
        return hashlib.sha256(Path(params.config_file).read_bytes()).hexdigest()
    return None


def run_simulate(ctx: StageContext) -> None:
    """Simulate stripmap raw echoes (point targets, extended scene, noise, RFI) into a raw Zarr store."""
    from ..simulate import SimulationConfig, load_config
    from ..simulate.simulate_operation import simulate_store

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
    ds = simulate_store(cfg, ctx.output, seed=p.seed)
    ctx.log.info(
        "simulated %d pulses x %d samples (%s)", ds.sizes["azimuth"], ds.sizes["range"], ds.attrs.get("sensor", "")
    )


def _config_from_dict(data: dict, where: str) -> Any:
    from pydantic import ValidationError

    from ..simulate import SimulationConfig
    from ..yamlconf import ConfigError, dotted

    try:
        return SimulationConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            [f"{where}.{dotted(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()],
            title=f"{where}: invalid simulator configuration",
        ) from exc


# --------------------------------------------------------------------------------------------- ingest


def _ingest_check(params: Any, inputs: dict[str, str]) -> list[tuple[tuple, str]]:
    if not Path(params.source).exists():
        return [(("params", "source"), f"missing input: no such file or folder {params.source!r}")]
    return []


def _ingest_fingerprint(params: Any) -> Any:
    """Size and modification time of the source's files (hashing gigabytes of raw data would cost a read)."""
    src = Path(params.source)
    files = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src] if src.is_file() else []
    return [
        (str(p.relative_to(src)) if src.is_dir() else p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files
    ]


def run_ingest(ctx: StageContext) -> None:
    """Ingest a real acquisition into one contract store (params.select picks the part when there are several)."""
    from ..ingest import ingest_store

    written = ingest_store(ctx.output, ctx.params, single=True)  # type: ignore[arg-type]
    ctx.log.info("ingested %s (%s)", ctx.params.source, ", ".join(written))  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------- focus


def run_focus(ctx: StageContext) -> None:
    """Focus raw echoes with the range-Doppler algorithm (streaming Zarr to Zarr; corner turn persisted)."""
    from ..focus.focus_operation import focus_store

    focus_store(ctx.path("raw"), ctx.output, ctx.params)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- RFI stages


def _detection_layout(params: Any) -> str:
    """The detection product's layout version: a new layout re-runs detect_rfi."""
    from ..rfi.detection import DETECTION_LAYOUT_VERSION

    return f"rfi-detection-layout-{DETECTION_LAYOUT_VERSION}"


def run_detect_rfi(ctx: StageContext) -> None:
    """Find RFI in the focused image and the echo pulses that built the affected lines (rfi_image_mask, rfi_pulses);
    streamed, as ``sarpipe rfi detect`` (the same :func:`~sarpipe.rfi.chain_io.detect_store`)."""
    from ..rfi.chain_io import detect_store

    summary = detect_store(ctx.path("raw"), ctx.output, ctx.params, slc_path=ctx.path("slc"))  # type: ignore[arg-type]
    ctx.log.info("RFI on %d image lines, %d pulses flagged", summary["n_image_lines"], summary["n_rfi_pulses"])


def run_clean_rfi(ctx: StageContext) -> None:
    """Clean the RFI-contaminated pulses (STFT, cleanup method, ISTFT); all other pulses pass through bit for bit."""
    from ..rfi.chain_io import clean_store

    p = ctx.params
    summary = clean_store(
        ctx.path("raw"),
        ctx.output,
        p,  # type: ignore[arg-type]
        slc_path=ctx.path("slc") if ctx.has("slc") else None,
        detection_path=ctx.path("detection") if ctx.has("detection") else None,
    )
    ctx.log.info("cleaned %d pulses with %s", summary["n_rfi_pulses"], p.method)


# --------------------------------------------------------------------------------------------- export


def run_export(ctx: StageContext) -> None:
    """Export an image: PNG quicklook (multilooked dB) and GeoTIFF georeferenced by GCPs where the scene has a geolocation grid or an orbit."""
    from ..export import export_image

    export_image(
        ctx.path("image"),
        ctx.output,
        ctx.params,  # type: ignore[arg-type]
        reference=ctx.path("reference") if ctx.has("reference") else None,
        stem=ctx.step,
    )


# --------------------------------------------------------------------------------------------- report


def run_report(ctx: StageContext) -> None:
    """RFI metrics (PSNR, ME, SIR before/after, pulse recall) and point-target analysis, as JSON and markdown."""
    from ..report import IMAGE_ROLES, RAW_ROLES, write_report

    stores = {k: ctx.path(k) for k in (*IMAGE_ROLES, *RAW_ROLES) if ctx.has(k)}
    write_report(ctx.output, ctx.params, stores=stores, refs={k: v.ref for k, v in ctx.inputs.items()}, log=ctx.log)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- train


def _train_recipe_check(params: Any, inputs: dict[str, str]) -> list[tuple[tuple, str]]:
    if not Path(params.config_file).is_file():
        return [(("params", "config_file"), f"missing input: no such file {params.config_file!r}")]
    return []


def _recipe_fingerprint(params: Any) -> Any:
    path = Path(params.config_file)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def run_train_difnet(ctx: StageContext) -> None:
    """Train DIFNet from a recipe (YAML) into a folder: log.jsonl, checkpoints, and the weights in weights/."""
    from ..models.training import train_difnet

    result = train_difnet(ctx.params.config_file, ctx.output, progress=False)  # type: ignore[attr-defined]
    ctx.log.info("trained DIFNet for %d steps -> %s", result.step, result.weights)


def run_train_scorecam(ctx: StageContext) -> None:
    """Train the Score-CAM multi-label RFI-kind classifier from a recipe (YAML) into a folder; weights in weights/."""
    from ..spectral.rfi_classifier import train_scorecam

    result = train_scorecam(ctx.params.config_file, ctx.output)  # type: ignore[attr-defined]
    ctx.log.info("trained the Score-CAM classifier -> %s", result["weights"])


def run_train_samsnet(ctx: StageContext) -> None:
    """Train Sams-Net (echo / RFI separation) from a recipe (YAML) into a folder; the weights in weights/."""
    from ..spectral.samsnet_training import train_samsnet_rfi

    result = train_samsnet_rfi(ctx.params.config_file, ctx.output)  # type: ignore[attr-defined]
    ctx.log.info("trained Sams-Net -> %s", result["weights"])


def run_train_sr(ctx: StageContext) -> None:
    """Train the SR network behind ``sr`` (clean_rfi) from a recipe (YAML) into a folder; the weights in weights/."""
    from ..spectral.sr_training import train_sr

    result = train_sr(ctx.params.config_file, ctx.output)  # type: ignore[attr-defined]
    ctx.log.info("trained the SR network -> %s", result["weights"])


# --------------------------------------------------------------------------------------------- registry

_RAWISH = ("raw",)
BUILTIN_STAGES: list[Stage] = [
    Stage(
        "ingest",
        run_ingest,
        ingest_params,
        output="raw",
        help=run_ingest.__doc__ or "",
        check=_ingest_check,
        fingerprint_extra=_ingest_fingerprint,
    ),
    Stage(
        "simulate",
        run_simulate,
        simulate_params,
        inputs=(InputSlot("scene", ("scene",), required=False, help="a simulated catalog entry"),),
        output="raw",
        help=run_simulate.__doc__ or "",
        check=_simulate_check,
        fingerprint_extra=_simulate_fingerprint,
    ),
    Stage(
        "focus",
        run_focus,
        focus_params,
        inputs=(InputSlot("raw", _RAWISH),),
        output="slc",
        help=run_focus.__doc__ or "",
    ),
    Stage(
        "detect_rfi",
        run_detect_rfi,
        detection_params,
        inputs=(InputSlot("raw", _RAWISH), InputSlot("slc", ("slc",), help="the focused image of raw")),
        output="rfi",
        help=run_detect_rfi.__doc__ or "",
        fingerprint_extra=_detection_layout,
    ),
    Stage(
        "clean_rfi",
        run_clean_rfi,
        clean_params,
        inputs=(
            InputSlot("raw", _RAWISH),
            InputSlot("detection", ("rfi",), required=False, help="from detect_rfi (else detected here)"),
            InputSlot(
                "slc", ("slc",), required=False, help="focused image of raw, used to detect when no detection is given"
            ),
        ),
        output="raw",
        help=run_clean_rfi.__doc__ or "",
    ),
    Stage(
        "export",
        run_export,
        export_params,
        inputs=(
            InputSlot("image", ("slc", "raw", "zarr")),
            InputSlot("reference", ("slc", "raw", "zarr"), required=False, help="quicklook uses its dB scale"),
        ),
        output="files",
        output_suffix="",
        help=run_export.__doc__ or "",
    ),
    Stage(
        "report",
        run_report,
        report_params,
        inputs=(
            InputSlot("interfered", ("slc",), help="image before cleaning"),
            InputSlot("cleaned", ("slc",), required=False, help="image after cleaning"),
            InputSlot("compared", ("slc",), required=False, help="image after a second cleanup method, shown beside"),
            InputSlot(
                "reference",
                ("slc",),
                required=False,
                help="image focused from the clean echo (focus with variable: echo_clean)",
            ),
            InputSlot("raw", ("raw",), required=False, help="simulated raw with ground truth (rfi)"),
            InputSlot("cleaned_raw", ("raw",), required=False, help="output of clean_rfi"),
            InputSlot("compared_raw", ("raw",), required=False, help="output of the second clean_rfi"),
        ),
        output="files",
        output_suffix="",
        help=run_report.__doc__ or "",
    ),
    Stage(
        "train_difnet",
        run_train_difnet,
        train_difnet_params,
        output="files",
        output_suffix="",
        help=run_train_difnet.__doc__ or "",
        check=_train_recipe_check,
        fingerprint_extra=_recipe_fingerprint,
    ),
    Stage(
        "train_scorecam",
        run_train_scorecam,
        train_scorecam_params,
        output="files",
        output_suffix="",
        help=run_train_scorecam.__doc__ or "",
        check=_train_recipe_check,
        fingerprint_extra=_recipe_fingerprint,
    ),
    Stage(
        "train_samsnet",
        run_train_samsnet,
        train_samsnet_params,
        output="files",
        output_suffix="",
        help=run_train_samsnet.__doc__ or "",
        check=_train_recipe_check,
        fingerprint_extra=_recipe_fingerprint,
    ),
    Stage(
        "train_sr",
        run_train_sr,
        train_sr_params,
        output="files",
        output_suffix="",
        help=run_train_sr.__doc__ or "",
        check=_train_recipe_check,
        fingerprint_extra=_recipe_fingerprint,
    ),
]
