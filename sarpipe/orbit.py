"""Orbit and attitude interpolation, and the geometric Doppler centroid from orbit + attitude + antenna boresight.

Conventions
- Orbit: ECEF state vectors (position [m], velocity [m/s]) at times [s] on the dataset's epoch. Interpolated with
  an 8th-order Lagrange polynomial over the 9 state vectors nearest the requested time (fewer when the orbit has
  fewer), position and velocity each interpolated from their own samples (not differentiated).
- Attitude: unit quaternions ``(q0, q1, q2, q3)``, scalar first, Hamilton product, that rotate a vector given in
  the antenna (radar coordinate system, RCS) frame into ECEF: ``v_ecef = q v_rcs q*``. This is what NISAR L0B
  ``lowRateTelemetry/attitude/quaternions`` holds (ISCE3 reads it as the RCS-to-ECEF attitude). The antenna
  boresight is RCS ``+Z``, the elevation axis ``+X``, ``+Y`` the azimuth axis (roughly minus the velocity for a
  right-looking radar). Checked on the ALOS PALSAR L0B block: RCS +Z is 34.3 deg off nadir on the right side of
  the track (PALSAR's nominal off-nadir angle), RCS +Y is -velocity to 1e-3. Interpolation: slerp between the
  two neighbouring samples (the shorter arc).
- Geometric Doppler centroid: for each slant range ``R`` the target ``P`` on the WGS84 ellipsoid at distance ``R``
  from the antenna phase centre ``S`` in the antenna's zero-azimuth plane (the plane of the boresight and the
  elevation axis), on the boresight's side of nadir; then ``f_dc = 2 / lambda * (v_S - v_P) . u`` with
  ``u = (P - S) / R``. In ECEF a ground target is at rest (``v_P = 0``): Earth rotation is already in the ECEF
  satellite velocity, so ``f_dc = 2 / lambda * v_S,ecef . u``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .errors import InputError
from .model import SPEED_OF_LIGHT

WGS84_A = 6_378_137.0  # semi-major axis [m]
WGS84_F = 1.0 / 298.257223563
WGS84_B = WGS84_A * (1.0 - WGS84_F)  # semi-minor axis [m]

LAGRANGE_NODES = 9  # 8th-order polynomial


def _lagrange_weights(nodes: np.ndarray, t: float) -> np.ndarray:
    """Lagrange basis weights of ``nodes`` evaluated at ``t`` (nodes centred on ``t`` to keep them well scaled)."""
    x = nodes - t
    n = x.size
    w = np.ones(n)
    for j in range(n):
        for m in range(n):
            if m != j:
                w[j] *= (0.0 - x[m]) / (x[j] - x[m])
    return w


def interpolate_orbit(
    orbit_time: np.ndarray, position: np.ndarray, velocity: np.ndarray, t: Any
) -> tuple[np.ndarray, np.ndarray]:
    """ECEF position [m] and velocity [m/s] at times ``t`` [s] (scalar or array -> shape ``(..., 3)``).

    8th-order Lagrange over the 9 nearest state vectors; ``t`` must lie within the state vectors' time span.
    """
    ot = np.asarray(orbit_time, dtype=np.float64)
    pos = np.asarray(position, dtype=np.float64)
    vel = np.asarray(velocity, dtype=np.float64)
    tt = np.asarray(t, dtype=np.float64)
    if ot.ndim != 1 or ot.size < 2 or pos.shape != (ot.size, 3) or vel.shape != (ot.size, 3):
        raise InputError("needs at least two state vectors, positions and velocities of shape (n, 3)", where="orbit")
    if not np.all(np.diff(ot) > 0):
        raise InputError("state vector times must increase strictly", where="orbit_time")
    flat = tt.ravel()
    if flat.size and (flat.min() < ot[0] or flat.max() > ot[-1]):
        raise InputError(
            f"time {flat.min():.6f}..{flat.max():.6f} s is outside the orbit's {ot[0]:.6f}..{ot[-1]:.6f} s",
            where="orbit_time",
        )
    k = min(LAGRANGE_NODES, ot.size)
    out_p = np.empty((flat.size, 3))
    out_v = np.empty((flat.size, 3))
    for i, ti in enumerate(flat):
        centre = int(np.searchsorted(ot, ti))
        start = int(np.clip(centre - k // 2, 0, ot.size - k))
        w = _lagrange_weights(ot[start : start + k], ti)
        out_p[i] = w @ pos[start : start + k]
        out_v[i] = w @ vel[start : start + k]
    return out_p.reshape(tt.shape + (3,)), out_v.reshape(tt.shape + (3,))


def quaternion_to_matrix(q: Any) -> np.ndarray:
    """Rotation matrix (shape ``(..., 3, 3)``) of scalar-first Hamilton quaternions (normalised first)."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def slerp(q0: np.ndarray, q1: np.ndarray, fraction: float) -> np.ndarray:
    """Spherical linear interpolation between unit quaternions along the shorter arc (``fraction`` in [0, 1])."""
    a = np.asarray(q0, dtype=np.float64) / np.linalg.norm(q0)
    b = np.asarray(q1, dtype=np.float64) / np.linalg.norm(q1)
    dot = float(a @ b)
    if dot < 0.0:  # q and -q are the same rotation: take the short way
        b, dot = -b, -dot
    if dot > 0.9999995:
        out = a + fraction * (b - a)
        return out / np.linalg.norm(out)
    theta = np.arccos(dot)
    return (np.sin((1 - fraction) * theta) * a + np.sin(fraction * theta) * b) / np.sin(theta)


def interpolate_attitude(attitude_time: np.ndarray, quaternion: np.ndarray, t: Any) -> np.ndarray:
    """Quaternions (shape ``(..., 4)``) at times ``t`` [s] by slerp between the neighbouring samples."""
    at = np.asarray(attitude_time, dtype=np.float64)
    qs = np.asarray(quaternion, dtype=np.float64)
    tt = np.asarray(t, dtype=np.float64)
    if at.ndim != 1 or at.size < 2 or qs.shape != (at.size, 4):
        raise InputError("needs at least two quaternions of shape (n, 4)", where="attitude")
    flat = tt.ravel()
    if flat.size and (flat.min() < at[0] or flat.max() > at[-1]):
        raise InputError(
            f"time {flat.min():.6f}..{flat.max():.6f} s is outside the attitude's {at[0]:.6f}..{at[-1]:.6f} s",
            where="attitude_time",
        )
    out = np.empty((flat.size, 4))
    for i, ti in enumerate(flat):
        j = int(np.clip(np.searchsorted(at, ti) - 1, 0, at.size - 2))
        out[i] = slerp(qs[j], qs[j + 1], (ti - at[j]) / (at[j + 1] - at[j]))
    return out.reshape(tt.shape + (4,))


def _ellipsoid_range(s: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Distance along unit directions ``u`` (..., 3) from ``s`` (3,) to the WGS84 ellipsoid (NaN: no hit)."""
    scale = np.array([1 / WGS84_A, 1 / WGS84_A, 1 / WGS84_B])
    sp = s * scale
    up = u * scale
    a = np.sum(up * up, -1)
    b = 2 * np.sum(up * sp, -1)
    c = np.sum(sp * sp) - 1.0
    disc = b * b - 4 * a * c
    with np.errstate(invalid="ignore"):
        return np.where(disc >= 0, (-b - np.sqrt(disc)) / (2 * a), np.nan)


def boresight_targets(
    position: np.ndarray, rotation: np.ndarray, slant_range: np.ndarray, *, iterations: int = 60
) -> np.ndarray:
    """ECEF points on the ellipsoid at each ``slant_range`` [m] in the antenna's zero-azimuth plane.

    ``position``: antenna ECEF position (3,); ``rotation``: RCS-to-ECEF matrix (3, 3). Returns (n, 3); NaN rows
    where the range does not reach the ellipsoid in that plane.
    """
    s = np.asarray(position, dtype=np.float64)
    bore, elev = rotation[:, 2], rotation[:, 0]
    r = np.atleast_1d(np.asarray(slant_range, dtype=np.float64))
    nadir = -s / np.linalg.norm(s)
    theta_nadir = np.arctan2(nadir @ elev, nadir @ bore)
    step = -np.sign(theta_nadir) if theta_nadir != 0 else 1.0  # from nadir towards the boresight and beyond

    def direction(theta: np.ndarray) -> np.ndarray:
        return np.cos(theta)[..., None] * bore + np.sin(theta)[..., None] * elev

    grid = theta_nadir + step * np.linspace(0.0, np.pi / 2, 2049)
    rho = _ellipsoid_range(s, direction(grid))
    hit = np.isfinite(rho)
    if not hit.any():
        return np.full((r.size, 3), np.nan)
    last = int(np.nonzero(hit)[0].max())
    rho_ok = np.maximum.accumulate(np.where(hit, rho, -np.inf)[: last + 1])
    idx = np.searchsorted(rho_ok, r)  # first grid point at or beyond each range
    ok = (idx > 0) & (idx <= last)
    lo = grid[np.clip(idx - 1, 0, last)]
    hi = grid[np.clip(idx, 0, last)]
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        beyond = _ellipsoid_range(s, direction(mid)) >= r
        hi = np.where(beyond, mid, hi)
        lo = np.where(beyond, lo, mid)
    theta = 0.5 * (lo + hi)
    out = s + r[:, None] * direction(theta)
    out[~ok] = np.nan
    return out


def doppler_from_geometry(
    position: np.ndarray, velocity: np.ndarray, rotation: np.ndarray, slant_range: Any, wavelength: float
) -> np.ndarray:
    """Absolute Doppler centroid [Hz] at each slant range for one antenna state (ECEF position, velocity, the
    RCS-to-ECEF rotation matrix): ``2 / lambda * v . u`` towards the boresight-plane target on the ellipsoid."""
    targets = boresight_targets(position, rotation, slant_range)
    u = targets - position
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    return 2.0 / wavelength * (u @ np.asarray(velocity, dtype=np.float64))


def geometric_doppler_centroid(
    ds_or_arrays: xr.Dataset | dict[str, Any],
    slant_range: Any = None,
    *,
    time: float | None = None,
    wavelength: float | None = None,
) -> np.ndarray:
    """Absolute geometric Doppler centroid [Hz] at ``slant_range`` [m] (default: the dataset's ``slant_range``).

    ``ds_or_arrays``: a raw dataset with ``orbit_time``/``orbit_position``/``orbit_velocity`` and
    ``attitude_time``/``attitude_quaternion`` (RCS-to-ECEF, scalar first, see the module docstring), or a dict
    with the same names as arrays (and optionally ``carrier_frequency``, ``azimuth_time``). ``time`` [s, the
    data's epoch] defaults to the middle pulse; ``wavelength`` defaults to ``c / carrier_frequency``.
    """
    src = ds_or_arrays
    attrs = src.attrs if isinstance(src, xr.Dataset) else src

    def get(name: str) -> np.ndarray:
        if name not in src:
            raise InputError(
                "is needed for the geometric Doppler centroid (orbit and attitude)", where=f"variable '{name}'"
            )
        return np.asarray(src[name].values if isinstance(src, xr.Dataset) else src[name], dtype=np.float64)

    if wavelength is None:
        if "carrier_frequency" not in attrs:
            raise InputError("is needed for the wavelength", where="attribute 'carrier_frequency'")
        wavelength = SPEED_OF_LIGHT / float(attrs["carrier_frequency"])
    if time is None:
        az = get("azimuth_time")
        time = float(az[az.size // 2])
    if slant_range is None:
        slant_range = get("slant_range")
    convention = (
        getattr(src.get("attitude_quaternion"), "attrs", {}).get("convention") if isinstance(src, xr.Dataset) else None
    )
    if convention is not None and "rcs_to_ecef" not in str(convention):
        raise InputError(
            f"convention {convention!r} is not an RCS-to-ECEF quaternion", where="variable 'attitude_quaternion'"
        )
    pos, vel = interpolate_orbit(get("orbit_time"), get("orbit_position"), get("orbit_velocity"), time)
    q = interpolate_attitude(get("attitude_time"), get("attitude_quaternion"), time)
    return doppler_from_geometry(pos, vel, quaternion_to_matrix(q), slant_range, float(wavelength))


def effective_velocity(position: np.ndarray, velocity: np.ndarray) -> float:
    """Effective (range-Doppler) velocity [m/s] approximated as ``|v| sqrt(R_e / |r|)``.

    ``V_eff = sqrt(V_s V_g)`` with the beam's ground speed ``V_g = V_s R_e / |r|`` (spherical Earth of the local
    geocentric WGS84 radius ``R_e`` under the satellite; ECEF velocity, so Earth rotation is included). Good to a
    few 0.1 % for LEO at moderate look angles; focusing refines it from the data when it matters.
    """
    p = np.asarray(position, dtype=np.float64)
    lat = np.arctan2(p[2], np.hypot(p[0], p[1]))  # geocentric latitude
    re = WGS84_A * WGS84_B / np.hypot(WGS84_B * np.cos(lat), WGS84_A * np.sin(lat))
    return float(np.linalg.norm(velocity) * np.sqrt(re / np.linalg.norm(p)))
