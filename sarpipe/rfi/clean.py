"""The RFI chain on datasets: detect in the image -> map to pulses -> STFT -> cleanup method -> subtract -> ISTFT ->
replace only those pulses -> (re-image).

``detect(raw, slc)`` returns where RFI is (``rfi_image_mask`` in the image, ``rfi_pulses`` in the echo);
``clean(raw, method)`` runs the whole chain and returns the cleaned raw dataset with ``rfi_pulses`` and
``rfi_image_mask`` written beside ``echo`` (docs/design.md section 2). Pulses not flagged are passed through bit for
bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from ..model import DIMS, RECORDS_ATTR, check_image_of, processing_records, validate, with_history
from ..sensor import SensorParams
from .detect import ImageDetection, detect_image, image_chunk_lines, line_mask
from .doppler_detect import ToneDetection, doppler_tone_pulses
from .echo_detect import EchoDetection, detect_echo
from .methods import CleanupMethod, MethodContext, create_method
from .metrics import estimate_mask
from .pulses import (
    PulseMapping,
    aperture_geometry,
    map_lines_to_pulses,
    map_pulses_to_lines,
    map_range_to_samples,
    processed_bandwidth,
    pulse_rfi_to_clutter,
    pulse_runs,
    refine_pulses,
)
from .stft import STFTParams, istft, stft

__all__ = ["DetectionSettings", "RFIDetection", "detect", "clean_pulses", "CleanResult", "clean", "pulse_runs"]


@dataclass(frozen=True)
class DetectionSettings:
    """Knobs of :func:`detect`. ``image_pfa``: false-alarm rate per image line; ``echo_pfa``: per pulse (refinement);
    ``refine``: keep only candidate pulses the echo-domain detector confirms; ``margin``: extra aperture fraction
    on each side of the mapped interval; ``wrap``: azimuth indices wrap (circular focuser);
    ``exclude_edges``: leave the first and last half aperture of lines out of the image test (a circular focuser
    mixes partial apertures of both scene ends there)."""

    image_pfa: float = 1e-7
    range_block: int = 256
    background_quantile: float = 0.25
    window_lines: int | None = None
    min_run: int = 8
    echo_pfa: float = 1e-5
    refine: bool = True
    margin: float = 0.05
    wrap: bool = True
    close_gap: int = 2
    exclude_edges: bool = True
    use_floor: bool = False
    #: the line spectra are averaged over this fraction of a synthetic aperture of lines (focused RFI spans one)
    spectral_aperture: float = 0.25
    #: the Doppler-tone test on every pulse (:mod:`sarpipe.rfi.doppler_detect`), its threshold [dB] and block [pulses]
    tone_test: bool = True
    tone_db: float = 20.0
    tone_block: int = 64

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class RFIDetection:
    """Where the RFI is: ``image`` (line flags and ``rfi_image_mask``), ``mapping`` (``rfi_pulses``, candidates,
    fast-time samples, aperture geometry) and the echo-domain check (None when not refined)."""

    image: ImageDetection
    mapping: PulseMapping
    echo: EchoDetection | None
    tones: ToneDetection | None = None

    @property
    def rfi_pulses(self) -> np.ndarray:
        return self.mapping.pulses

    @property
    def rfi_image_mask(self) -> np.ndarray:
        return self.image.mask


def detect(
    raw: xr.Dataset, slc: xr.Dataset | None = None, settings: DetectionSettings = DetectionSettings()
) -> RFIDetection:
    """Detect RFI in the focused image and map it back to the echo pulses.

    ``slc``: the focused image of ``raw`` (focused here, in memory, when None). Its attrs (Doppler centroid, the
    ``focus`` record's processed bandwidth) set the aperture geometry. Datasets opened lazily (Dask) are read a
    slab of lines or pulses at a time and the image mask stays lazy (:func:`sarpipe.rfi.chain_io.detect_store`);
    the flags are the same as from the loaded datasets.
    """
    if slc is None:
        from ..focus import focus

        slc = focus(raw)
    else:
        check_image_of(raw, slc)
    if "slc" not in slc.data_vars:
        raise InputError("no variable 'slc' in the focused image", where="variable 'slc'")
    if slc["slc"].shape != raw["echo"].shape:
        raise InputError(
            f"image shape {slc['slc'].shape} differs from the echo's {raw['echo'].shape}", where="variable 'slc'"
        )
    img = slc["slc"].data  # numpy, or Dask for a store opened lazily (streamed detection, read in slabs)
    attrs = dict(raw.attrs)
    attrs.update({k: slc.attrs[k] for k in ("doppler_centroid",) if k in slc.attrs})
    attrs[RECORDS_ATTR] = processing_records(slc.attrs)
    sensor = SensorParams.from_attrs(attrs)
    bandwidth = processed_bandwidth(attrs)
    ranges = np.asarray(slc["slant_range"].values)
    far = aperture_geometry(sensor, float(ranges[-1]), bandwidth)
    n_az = img.shape[0]
    valid = np.ones(n_az, bool)
    edge = int(np.ceil(far.length_pulses / 2)) if settings.exclude_edges else 0
    if edge and n_az - 2 * edge >= 16:
        valid[:edge] = valid[n_az - edge :] = False
    det = detect_image(
        img,
        pfa=settings.image_pfa,
        range_block=settings.range_block,
        background_quantile=settings.background_quantile,
        window_lines=settings.window_lines,
        min_run=settings.min_run,
        valid_lines=valid,
        sensor=sensor,
        use_floor=settings.use_floor,
        spectral_lines=max(4, int(settings.spectral_aperture * far.length_pulses)),
    )
    cols = det.range_cells if det.range_cells is not None else np.asarray(det.mask).any(axis=0)
    r0 = float(ranges[cols].max()) if cols.any() else float(ranges[-1])
    geom = aperture_geometry(sensor, r0, bandwidth)
    # the untested lines at the scene ends may hold RFI too: once any line is flagged, their pulses are candidates
    # as well (refined like the others), or RFI that runs into a scene end is cut short
    lines = det.lines | ~valid if det.lines.any() else det.lines
    candidates = map_lines_to_pulses(lines, geom, margin=settings.margin, wrap=settings.wrap)
    echo_det = None
    pulses = candidates
    if settings.refine and candidates.any():
        echo_det = detect_echo(
            raw["echo"].data,
            rows=candidates,
            reference=~candidates,
            pfa=settings.echo_pfa,
            power_window=int(geom.length_pulses / 2) | 1,
            sensor=sensor,
        )
        pulses = refine_pulses(candidates, echo_det.pulses, close_gap=settings.close_gap)
    # the Doppler-tone test reads every pulse, image or not: RFI under the clutter's own spectral peaks pulse by
    # pulse, or too weak to flag an image line, still adds up in one range-frequency x Doppler cell over a block
    tones = None
    if settings.tone_test:
        tones = doppler_tone_pulses(raw["echo"].data, sensor, block=settings.tone_block, tone_db=settings.tone_db)
        pulses = pulses | tones.pulses
        candidates = candidates | tones.pulses
    samples = map_range_to_samples(cols, geom)
    mapping = PulseMapping(
        pulses=pulses, candidates=candidates, samples=samples, geometry=geom, params=settings.as_dict()
    )
    # the image mask from the flagged pulses: the lines where their focused RFI exceeds the clutter, over the range
    # cells the image test marked (the whole swath, unless its floor picked out range blocks)
    ratio = pulse_rfi_to_clutter(raw["echo"].data, pulses, sensor, wrap=settings.wrap)
    mask_lines = map_pulses_to_lines(ratio, geom, wrap=settings.wrap)
    chunks = None if isinstance(img, np.ndarray) else image_chunk_lines(img)
    det = replace(det, mask=line_mask(mask_lines, cols, chunk_rows=chunks))
    return RFIDetection(det, mapping, echo_det, tones)


def _batches(flags: np.ndarray, method: CleanupMethod, batch_pulses: int) -> list[np.ndarray]:
    """Index arrays of the pulses handed to the method together: runs of consecutive pulses (cut to
    ``batch_pulses``) for slow-time methods, any ``batch_pulses`` flagged pulses otherwise."""
    if method.whole_block:
        out = []
        for a, b in pulse_runs(flags):
            n_pieces = max(1, int(np.ceil((b - a) / max(batch_pulses, 1))))
            bounds = np.linspace(a, b, n_pieces + 1).round().astype(int)
            out.extend(np.arange(s, e) for s, e in zip(bounds[:-1], bounds[1:]) if e > s)
        return out
    idx = np.flatnonzero(flags)
    return [idx[k : k + batch_pulses] for k in range(0, idx.size, batch_pulses)]


def clean_pulses(pulses: np.ndarray, method: CleanupMethod, ctx: MethodContext, *, return_mask: bool = False):
    """Clean a batch of pulses ``(n, n_samples)`` with ``method``: STFT -> method -> subtract -> ISTFT (tf methods) or
    subtract directly (pulse methods). Returns the cleaned pulses (complex64), and with ``return_mask`` the
    predicted time-frequency mask (``|R| > |S - R|``, or the method's own mask) too."""
    x = np.asarray(pulses, dtype=np.complex64)
    if method.domain == "tf":
        s = stft(x, ctx.stft)
        out = method(s, ctx)
        r = out.rfi_estimate(s)
        cleaned = istft(s - r, x.shape[1], ctx.stft)
        if not return_mask:
            return cleaned
        mask = np.asarray(out.data) > 0.5 if out.kind == "mask" else estimate_mask(s, r)
        return cleaned, mask
    if method.domain == "pulse":
        out = method(x, ctx)
        r = out.rfi_estimate(x)
        cleaned = (x - r).astype(np.complex64)
        if not return_mask:
            return cleaned
        return cleaned, estimate_mask(stft(x, ctx.stft), stft(r, ctx.stft))
    raise ValueError(f"method {method.name!r} has unknown domain {method.domain!r}")


def _forced_detection(raw: xr.Dataset, flags: np.ndarray) -> RFIDetection:
    n_az, n_rg = raw["echo"].shape
    lines = np.zeros(n_az, bool)
    image = ImageDetection(
        lines=lines,
        mask=np.zeros((n_az, n_rg), bool),
        z=np.full(n_az, np.nan, np.float32),
        z_floor=np.full(n_az, np.nan, np.float32),
        z_spectrum=np.full(n_az, np.nan, np.float32),
        threshold=float("inf"),
        params={"forced": True},
    )
    geom = aperture_geometry(
        SensorParams.from_attrs(raw.attrs), float(raw["slant_range"].values[-1]), processed_bandwidth(raw.attrs)
    )
    mapping = PulseMapping(
        pulses=flags, candidates=flags, samples=np.ones(n_rg, bool), geometry=geom, params={"forced": True}
    )
    return RFIDetection(image, mapping, None)


@dataclass
class CleanResult:
    """``raw``: the cleaned raw dataset (``echo`` with only ``rfi_pulses`` replaced, plus ``rfi_pulses`` and
    ``rfi_image_mask``); ``detection``; ``masks``: predicted time-frequency mask per cleaned pulse (pulse index
    -> (n_freq, n_frames) bool) when asked for."""

    raw: xr.Dataset
    detection: RFIDetection
    masks: dict[int, np.ndarray] = field(default_factory=dict)


def clean(
    raw: xr.Dataset,
    method: str | CleanupMethod = "notch",
    *,
    params: Mapping[str, Any] | None = None,
    sr: float | None = None,
    slc: xr.Dataset | None = None,
    detection: RFIDetection | None = None,
    settings: DetectionSettings = DetectionSettings(),
    stft_params: STFTParams = STFTParams(),
    batch_pulses: int = 256,
    return_masks: bool = False,
    pulses: np.ndarray | None = None,
) -> CleanResult:
    """Run the RFI chain on a raw dataset; see the module docstring.

    ``method``: a registered cleanup method name (``notch``, ``fnotch``, ``esf``, ...) or a method instance;
    ``params``: its parameters; ``sr``: wrap it with the registered super-resolution model at that factor.
    ``detection``: reuse an earlier :func:`detect` result (else detected here, focusing ``raw`` unless ``slc``).
    ``pulses``: clean exactly these pulses (bool per pulse) instead of detecting; ``rfi_image_mask`` is then empty.
    The ground-truth ``rfi`` variable, if present, is dropped from the output (it no longer adds up to ``echo``).
    """
    validate(raw, "raw", check_values=False)
    method = create_method(method, **dict(params or {})) if isinstance(method, str) else method
    if sr is not None:
        from .methods import wrap_sr

        method = wrap_sr(method, sr)
    if pulses is not None:
        flags = np.asarray(pulses, bool)
        if flags.shape != (raw.sizes["azimuth"],):
            raise InputError(
                f"pulses must hold one flag per pulse ({raw.sizes['azimuth']}), got shape {flags.shape}", where="pulses"
            )
        det = _forced_detection(raw, flags)
    else:
        det = detection if detection is not None else detect(raw, slc, settings)
    flags = det.rfi_pulses
    echo = np.array(raw["echo"].values, dtype=np.complex64, copy=True)
    masks: dict[int, np.ndarray] = {}
    for idx in _batches(flags, method, batch_pulses):
        ctx = MethodContext(attrs=dict(raw.attrs), stft=stft_params, pulse_indices=idx, n_samples=echo.shape[1])
        if return_masks:
            cleaned, mask = clean_pulses(echo[idx], method, ctx, return_mask=True)
            masks.update({int(i): m for i, m in zip(idx, mask)})
        else:
            cleaned = clean_pulses(echo[idx], method, ctx)
        echo[idx] = cleaned
    out = raw.drop_vars([v for v in ("rfi", "rfi_pulses", "rfi_image_mask") if v in raw.data_vars])
    out["echo"] = (DIMS, echo)
    out["rfi_pulses"] = (("azimuth",), np.asarray(flags, bool))
    out["rfi_image_mask"] = (DIMS, np.asarray(det.rfi_image_mask, bool))
    record = {
        "method": getattr(method, "name", type(method).__name__),
        "params": method.params(),
        "sr": sr,
        "stft": stft_params.as_dict(),
        "detection": settings.as_dict() if detection is None else det.mapping.params,
        "n_pulses_cleaned": int(np.count_nonzero(flags)),
        "aperture_pulses": det.mapping.geometry.length_pulses,
        "beam_centre_shift_pulses": det.mapping.geometry.shift_pulses,
    }
    return CleanResult(with_history(out, "rfi_clean", record), det, masks)
