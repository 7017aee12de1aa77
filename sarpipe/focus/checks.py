"""What a raw scene must satisfy before the range-Doppler algorithm can focus it into a meaningful image.

Checked once, by :func:`check_focusable`, from both :func:`sarpipe.focus.focus` (in memory) and
:func:`sarpipe.focus.focus_zarr` (streaming), before any sample is read:

- the chirp band ``|Kr| Tp`` fits in the range sampling rate (else the chirp aliases and no matched filter can
  compress it);
- the swath holds at least one chirp (``Tp fs`` samples), else every echo is cut off;
- the scene holds at least one synthetic aperture of pulses at far range (when ``antenna_length`` is known), else
  no target is seen over its whole aperture and the azimuth compression wraps partial apertures into each other;
- a processed azimuth bandwidth given by the caller does not exceed the PRF (it used to be clipped silently).

Units: Hz, s, m. Raises :class:`~sarpipe.errors.InputError` naming the attributes or the option at fault.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import xarray as xr

from ..errors import InputError
from ..model import _where
from ..sensor import SensorParams
from ..stripmap import antenna_doppler_bandwidth, azimuth_fm_rate


def synthetic_aperture_length(geom: SensorParams, slant_range: float, doppler_centroid: float = 0.0) -> float | None:
    """Pulses over which a target at ``slant_range`` [m] is seen within the 3 dB antenna beam (Doppler band of
    the antenna over the azimuth FM rate, times the PRF); None without an ``antenna_length`` attribute."""
    antenna_length = geom.antenna_length
    if not antenna_length:
        return None
    band = antenna_doppler_bandwidth(float(antenna_length), geom.velocity, doppler_centroid, geom.wavelength)
    rate = azimuth_fm_rate(slant_range, doppler_centroid, geom.wavelength, geom.velocity)
    return band / rate * geom.prf


def check_focusable(
    geom: SensorParams,
    n_azimuth: int,
    n_range: int,
    *,
    azimuth_bandwidth: float | None = None,
    doppler_centroid: float | None = None,
    source: str | None = None,
) -> None:
    """Refuse a scene the range-Doppler algorithm cannot focus (see the module docstring).

    ``azimuth_bandwidth`` [Hz] is the caller's processed band (the ``--azimuth-bandwidth`` option), None for the
    default; ``doppler_centroid`` [Hz] the caller's centroid, else the attribute, else 0 (the aperture length
    depends on it only through cos(squint)^3).
    """
    bandwidth = geom.chirp_bandwidth
    if bandwidth > geom.range_sampling_rate * (1 + 1e-12):
        raise InputError(
            f"the chirp band |chirp_rate| * pulse_duration = {bandwidth / 1e6:.6g} MHz exceeds the "
            f"range_sampling_rate {geom.range_sampling_rate / 1e6:.6g} MHz: the chirp is aliased",
            where=_where(source, "attributes 'chirp_rate', 'pulse_duration', 'range_sampling_rate'"),
        )
    chirp_samples = geom.pulse_duration * geom.range_sampling_rate
    if n_range < chirp_samples:
        raise InputError(
            f"the scene has {n_range} range samples, fewer than one chirp (pulse_duration * range_sampling_rate "
            f"= {chirp_samples:.6g} samples): every echo is cut off",
            where=_where(source, "dimension 'range'"),
        )
    if azimuth_bandwidth is not None and azimuth_bandwidth > geom.prf * (1 + 1e-12):
        raise InputError(
            f"{azimuth_bandwidth:.6g} Hz exceeds the PRF ({geom.prf:.6g} Hz): the azimuth spectrum holds only PRF Hz",
            where="azimuth_bandwidth (--azimuth-bandwidth)",
        )
    if (
        azimuth_bandwidth is None
        and geom.azimuth_bandwidth is not None
        and geom.azimuth_bandwidth > geom.prf * (1 + 1e-12)
    ):
        raise InputError(
            f"{geom.azimuth_bandwidth:.6g} Hz exceeds the PRF ({geom.prf:.6g} Hz): the azimuth spectrum "
            "holds only PRF Hz",
            where=_where(source, "attribute 'azimuth_bandwidth'"),
        )
    if doppler_centroid is not None and abs(doppler_centroid) * geom.wavelength / (2.0 * geom.velocity) >= 1.0:
        raise InputError(
            f"{doppler_centroid:.6g} Hz is not a Doppler centroid of this sensor: the squint "
            f"sin(theta) = f_dc * wavelength / (2 V) must stay below 1 (|f_dc| < "
            f"{2.0 * geom.velocity / geom.wavelength:.6g} Hz)",
            where="doppler_centroid (--doppler-centroid)",
        )
    f_dc = doppler_centroid if doppler_centroid is not None else geom.doppler_centroid
    f_dc = float(f_dc) if isinstance(f_dc, (int, float)) and math.isfinite(f_dc) else 0.0
    far = geom.near_range + (n_range - 1) * geom.range_pixel_spacing
    aperture = synthetic_aperture_length(geom, far, f_dc)
    if aperture is not None and n_azimuth < aperture:
        raise InputError(
            f"the scene has {n_azimuth} pulses, fewer than one synthetic aperture at far range ({far:.6g} m): "
            f"{math.ceil(aperture)} pulses (antenna_length {float(geom.antenna_length):.6g} m, prf "
            f"{geom.prf:.6g} Hz); targets would be focused from partial apertures",
            where=_where(source, "dimension 'azimuth'"),
        )


def check_stripmap_echoes(ds: xr.Dataset | Mapping[str, Any], source: str | None = None) -> None:
    """Refuse to focus what cannot give a stripmap image (from an ingested part's ``acquisition_mode`` and
    ``signal_type``): TOPS bursts (IW/EW acquisitions decode, but sarpipe has no TOPS focuser) and calibration or
    noise parts. ``ds``: a dataset or its attributes; without
    these attributes (simulated scenes, other readers) it passes."""
    where = f"{source}: attribute" if source else "attribute"
    attrs = ds.attrs if isinstance(ds, xr.Dataset) else ds
    mode = attrs.get("acquisition_mode")
    if mode in ("IW", "EW"):
        raise InputError(
            f"TOPS focusing is not supported: this is a {mode} (TOPS burst) acquisition; sarpipe focuses stripmap "
            "only (the bursts decode, their azimuth steering is not compensated)",
            where=f"{where} 'acquisition_mode'",
        )
    signal = attrs.get("signal_type")
    if signal is not None and signal != "echo":
        raise InputError(f"a {signal} part holds no echoes to focus", where=f"{where} 'signal_type'")
