"""Georeferencing and figures.

- range-Doppler geolocation on a synthetic circular orbit equals an independent solution (pyproj's ellipsoid,
  scipy's root finder); Hermite orbit interpolation on it is sub-millimetre;
- on the real IW crop, geolocation from the orbit file reproduces the annotation's geolocation grid points
  (same zero-Doppler equations on WGS84: agreement to 0.1 m, 1/20 of a range sample), and the grid interpolated
  in (azimuth time, slant range) within 5 m at the crop's pixels (bilinear over a grid cell of 2.76 s x 1211
  samples with terrain heights up to ~300 m);
- the crop's GeoTIFF has GCPs equal to the grid interpolated here from the XML, EPSG:4326, tiles, compression,
  overviews and no NotGeoreferencedWarning; a GCP reprojection to EPSG:4326 puts a bright pixel where the grid
  says, within two output pixels;
- a scene with only an orbit gets GCPs from it; the figures' theory curves equal closed forms and the measured
  point-target cut in metres.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from sarpipe.georef import (
    circular_orbit,
    dataset_geolocation,
    ecef_to_geodetic,
    range_doppler_to_ecef,
)
from sarpipe.orbit import interpolate_orbit

pytestmark = pytest.mark.filterwarnings("error::rasterio.errors.NotGeoreferencedWarning")

C = 299_792_458.0
ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SARPIPE_SHARED_DATA", ROOT.parent / "shared" / "data"))
CROP = SHARED / "s1_iw_slc_crop"
needs_crop = pytest.mark.skipif(
    not CROP.is_dir(), reason=f"shared data absent: {CROP} (set SARPIPE_SHARED_DATA to the shared data folder)"
)
WAVELENGTH = C / 5.405e9


def independent_point(sat, vel, r, fd, h, guess_lat_lon):
    """Solve |X - S| = R, V.(X - S) = lambda R fd / 2 for X on the surface at geodetic height h, with pyproj's
    WGS84 (EPSG:4979 -> EPSG:4978) and scipy's root finder over (lat, lon)."""
    from pyproj import Transformer
    from scipy.optimize import root

    to_ecef = Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)

    def f(p):
        x = np.array(to_ecef.transform(p[1], p[0], h))
        d = x - sat
        return [(np.linalg.norm(d) - r) / 1e3, (vel @ d - WAVELENGTH * r * fd / 2) / np.linalg.norm(vel) / 1e3]

    sol = root(f, guess_lat_lon, method="hybr", options={"xtol": 1e-13})
    assert np.abs(f(sol.x)).max() < 1e-8  # km: 10 micrometres
    return sol.x, np.array(to_ecef.transform(sol.x[1], sol.x[0], h))


@pytest.mark.parametrize("doppler, height", [(0.0, 0.0), (-800.0, 1500.0)])
def test_circular_orbit_point_matches_an_independent_solution(doppler, height):
    t = np.array([12.0])
    sat, vel = circular_orbit(t, radius=7_071_000.0, inclination_deg=98.18, ascending_node_lon_deg=20.0)
    r = 850_000.0
    x = range_doppler_to_ecef(sat, vel, r, doppler=doppler, wavelength=WAVELENGTH, height=height)[0]
    lat, lon, h = ecef_to_geodetic(x)
    # a guess off to the right of the track, independent of the code under test: 5 degrees east of nadir
    nadir_lat = np.degrees(np.arcsin(sat[0, 2] / np.linalg.norm(sat[0])))
    nadir_lon = np.degrees(np.arctan2(sat[0, 1], sat[0, 0]))
    (lat_ref, lon_ref), x_ref = independent_point(sat[0], vel[0], r, doppler, height, [nadir_lat, nadir_lon + 5.0])
    assert lat == pytest.approx(lat_ref, abs=1e-8) and lon == pytest.approx(lon_ref, abs=1e-8)  # ~1 mm
    assert h == pytest.approx(height, abs=1e-3)
    assert np.linalg.norm(x - x_ref) < 0.01
    # right-looking: the target lies on the side of V x S (along-track x up)
    assert (x - sat[0]) @ np.cross(vel[0], sat[0]) > 0


def test_circular_orbit_velocity_and_orbit_interpolation():
    t = np.arange(0.0, 101.0, 10.0)
    pos, vel = circular_orbit(t, radius=7_071_000.0, inclination_deg=98.18)
    fine = np.array([3.3, 47.0, 95.5])
    want_p, want_v = circular_orbit(fine, radius=7_071_000.0, inclination_deg=98.18)
    got_p, got_v = interpolate_orbit(t, pos, vel, fine)
    assert np.abs(got_p - want_p).max() < 1e-3 and np.abs(got_v - want_v).max() < 1e-3
    # the analytic ECEF velocity is the derivative of the position (central difference, 1 ms)
    p1, _ = circular_orbit(fine + 1e-3, radius=7_071_000.0, inclination_deg=98.18)
    p0, _ = circular_orbit(fine - 1e-3, radius=7_071_000.0, inclination_deg=98.18)
    np.testing.assert_allclose((p1 - p0) / 2e-3, want_v, atol=1e-3)


# ------------------------------------------------------------------------------------------------ the real crop


def crop_files():
    return next(CROP.glob("*.tiff")), next(CROP.glob("s1a-*.xml")), next(CROP.glob("*.EOF"))


@pytest.fixture(scope="module")
def crop():
    from sarpipe.io.safe import open_s1_measurement

    tiff, xml, eof = crop_files()
    return open_s1_measurement(tiff, xml, orbit=eof).load()


class XmlGrid:
    """The annotation's geolocation grid read with ElementTree, interpolated bilinearly in (time, range time)."""

    def __init__(self, xml):
        from scipy.interpolate import RegularGridInterpolator

        root = ET.parse(xml).getroot()
        pts = root.findall("geolocationGrid/geolocationGridPointList/geolocationGridPoint")
        line = np.array([int(p.findtext("line")) for p in pts])
        pixel = np.array([int(p.findtext("pixel")) for p in pts])
        lines, pixels = np.unique(line), np.unique(pixel)
        shape = (lines.size, pixels.size)
        order = np.lexsort((pixel, line))
        get = lambda tag: np.array([float(pts[k].findtext(tag)) for k in order]).reshape(shape)  # noqa: E731
        self.time = np.array([np.datetime64(pts[k].findtext("azimuthTime"), "ns") for k in order]).reshape(shape)
        self.t0 = self.time[0, 0]
        row_t = ((self.time - self.t0) / np.timedelta64(1, "ns")).astype(float).mean(axis=1) / 1e9
        tau = get("slantRangeTime").mean(axis=0)
        self.table = {k: get(k) for k in ("latitude", "longitude", "height")}
        self.interp = {k: RegularGridInterpolator((row_t, tau), v) for k, v in self.table.items()}
        self.lines, self.pixels, self.tau_grid = lines, pixels, get("slantRangeTime")
        info = "imageAnnotation/imageInformation/"
        self.ati = float(root.findtext(info + "azimuthTimeInterval"))
        self.tau0 = float(root.findtext(info + "slantRangeTime"))
        self.fs = float(root.findtext("generalAnnotation/productInformation/rangeSamplingRate"))
        self.lpb = int(root.findtext("swathTiming/linesPerBurst"))
        self.bursts = [
            np.datetime64(b.findtext("azimuthTime"), "ns") for b in root.findall("swathTiming/burstList/burst")
        ]

    def at(self, line, pixel, name):
        """Grid value at full-swath (line, pixel) of a TOPS SLC (line -> burst start + offset * interval)."""
        line, pixel = np.asarray(line, float), np.asarray(pixel, float)
        b = (line // self.lpb).astype(int)
        start = np.array(self.bursts)[b]
        t = ((start - self.t0) / np.timedelta64(1, "ns")).astype(float) / 1e9 + (line - b * self.lpb) * self.ati
        tau = self.tau0 + pixel / self.fs
        return self.interp[name](np.stack([t, tau], axis=-1))


@needs_crop
def test_orbit_geolocation_reproduces_the_annotation_grid(crop):
    from sarpipe.io.s1_annotation import seconds_since

    _, xml, _ = crop_files()
    g = XmlGrid(xml)
    epoch = np.datetime64(crop.attrs["azimuth_time_epoch"][:-1], "ns")
    t = seconds_since(g.time.ravel(), epoch)
    inside = (t > crop["orbit_time"].values[0]) & (t < crop["orbit_time"].values[-1])
    assert inside.sum() >= 40  # the grid rows within the orbit window around the crop
    pos, vel = interpolate_orbit(
        crop["orbit_time"].values, crop["orbit_position"].values, crop["orbit_velocity"].values, t[inside]
    )
    x = range_doppler_to_ecef(
        pos,
        vel,
        g.tau_grid.ravel()[inside] * C / 2,
        wavelength=C / crop.attrs["carrier_frequency"],
        height=g.table["height"].ravel()[inside],
    )
    lat, lon, _ = ecef_to_geodetic(x)
    north = (lat - g.table["latitude"].ravel()[inside]) * 111_320.0
    east = (lon - g.table["longitude"].ravel()[inside]) * 111_320.0 * np.cos(np.radians(lat))
    assert np.hypot(north, east).max() < 0.1

    # at the crop's own pixels: the orbit against the grid interpolated in (time, range) ...
    rows, cols = np.meshgrid([0, 150, 300, 450, 600], [0, 350, 700, 1050, 1400], indexing="ij")
    line, pixel = rows + crop.attrs["first_line"], cols + crop.attrs["first_sample"]
    h = g.at(line, pixel, "height")
    lat, lon, _ = dataset_geolocation(crop, rows, cols, height=h)
    north = (lat - g.at(line, pixel, "latitude")) * 111_320.0
    east = (lon - g.at(line, pixel, "longitude")) * 111_320.0 * np.cos(np.radians(lat))
    assert np.hypot(north, east).max() < 5.0
    # ... while interpolating the grid in its line numbers is ~1 km off mid-burst (TOPS bursts overlap in time)
    from scipy.interpolate import RegularGridInterpolator

    naive = RegularGridInterpolator((g.lines, g.pixels), g.table["latitude"])(np.stack([line, pixel], -1))
    assert np.abs(naive - lat).max() * 111_320.0 > 500


@needs_crop
def test_crop_geotiff_gcps_match_the_grid(crop, tmp_path):
    import rasterio

    from sarpipe.export import write_geotiff

    _, xml, _ = crop_files()
    g = XmlGrid(xml)
    path = write_geotiff(crop, tmp_path / "crop.tif", mode="db")
    with rasterio.open(path) as src:
        gcps, crs = src.gcps
        assert crs.to_epsg() == 4326 and src.crs is None or src.crs.to_epsg() == 4326
        assert src.block_shapes == [(256, 256)] and src.compression.value.lower() == "deflate"
        assert src.overviews(1) == [2, 4, 8]  # down to the first with its longer side <= 256 (1401 / 8 = 175)
        assert src.shape == (601, 1401)
        assert "GCPs" in src.tags()["SARPIPE_GEOMETRY"]
    assert len(gcps) == 48
    rows = np.array([p.row for p in gcps]) - 0.5  # GDAL addresses pixel corners: centre of pixel i is i + 0.5
    cols = np.array([p.col for p in gcps]) - 0.5
    assert rows.min() == 0 and rows.max() == 600 and cols.min() == 0 and cols.max() == 1400
    line, pixel = rows + crop.attrs["first_line"], cols + crop.attrs["first_sample"]
    np.testing.assert_allclose([p.y for p in gcps], g.at(line, pixel, "latitude"), atol=1e-9)
    np.testing.assert_allclose([p.x for p in gcps], g.at(line, pixel, "longitude"), atol=1e-9)
    np.testing.assert_allclose([p.z for p in gcps], g.at(line, pixel, "height"), atol=1e-6)


@needs_crop
def test_gcp_reprojection_puts_a_pixel_where_the_grid_says(crop, tmp_path):
    import rasterio
    from rasterio.warp import Resampling, calculate_default_transform, reproject
    from scipy import ndimage

    from sarpipe.export import write_geotiff

    _, xml, _ = crop_files()
    g = XmlGrid(xml)
    spikes = [(300, 700), (100, 200), (520, 1250)]
    ds = crop.copy(deep=True)
    ds["slc"].values[:] = 0
    for r, c in spikes:
        ds["slc"].values[r, c] = 1000
    path = write_geotiff(ds, tmp_path / "spikes.tif", overviews=False)
    with rasterio.open(path) as src:
        gcps, crs = src.gcps
        data = src.read(1)
        transform, width, height = calculate_default_transform(crs, "EPSG:4326", src.width, src.height, gcps=gcps)
    out = np.zeros((height, width), np.float32)
    # max: a one-pixel target (3.3 m in ground range) is narrower than an output pixel, nearest could skip it
    reproject(
        data, out, gcps=gcps, src_crs=crs, dst_transform=transform, dst_crs="EPSG:4326", resampling=Resampling.max
    )
    labels, n = ndimage.label(out > 0)
    assert n == len(spikes)
    found = [transform @ (j + 0.5, i + 0.5) for i, j in ndimage.center_of_mass(out > 0, labels, range(1, n + 1))]
    for r, c in spikes:
        lat = g.at(r + crop.attrs["first_line"], c + crop.attrs["first_sample"], "latitude")
        lon = g.at(r + crop.attrs["first_line"], c + crop.attrs["first_sample"], "longitude")
        d_col = min(abs(x - lon) / transform.a + abs(y - lat) / abs(transform.e) for x, y in found)
        assert d_col <= 2.0  # output pixels (~5.5 m x 7 m)
    # and the real amplitudes warp onto a footprint whose corners are the grid's
    path = write_geotiff(crop, tmp_path / "amp.tif", overviews=False)
    with rasterio.open(path) as src:
        transform, width, height = calculate_default_transform(
            src.gcps[1], "EPSG:4326", src.width, src.height, gcps=src.gcps[0]
        )
    corners_lat = g.at(
        np.array([0, 600]) + crop.attrs["first_line"], np.array([0, 1400]) + crop.attrs["first_sample"], "latitude"
    )
    assert transform.f >= corners_lat.max() - 1e-6 and transform.f + height * transform.e <= corners_lat.min() + 1e-6


# ------------------------------------------------------------------------------------------------ orbit-only scenes


def test_scene_with_only_an_orbit_gets_gcps_from_it(base_attrs, tmp_path):
    import rasterio

    from sarpipe.export import write_geotiff
    from sarpipe.model import sar_dataset

    rng = np.random.default_rng(1)
    x = (rng.standard_normal((64, 48)) + 1j * rng.standard_normal((64, 48))).astype(np.complex64)
    attrs = {**base_attrs, "near_range": 850_000.0, "carrier_frequency": 5.405e9, "look_side": "right"}
    ds = sar_dataset(x, attrs, name="slc")
    t_orb = np.arange(-20.0, 21.0, 10.0)
    pos, vel = circular_orbit(t_orb, radius=7_071_000.0, inclination_deg=98.18)
    ds = ds.assign_coords(orbit_time=("orbit_time", t_orb))
    ds["orbit_position"] = (("orbit_time", "xyz"), pos)
    ds["orbit_velocity"] = (("orbit_time", "xyz"), vel)
    with rasterio.open(write_geotiff(ds, tmp_path / "o.tif")) as src:
        gcps, crs = src.gcps
        assert crs.to_epsg() == 4326 and "orbit" in src.tags()["SARPIPE_GEOMETRY"]
    rows = np.array([p.row for p in gcps]) - 0.5
    cols = np.array([p.col for p in gcps]) - 0.5
    t = np.interp(rows, np.arange(64), ds["azimuth_time"].values)
    sat, v = circular_orbit(t, radius=7_071_000.0, inclination_deg=98.18)
    r = np.interp(cols, np.arange(48), ds["slant_range"].values)
    for k in (0, len(gcps) // 2, len(gcps) - 1):
        nadir = [
            np.degrees(np.arcsin(sat[k, 2] / np.linalg.norm(sat[k]))),
            np.degrees(np.arctan2(sat[k, 1], sat[k, 0])) + 5,
        ]
        (lat, lon), _ = independent_point(sat[k], v[k], r[k], 0.0, 0.0, nadir)
        assert gcps[k].y == pytest.approx(lat, abs=1e-7) and gcps[k].x == pytest.approx(lon, abs=1e-7)


# ------------------------------------------------------------------------------------------------ figures


def test_window_theory_curves_equal_closed_forms():
    from sarpipe.figures import window_response_db

    x = np.linspace(-6.3, 6.3, 127)
    floor = lambda db: np.maximum(db, -80.0)  # noqa: E731 - at the nulls only the floor is meaningful
    np.testing.assert_allclose(floor(window_response_db("rect", x)), floor(10 * np.log10(np.sinc(x) ** 2)), atol=1e-3)
    a = 0.75  # generalised Hamming a + (1 - a) cos(2 pi u): h(x) = a sinc(x) + (1 - a)/2 (sinc(x - 1) + sinc(x + 1))
    h = a * np.sinc(x) + (1 - a) / 2 * (np.sinc(x - 1) + np.sinc(x + 1))
    np.testing.assert_allclose(
        floor(window_response_db("hamming:0.75", x)), floor(10 * np.log10((h / a) ** 2)), atol=1e-3
    )


def test_quicklook_figure_and_mask_export(base_attrs, tmp_path):
    import rasterio

    from sarpipe.export import ExportParams, export_image, multilook_db, top_db
    from sarpipe.figures import block_mask
    from sarpipe.model import sar_dataset, save_dataset
    from sarpipe.outputs import written_by_sarpipe

    rng = np.random.default_rng(5)
    x = (rng.standard_normal((96, 64)) + 1j * rng.standard_normal((96, 64))).astype(np.complex64)
    mask = np.zeros(x.shape, bool)
    mask[40:44, 10:30] = True
    ds = sar_dataset(x, base_attrs, name="slc", extra_vars={"rfi_image_mask": mask})
    save_dataset(ds, tmp_path / "scene.zarr")
    info = export_image(tmp_path / "scene.zarr", tmp_path / "out", ExportParams(rfi_mask=True, max_size=32))
    assert info["figure"]["top_db"] == pytest.approx(top_db(multilook_db(ds, "slc", max_size=32)))
    assert info["figure"]["rfi_mask"] and written_by_sarpipe(tmp_path / "out" / "scene_figure.png")
    with rasterio.open(tmp_path / "out" / "scene_rfi_mask.tif") as src:
        assert src.dtypes == ("uint8",)
        np.testing.assert_array_equal(src.read(1), mask.astype(np.uint8))
    ref = mask[:96, :64].reshape(32, 3, 32, 2).any(axis=(1, 3))
    np.testing.assert_array_equal(block_mask(mask, (32, 32)), ref)


@pytest.mark.slow  # a 1024 x 1024 simulation and focus (~15 s on the loaded 2-core machine)
def test_point_target_cut_in_metres_follows_the_theory_curve(tmp_path):
    from sarpipe.figures import point_target_figure_for, window_response_db
    from sarpipe.focus import focus
    from sarpipe.model import SPEED_OF_LIGHT
    from sarpipe.quality import point_target_analysis, processed_bandwidths
    from sarpipe.sensor import SensorParams
    from sarpipe.simulate import simulate

    raw = simulate(
        {
            "sensor": {"preset": "minisar"},
            "scene": {"n_azimuth": 1024, "n_range": 1024},
            "targets": [{"range_index": 512.3, "azimuth_index": 512.4}],
        }
    )
    slc = focus(raw)
    path = point_target_figure_for(slc, tmp_path / "pt.png")
    assert path.stat().st_size > 10_000
    sensor = SensorParams.from_attrs(dict(slc.attrs))
    b_r, _ = processed_bandwidths(sensor)
    t = slc.attrs["point_targets"][0]
    a_idx = (t["azimuth_time"] - slc["azimuth_time"].values[0]) * sensor.prf
    r_idx = (t["slant_range"] - sensor.near_range) / sensor.range_pixel_spacing
    res = point_target_analysis(
        slc["slc"].values, a_idx, r_idx, range_spacing=sensor.range_pixel_spacing, keep_arrays=True
    )
    # the theory curve on the figure's metre axis: its -3 dB width is the measured range IRW
    cell = SPEED_OF_LIGHT / (2 * b_r)
    x = np.linspace(-2, 2, 40001)
    above = x[window_response_db("rect", x) > 10 * np.log10(0.5)]
    assert (above[-1] - above[0]) * cell == pytest.approx(res.range.irw_m, rel=0.03)
