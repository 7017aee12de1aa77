"""Geolocation of radar-geometry pixels: range-Doppler intersection with the WGS84 ellipsoid, and GCP grids.

A pixel (azimuth time ``t`` [s], slant range ``R`` [m]) lies where the sphere ``|X - S(t)| = R`` around the
satellite, the Doppler cone ``V(t) . (X - S(t)) = lambda R f_D / 2`` (``f_D = 0`` for a zero-Doppler SLC) and the
ellipsoid raised by ``h``, ``(x^2 + y^2) / (a + h)^2 + z^2 / (b + h)^2 = 1``, meet, on the look side. ``S``, ``V``
are ECEF [m, m/s], interpolated from state vectors by :func:`sarpipe.orbit.interpolate_orbit` (8th-order
Lagrange over the nearest 9, well below a centimetre at the 10 s Sentinel-1 spacing). Solved by Newton's method
from a guess on the look side. Results: geodetic latitude/longitude [deg] (WGS84, EPSG:4326) and height [m].

``(x^2 + y^2)/(a+h)^2 + z^2/(b+h)^2 = 1`` is not exactly the surface at geodetic height ``h`` (the error grows as
``h^2 e^2 / a``: under a millimetre for ``h < 10 km``).

Without state vectors (simulated scenes) nothing here is used: their GeoTIFFs stay in radar geometry.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .errors import InputError
from .model import SPEED_OF_LIGHT
from .orbit import WGS84_A, WGS84_B, WGS84_F, interpolate_orbit

WGS84_E2 = WGS84_F * (2 - WGS84_F)
EARTH_ROTATION_RATE = 7.2921151467e-5  # rad/s (WGS84)


def ecef_to_geodetic(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WGS84 geodetic latitude, longitude [deg] and height [m] of ECEF points (..., 3), by fixed-point iteration."""
    x, y, z = np.moveaxis(np.asarray(xyz, dtype=np.float64), -1, 0)
    lon = np.arctan2(y, x)
    p = np.hypot(x, y)
    lat = np.arctan2(z, p * (1 - WGS84_E2))
    for _ in range(8):
        n = WGS84_A / np.sqrt(1 - WGS84_E2 * np.sin(lat) ** 2)
        h = p / np.cos(lat) - n
        lat = np.arctan2(z, p * (1 - WGS84_E2 * n / (n + h)))
    n = WGS84_A / np.sqrt(1 - WGS84_E2 * np.sin(lat) ** 2)
    h = p / np.cos(lat) - n
    return np.degrees(lat), np.degrees(lon), h


def geodetic_to_ecef(lat: Any, lon: Any, h: Any = 0.0) -> np.ndarray:
    """ECEF [m] (..., 3) of WGS84 geodetic latitude, longitude [deg] and height [m]."""
    lat, lon, h = np.radians(np.asarray(lat, float)), np.radians(np.asarray(lon, float)), np.asarray(h, float)
    n = WGS84_A / np.sqrt(1 - WGS84_E2 * np.sin(lat) ** 2)
    return np.stack(
        [
            (n + h) * np.cos(lat) * np.cos(lon),
            (n + h) * np.cos(lat) * np.sin(lon),
            (n * (1 - WGS84_E2) + h) * np.sin(lat),
        ],
        axis=-1,
    )


def range_doppler_to_ecef(
    sat_pos: np.ndarray,
    sat_vel: np.ndarray,
    slant_range: np.ndarray,
    *,
    doppler: np.ndarray | float = 0.0,
    wavelength: float = 0.05546576,
    height: np.ndarray | float = 0.0,
    look_side: str = "right",
    iterations: int = 12,
) -> np.ndarray:
    """ECEF points (n, 3) at ``slant_range`` [m] from ``sat_pos`` on the Doppler cone ``doppler`` [Hz] and the
    ellipsoid raised by ``height`` [m] (module docstring). Inputs broadcast over n points."""
    s = np.atleast_2d(np.asarray(sat_pos, float))
    v = np.atleast_2d(np.asarray(sat_vel, float))
    r = np.atleast_1d(np.asarray(slant_range, float))
    n = max(len(s), len(v), len(r))
    s, v = np.broadcast_to(s, (n, 3)), np.broadcast_to(v, (n, 3))
    r = np.broadcast_to(r, (n,))
    fd = np.broadcast_to(np.atleast_1d(np.asarray(doppler, float)), (n,))
    h = np.broadcast_to(np.atleast_1d(np.asarray(height, float)), (n,))
    a2, b2 = (WGS84_A + h) ** 2, (WGS84_B + h) ** 2
    # guess: from the point below the satellite, off to the look side by the ground range of a spherical Earth
    up = s / np.linalg.norm(s, axis=1, keepdims=True)
    along = v - np.sum(v * up, axis=1, keepdims=True) * up
    along /= np.linalg.norm(along, axis=1, keepdims=True)
    side = np.cross(along, up) if look_side == "right" else np.cross(up, along)
    rs = np.linalg.norm(s, axis=1)
    re = WGS84_A * (1 - WGS84_F * up[:, 2] ** 2)
    cos_g = np.clip((rs**2 + re**2 - r**2) / (2 * rs * re), -1, 1)
    gamma = np.arccos(cos_g)[:, None]
    x = re[:, None] * (np.cos(gamma) * up + np.sin(gamma) * side)
    rhs_d = wavelength * r * fd / 2
    for _ in range(iterations):
        d = x - s
        f = np.stack(
            [
                np.sum(d * d, axis=1) - r**2,
                np.sum(v * d, axis=1) - rhs_d,
                (x[:, 0] ** 2 + x[:, 1] ** 2) / a2 + x[:, 2] ** 2 / b2 - 1,
            ],
            axis=1,
        )
        jac = np.stack([2 * d, v, np.stack([2 * x[:, 0] / a2, 2 * x[:, 1] / a2, 2 * x[:, 2] / b2], axis=1)], axis=1)
        x = x - np.linalg.solve(jac, f[..., None])[..., 0]
    return x


def dataset_geolocation(
    ds: xr.Dataset,
    lines: np.ndarray,
    samples: np.ndarray,
    *,
    height: np.ndarray | float = 0.0,
    doppler: np.ndarray | float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latitude, longitude [deg], height [m] of pixels (``lines``, ``samples``: indices into ``ds``, may be
    fractional) from the dataset's state vectors (``orbit_time``/``orbit_position``/``orbit_velocity``).

    ``doppler`` [Hz]: default 0 for an SLC (zero-Doppler geometry) and the ``doppler_centroid`` attribute for raw
    echoes (a pulse sees the scene at the beam centre)."""
    for name in ("orbit_position", "orbit_velocity", "orbit_time"):
        if name not in ds.variables:
            raise InputError("no orbit state vectors: cannot geolocate", where=f"variable '{name}'")
    lines = np.asarray(lines, float)
    samples = np.asarray(samples, float)
    az = np.interp(lines, np.arange(ds.sizes["azimuth"]), ds["azimuth_time"].values)
    rg = np.interp(samples, np.arange(ds.sizes["range"]), ds["slant_range"].values)
    if doppler is None:
        doppler = 0.0 if "slc" in ds.data_vars else float(ds.attrs.get("doppler_centroid") or 0.0)
    pos, vel = interpolate_orbit(
        ds["orbit_time"].values, ds["orbit_position"].values, ds["orbit_velocity"].values, az.ravel()
    )
    xyz = range_doppler_to_ecef(
        pos,
        vel,
        rg.ravel(),
        doppler=doppler,
        wavelength=SPEED_OF_LIGHT / float(ds.attrs["carrier_frequency"]),
        height=np.broadcast_to(height, lines.shape).ravel(),
        look_side=str(ds.attrs.get("look_side", "right")),
    )
    lat, lon, h = ecef_to_geodetic(xyz)
    return lat.reshape(lines.shape), lon.reshape(lines.shape), h.reshape(lines.shape)


# ------------------------------------------------------------------------------------------------ GCP grids


def annotation_grid_at(ds: xr.Dataset, lines: np.ndarray, samples: np.ndarray, name: str) -> np.ndarray:
    """Bilinear interpolation of the annotation's geolocation grid variable ``geolocation_<name>`` (latitude,
    longitude, height, incidence_angle) at pixels of ``ds`` (indices, may be fractional).

    Interpolated in (zero-Doppler azimuth time, slant range), the grid's own axes, not in its line/pixel numbers:
    for TOPS the grid's rows sit at burst starts whose lines are 1514 apart but whose times are one burst cycle
    (~2.76 s) apart while 1514 lines span ~3.11 s, so interpolating in line numbers misplaces a pixel in the middle
    of a burst by up to ~1 km along track (measured on the shared IW crop)."""
    from scipy.interpolate import RegularGridInterpolator

    gl = ds["geolocation_line"].values
    gp = ds["geolocation_pixel"].values
    ul, up = np.unique(gl), np.unique(gp)
    if ul.size * up.size != gl.size:
        raise InputError("the geolocation grid is not regular in line and pixel", where="variable 'geolocation_line'")
    il, ip = np.searchsorted(ul, gl), np.searchsorted(up, gp)

    def table(var: str) -> np.ndarray:
        out = np.full((ul.size, up.size), np.nan)
        out[il, ip] = ds[var].values
        return out

    row_time = np.nanmean(table("geolocation_azimuth_time"), axis=1)
    col_range = np.nanmean(table("geolocation_slant_range"), axis=0)
    interp = RegularGridInterpolator(
        (row_time, col_range), table(f"geolocation_{name}"), bounds_error=False, fill_value=None
    )
    t = np.interp(np.asarray(lines, float), np.arange(ds.sizes["azimuth"]), ds["azimuth_time"].values)
    r = np.interp(np.asarray(samples, float), np.arange(ds.sizes["range"]), ds["slant_range"].values)
    return interp(np.stack([t.ravel(), r.ravel()], axis=-1)).reshape(np.shape(t))


def gcp_grid(ds: xr.Dataset, n_lines: int = 6, n_samples: int = 8) -> dict[str, Any] | None:
    """Ground control points over ``ds`` (a ``n_lines x n_samples`` lattice including the image corners):
    ``{"row", "col", "lat", "lon", "height", "method"}``, from the annotation's geolocation grid when present,
    else from the orbit by range-Doppler intersection with the ellipsoid (height 0), else None."""
    n_az, n_rg = ds.sizes["azimuth"], ds.sizes["range"]
    rows, cols = np.meshgrid(np.linspace(0, n_az - 1, n_lines), np.linspace(0, n_rg - 1, n_samples), indexing="ij")
    if "geolocation_latitude" in ds.variables:
        lat = annotation_grid_at(ds, rows, cols, "latitude")
        lon = annotation_grid_at(ds, rows, cols, "longitude")
        h = annotation_grid_at(ds, rows, cols, "height")
        method = "annotation geolocation grid, bilinear in (azimuth time, slant range)"
    elif "orbit_position" in ds.variables:
        lat, lon, h = dataset_geolocation(ds, rows, cols)
        method = "orbit state vectors, range-Doppler intersection with the WGS84 ellipsoid (height 0)"
    else:
        return None
    # GDAL's GCP pixel/line address the pixel's corner: the centre of pixel (i, j) is (j + 0.5, i + 0.5)
    return {"row": rows + 0.5, "col": cols + 0.5, "lat": lat, "lon": lon, "height": h, "method": method}


def circular_orbit(
    times: np.ndarray,
    *,
    radius: float,
    inclination_deg: float,
    ascending_node_lon_deg: float = 0.0,
    argument_of_latitude0_deg: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """ECEF position, velocity of a circular orbit (two-body speed ``sqrt(GM / radius)``) at ``times`` [s],
    including the Earth's rotation: the synthetic orbit the tests (and a simulated scene, by choice) can use."""
    gm = 3.986004418e14
    n = np.sqrt(gm / radius**3)
    t = np.asarray(times, float)
    u = np.radians(argument_of_latitude0_deg) + n * t
    inc = np.radians(inclination_deg)
    node = np.radians(ascending_node_lon_deg) - EARTH_ROTATION_RATE * t  # the node drifts west in ECEF
    cu, su, ci, si, cn, sn = np.cos(u), np.sin(u), np.cos(inc), np.sin(inc), np.cos(node), np.sin(node)
    pos = radius * np.stack([cn * cu - sn * su * ci, sn * cu + cn * su * ci, su * si], axis=-1)
    # d/dt of the rotated orbit: the motion along it, plus the rotation of the node by -omega t about z
    along = radius * n * np.stack([-cn * su - sn * cu * ci, -sn * su + cn * cu * ci, cu * si], axis=-1)
    rotation = EARTH_ROTATION_RATE * np.stack([pos[..., 1], -pos[..., 0], np.zeros(pos.shape[:-1])], axis=-1)
    return pos, along + rotation
