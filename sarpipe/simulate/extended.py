"""Extended scenes: a reflectivity map turned into raw echoes through the inverse of the focusing.

Route (fast, one 2-D FFT pair plus one ``sarpipe.focus.defocus``):

1. the map (``.npy`` complex or real, or an image read by pillow as amplitude) is placed on the scene grid
   (a real map is a mean amplitude: each pixel is multiplied by a unit-power circular complex Gaussian, i.e.
   fully developed speckle, unless ``speckle: false``) and
   multiplied by the carrier phase ``exp(-j 4 pi R / lambda)`` of its range, so a complex pixel behaves like a
   point target of that amplitude and phase;
2. it is band-limited to what the radar can see: the chirp band ``|f_tau| <= B/2`` in range and the two-way
   azimuth antenna pattern as a function of Doppler (``antenna.pattern_of_doppler``, unwrapped around f_dc);
3. it is scaled so that a map pixel of value ``s`` focuses to the same peak as a point target of amplitude ``s``
   (the gain is measured by focusing one unit point target at the scene-centre range);
4. ``sarpipe.focus.defocus`` (inverse RCMC and azimuth/range decompression) turns it into echoes. The grid is
   padded by half a synthetic aperture plus the squint offset in azimuth and half a chirp plus the migration in
   range before the defocus and cropped after, so echoes of scatterers near the scene edges are cut off as in
   a real acquisition instead of wrapping around.

Approximation: the echoes follow the focusing's model (range-Doppler algorithm, circular convolutions, the
Doppler centroid constant over the scene), not the exact hyperbolic model of the point-target kernel; the gain
of step 3 holds at the scene-centre range (the azimuth gain grows as sqrt(R) across the swath).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.fft

from ..errors import InputError
from ..model import sar_dataset
from ..sensor import SensorParams
from ..stripmap import beam_centre_offset
from . import antenna
from .config import ExtendedConfig

_IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm"}


def load_reflectivity(path: Path) -> np.ndarray:
    """Read a 2-D reflectivity map: ``.npy`` (complex or real) or an image (grey levels as amplitude)."""
    where = f"{path} (extended.file)"
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        elif suffix in _IMAGE_SUFFIXES:
            from PIL import Image

            with Image.open(path) as img:
                if img.mode not in ("L", "I", "F", "I;16", "I;16B", "I;16L"):
                    img = img.convert("L")
                data = np.asarray(img)
        else:
            raise InputError(
                f"unsupported reflectivity file type {suffix!r} (use .npy or an image: png, tif, ...)", where=where
            )
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any read failure is bad input
        raise InputError(f"cannot read the reflectivity map ({type(exc).__name__}: {exc})", where=where) from exc
    if data.ndim != 2 or 0 in data.shape:
        raise InputError(f"the reflectivity map must be a non-empty 2-D array, got shape {data.shape}", where=where)
    if not (np.issubdtype(data.dtype, np.number) and not np.issubdtype(data.dtype, np.bool_)):
        raise InputError(f"the reflectivity map must be numeric, got dtype {data.dtype}", where=where)
    data = data.astype(np.complex128 if np.iscomplexobj(data) else np.float64)
    if not np.all(np.isfinite(data)):
        raise InputError("the reflectivity map contains NaN or Inf", where=where)
    return data


def _unit_target_gain(sensor: SensorParams, n_az: int, r_centre: float, pattern: str) -> float:
    """Focused peak of a unit point target at range ``r_centre`` [m] (same focusing settings as the defocus),
    measured on a narrow swath around it."""
    from ..focus import focus
    from .scene import point_target_echoes

    dr = sensor.range_pixel_spacing
    n_rg = 2 * int(sensor.pulse_duration * sensor.range_sampling_rate / 2) + 65
    small = replace(sensor, near_range=r_centre - (n_rg // 2) * dr, azimuth_bandwidth=None).as_attrs()
    prf = sensor.prf
    lam = sensor.wavelength
    shift = beam_centre_offset(r_centre, sensor.doppler_centroid, lam, sensor.velocity) * prf
    # on a grid sample in both directions, so that the largest sample is the peak of the response
    target = {"slant_range": r_centre, "azimuth_time": round(n_az / 2 - shift) / prf, "amplitude": 1.0, "phase": 0.0}
    echo = point_target_echoes([target], small, (n_az, n_rg), 0.0, pattern)
    slc = focus(
        sar_dataset(echo, small),
        doppler_centroid=sensor.doppler_centroid,
        azimuth_bandwidth=prf,
        range_correlation="circular",  # the settings of the defocus below, as this simulator always used
        secondary_range_compression=False,
    )
    return float(np.abs(slc["slc"].values).max())


def extended_echoes(
    cfg: ExtendedConfig,
    path: Path,
    sensor: SensorParams,
    shape: tuple[int, int],
    azimuth_time0: float,
    pattern: str,
    rng: np.random.Generator,
) -> np.ndarray:
    """Raw echoes (complex64, ``shape``) of the reflectivity map of ``cfg`` (see the module docstring); ``sensor``
    needs ``doppler_centroid`` and ``antenna_length``."""
    from ..focus import defocus
    from ..focus.migration import doppler_frequencies, migration_factor

    n_az, n_rg = shape
    refl = load_reflectivity(path)
    h, w = refl.shape
    if cfg.azimuth_offset + h > n_az or cfg.range_offset + w > n_rg:
        raise InputError(
            f"the reflectivity map ({h} x {w}) placed at ({cfg.azimuth_offset}, {cfg.range_offset}) does not fit the "
            f"scene ({n_az} x {n_rg}); crop it or enlarge scene.n_azimuth / scene.n_range",
            where=f"{path} (extended.file)",
        )
    if not np.iscomplexobj(refl) and cfg.speckle:
        refl = refl * (rng.standard_normal(refl.shape) + 1j * rng.standard_normal(refl.shape)) / math.sqrt(2.0)

    prf, fs, v, lam, dr = (
        sensor.prf,
        sensor.range_sampling_rate,
        sensor.velocity,
        sensor.wavelength,
        sensor.range_pixel_spacing,
    )
    f_dc, la = sensor.doppler_centroid, sensor.antenna_length
    far = sensor.near_range + n_rg * dr
    # padding: half an aperture + squint offset in azimuth, half a chirp + migration in range
    aperture = antenna.synthetic_aperture_pulses(sensor, far, pattern)
    offset = abs(beam_centre_offset(far, f_dc, lam, v)) * prf
    pad_a = int(math.ceil(aperture / 2 + offset)) + 8
    f_lo, f_hi = antenna.doppler_band(pattern, la, v, f_dc, lam)
    migration = far * (1 / float(migration_factor(sensor, max(abs(f_lo), abs(f_hi)))) - 1) / dr
    pad_r = int(math.ceil(sensor.pulse_duration * fs / 2 + migration)) + 8
    na, nr = scipy.fft.next_fast_len(n_az + 2 * pad_a), scipy.fft.next_fast_len(n_rg + 2 * pad_r)
    pad_a, pad_r = (na - n_az) // 2, (nr - n_rg) // 2

    grid = np.zeros((na, nr), dtype=np.complex128)
    a0, r0 = pad_a + cfg.azimuth_offset, pad_r + cfg.range_offset
    # the carrier phase exp(-j 4 pi R / lambda) that a point target keeps through the (phase-preserving) focusing
    slant = sensor.near_range + (np.arange(w) + cfg.range_offset) * dr
    carrier = np.exp(-2j * np.pi * np.mod(2.0 * slant / lam, 1.0))
    grid[a0 : a0 + h, r0 : r0 + w] = refl * carrier[None, :] * cfg.scale

    spec = scipy.fft.fft2(grid, workers=-1)
    f_tau = scipy.fft.fftfreq(nr, 1 / fs)
    band = np.abs(f_tau) <= sensor.chirp_bandwidth / 2
    f_eta = doppler_frequencies(sensor, na, f_dc)  # unwrapped around f_dc, as the focusing sees them
    weights = antenna.pattern_of_doppler(f_eta, pattern, la, v, f_dc, lam)
    gain = _unit_target_gain(sensor, n_az, sensor.near_range + (n_rg // 2) * dr, pattern)
    # a map pixel s must focus to the peak of a point target of amplitude s: the band-limited pixel peaks at
    # mean(weights) * mean(band), the focused point target at `gain`
    spec *= (gain / (weights.mean() * band.mean()) * weights)[:, None] * band[None, :]
    slc = scipy.fft.ifft2(spec, workers=-1).astype(np.complex64)

    padded = replace(sensor, near_range=sensor.near_range - pad_r * dr, azimuth_bandwidth=None).as_attrs()
    ds = sar_dataset(slc, padded, name="slc", azimuth_time0=azimuth_time0 - pad_a / prf)
    # circular range and no SRC: the echoes stay exactly those this simulator has always made
    raw = defocus(
        ds,
        range_window="rect",
        azimuth_window="rect",
        doppler_centroid=f_dc,
        azimuth_bandwidth=prf,
        range_correlation="circular",
        secondary_range_compression=False,
    )
    return np.ascontiguousarray(raw["echo"].values[pad_a : pad_a + n_az, pad_r : pad_r + n_rg], dtype=np.complex64)
