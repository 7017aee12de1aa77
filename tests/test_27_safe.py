"""Sentinel-1 SAFE / measurement readers: the real IW crop's attributes equal its annotation XML's values (read here
with ElementTree, independently of the reader), its image opens with the right shape, dtype, samples and
coordinates; xarray-sentinel's own small products open through our reader with the same time and range axes as
xarray-sentinel gives; the orbit file's state vectors; TOPS defocus refused (exit 2), stripmap defocus works."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import rasterio

from sarpipe.errors import InputError

C = 299_792_458.0
ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SARPIPE_SHARED_DATA", ROOT.parent / "shared" / "data"))
CROP = SHARED / "s1_iw_slc_crop"
XS = SHARED / "xarray_sentinel_safe"
S3_SAFE = XS / "S1A_S3_SLC__1SDV_20210401T152855_20210401T152914_037258_04638E_6001.SAFE"
IW_SAFE = XS / "S1A_IW_SLC__1SDH_20220414T102209_20220414T102236_042768_051AA4_E677.SAFE"

needs_crop = pytest.mark.skipif(
    not CROP.is_dir(), reason=f"shared data absent: {CROP} (set SARPIPE_SHARED_DATA to the shared data folder)"
)
needs_xs = pytest.mark.skipif(
    not XS.is_dir(), reason=f"shared data absent: {XS} (set SARPIPE_SHARED_DATA to the shared data folder)"
)


def crop_files():
    return next(CROP.glob("*.tiff")), next(CROP.glob("s1a-*.xml")), next(CROP.glob("*.EOF"))


def t64(text: str) -> np.datetime64:
    return np.datetime64(text.strip(), "ns")


@pytest.fixture(scope="module")
def crop():
    from sarpipe.io.safe import open_s1_measurement

    tiff, xml, eof = crop_files()
    return open_s1_measurement(tiff, xml, orbit=eof)


@needs_crop
def test_crop_attributes_equal_the_annotation(crop):
    _, xml, _ = crop_files()
    root = ET.parse(xml).getroot()
    f = lambda p: float(root.findtext(p))  # noqa: E731
    a = crop.attrs
    line0, sample0 = 9800 - 1, 11000 - 1  # the crop: lines 9800.., samples 11000.. (1-based), see its README
    assert (a["first_line"], a["first_sample"]) == (line0, sample0)
    fs = f("generalAnnotation/productInformation/rangeSamplingRate")
    assert a["carrier_frequency"] == f("generalAnnotation/productInformation/radarFrequency") == 5.405000454334350e09
    assert a["range_sampling_rate"] == fs
    dl = "generalAnnotation/downlinkInformationList/downlinkInformation/"
    assert a["radar_prf"] == f(dl + "prf")
    assert a["pulse_duration"] == f(dl + "downlinkValues/txPulseLength")
    assert a["chirp_rate"] == f(dl + "downlinkValues/txPulseRampRate")
    ati = f("imageAnnotation/imageInformation/azimuthTimeInterval")
    assert a["prf"] == pytest.approx(1 / ati, rel=1e-15)  # the SLC's line rate (TOPS: not the radar PRF)
    tau0 = f("imageAnnotation/imageInformation/slantRangeTime")
    assert a["near_range"] == pytest.approx((tau0 + sample0 / fs) * C / 2, abs=1e-6)
    # the window's centre: azimuth time of its middle line (burst 7 of 1514 lines), range time of its middle sample
    lpb = int(root.findtext("swathTiming/linesPerBurst"))
    burst = root.findall("swathTiming/burstList/burst")[line0 // lpb]
    t_first = t64(burst.findtext("azimuthTime")) + np.timedelta64(round((line0 - 6 * lpb) * ati * 1e9), "ns")
    assert a["azimuth_time_epoch"] == np.datetime_as_string(t_first, unit="us") + "Z"
    t_mid = t_first + np.timedelta64(round(300 * ati * 1e9), "ns")
    tau_mid = tau0 + (sample0 + 700) / fs
    dcs = root.findall("dopplerCentroid/dcEstimateList/dcEstimate")
    dc = min(dcs, key=lambda e: abs(t64(e.findtext("azimuthTime")) - t_mid))
    coeffs = [float(v) for v in dc.findtext("dataDcPolynomial").split()]
    x = tau_mid - float(dc.findtext("t0"))
    assert a["doppler_centroid"] == pytest.approx(sum(c * x**k for k, c in enumerate(coeffs)), rel=1e-12)
    x_all = tau0 + (sample0 + np.arange(1401)) / fs - float(dc.findtext("t0"))
    np.testing.assert_allclose(crop["doppler_centroid_range"].values, sum(c * x_all**k for k, c in enumerate(coeffs)))
    fms = root.findall("generalAnnotation/azimuthFmRateList/azimuthFmRate")
    fm = min(fms, key=lambda e: abs(t64(e.findtext("azimuthTime")) - t_mid))
    fc = [float(v) for v in fm.findtext("azimuthFmRatePolynomial").split()]
    assert a["azimuth_fm_rate_coefficients"] == fc and a["azimuth_fm_rate_t0"] == float(fm.findtext("t0"))
    ka = sum(c * (tau_mid - float(fm.findtext("t0"))) ** k for k, c in enumerate(fc))
    assert a["azimuth_fm_rate"] == pytest.approx(ka, rel=1e-12)
    # effective velocity from Ka = -2 Vr^2 / (lambda R): between the ground speed and the orbit speed
    wavelength = C / a["carrier_frequency"]
    assert a["velocity"] == pytest.approx(np.sqrt(-ka * wavelength * tau_mid * C / 2 / 2), rel=1e-12)
    assert 0.9 * a["platform_speed"] < a["velocity"] < a["platform_speed"]
    assert (a["acquisition_mode"], a["swath"], a["polarisation"], a["look_side"]) == ("IW", "IW3", "VV", "right")


@needs_crop
@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # the crop itself has none
def test_crop_image_shape_dtype_samples_and_coordinates(crop):

    tiff, xml, _ = crop_files()
    assert crop["slc"].shape == (601, 1401) and crop["slc"].dtype == np.complex64
    with rasterio.open(tiff) as src:
        raw = src.read(1)
    np.testing.assert_array_equal(crop["slc"].values, raw)  # CInt16 counts, unscaled
    root = ET.parse(xml).getroot()
    ati = float(root.findtext("imageAnnotation/imageInformation/azimuthTimeInterval"))
    np.testing.assert_allclose(np.diff(crop["azimuth_time"].values), ati, rtol=1e-6)
    assert crop["azimuth_time"].values[0] == 0.0
    np.testing.assert_allclose(np.diff(crop["slant_range"].values), C / (2 * crop.attrs["range_sampling_rate"]))
    # the coastline of the README: land (bright, textured) in the first ~270 lines, sea below
    amp = np.abs(crop["slc"].values)
    assert amp[:250].mean() > 3 * amp[350:].mean()


@needs_crop
def test_orbit_file_state_vectors_and_window(crop):
    from sarpipe.io.s1_annotation import seconds_since
    from sarpipe.io.s1_orbit_file import read_orbit_file
    from sarpipe.orbit import interpolate_orbit

    _, xml, eof = crop_files()
    root = ET.parse(eof).getroot()
    osvs = root.findall(".//OSV")
    orbit = read_orbit_file(eof)
    assert len(orbit.times) == len(osvs) == 1186
    assert orbit.position[0].tolist() == [float(osvs[0].findtext(k)) for k in ("X", "Y", "Z")]
    assert orbit.velocity[-1].tolist() == [float(osvs[-1].findtext(k)) for k in ("VX", "VY", "VZ")]
    t = crop["orbit_time"].values
    assert t.min() >= -60 - 10 and t.max() <= crop["azimuth_time"].values[-1] + 60 + 10 and len(t) >= 12
    # the annotation's own state vectors lie on the orbit file's (interpolated) trajectory within a metre
    ann = ET.parse(xml).getroot().findall("generalAnnotation/orbitList/orbit")
    epoch = np.datetime64(crop.attrs["azimuth_time_epoch"][:-1], "ns")
    times = np.array([seconds_since(t64(o.findtext("time")), epoch) for o in ann])
    keep = (times > t.min()) & (times < t.max())
    pos, _ = interpolate_orbit(t, crop["orbit_position"].values, crop["orbit_velocity"].values, times[keep])
    ref = np.array([[float(o.findtext(f"position/{k}")) for k in "xyz"] for o, k_ in zip(ann, keep) if k_])
    assert keep.sum() >= 2 and np.abs(pos - ref).max() < 1.0


@needs_crop
def test_crop_offset_and_window_errors(tmp_path):
    from sarpipe.io.safe import open_s1_measurement

    tiff, xml, _ = crop_files()
    renamed = tmp_path / "crop.tiff"
    renamed.symlink_to(tiff)
    with pytest.raises(InputError, match="offset is unknown"):
        open_s1_measurement(renamed, xml)
    with pytest.raises(InputError, match="two TOPS bursts"):
        open_s1_measurement(renamed, xml, offset=(1514 * 7 - 300, 0))
    ds = open_s1_measurement(renamed, xml, offset=(9799, 10999), window=((10, 20), (5, 9)))
    assert ds["slc"].shape == (10, 4) and (ds.attrs["first_line"], ds.attrs["first_sample"]) == (9809, 11004)
    with pytest.raises(InputError, match="outside"):
        open_s1_measurement(tiff, xml, window=((0, 700), (0, 10)))


@needs_xs
@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # xarray-sentinel's own reads
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # rioxarray's affine use
def test_xarray_sentinel_products_open_with_its_axes():
    import xarray as xr
    import xarray_sentinel

    from sarpipe.io.safe import read_safe_slc, sniff_safe_slc

    assert sniff_safe_slc(S3_SAFE) and sniff_safe_slc(IW_SAFE / "manifest.safe")
    assert not sniff_safe_slc(S3_SAFE / "annotation") and not sniff_safe_slc(CROP)
    s3 = read_safe_slc(S3_SAFE)
    assert list(s3) == ["s3-vh"] and s3["s3-vh"]["slc"].shape == (36895, 18998)
    ref = xr.open_dataset(S3_SAFE, engine="sentinel-1", group="S3/VH")
    ds = s3["s3-vh"]
    np.testing.assert_allclose(ds["slant_range"].values, ref["slant_range_time"].values * C / 2, rtol=0, atol=1e-4)
    epoch = np.datetime64(ds.attrs["azimuth_time_epoch"][:-1], "ns")
    got = epoch + (ds["azimuth_time"].values[[0, -1]] * 1e9).round().astype("timedelta64[ns]")
    assert np.abs((got - ref["azimuth_time"].values[[0, -1]]).astype(np.int64)).max() < 2000  # < 2 us
    assert ds.attrs["acquisition_mode"] == "S3" and ds.attrs["prf"] == pytest.approx(ds.attrs["radar_prf"], rel=1e-7)

    iw = read_safe_slc(IW_SAFE)
    assert list(iw) == [f"iw1-hh-burst{k}" for k in range(1, 10)]
    burst = iw["iw1-hh-burst3"]
    full = xr.open_dataset(IW_SAFE, engine="sentinel-1", group="IW1/HH")
    ref = xarray_sentinel.crop_burst_dataset(full, burst_index=2)
    lines = ref["line"].values
    k = int(np.flatnonzero(lines == burst.attrs["first_line"])[0])
    epoch = np.datetime64(burst.attrs["azimuth_time_epoch"][:-1], "ns")
    got = epoch + (burst["azimuth_time"].values * 1e9).round().astype("timedelta64[ns]")
    want = ref["azimuth_time"].values[k : k + burst.sizes["azimuth"]]
    assert np.abs((got - want).astype(np.int64)).max() < 2000
    assert burst.attrs["burst_index"] == 2 and burst.sizes["azimuth"] < 1500


def test_not_a_safe_folder(tmp_path):
    from sarpipe.io.safe import read_safe_slc, sniff_safe_slc

    assert not sniff_safe_slc(tmp_path)
    with pytest.raises(InputError, match="not a Sentinel-1 SAFE"):
        read_safe_slc(tmp_path)
    (tmp_path / "manifest.safe").write_text("<x/>")
    (tmp_path / "annotation").mkdir()
    (tmp_path / "annotation" / "s1a-s3-slc-vv-x.xml").write_text("<product>")
    assert sniff_safe_slc(tmp_path)
    with pytest.raises(InputError, match="not a readable annotation"):
        read_safe_slc(tmp_path)
    with pytest.warns(UserWarning, match="skipped"), pytest.raises(InputError, match="no readable SLC part"):
        read_safe_slc(tmp_path, on_error="skip")


@needs_crop
def test_tops_defocus_is_refused_with_exit_2(crop, tmp_path, capsys):
    from sarpipe.cli import main
    from sarpipe.model import save_dataset

    store = save_dataset(crop, tmp_path / "iw.zarr")
    assert main(["defocus", str(store), "-o", str(tmp_path / "raw.zarr")]) == 2
    err = capsys.readouterr().err
    assert "acquisition_mode" in err and "TOPS (IW)" in err and "Traceback" not in err
    assert not (tmp_path / "raw.zarr").exists()


def band_limited_scene(shape, prf, fs, f_dc, az_band, rg_band, seed=7):
    """Complex Gaussian reflectivity with a Hann-shaped spectrum ``az_band`` [Hz] wide around ``f_dc`` (azimuth)
    and ``rg_band`` [Hz] wide around 0 (range): strictly inside the processed bands."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    fa = np.fft.fftfreq(shape[0], 1 / prf)
    ua = (np.mod(fa - f_dc + prf / 2, prf) - prf / 2) / az_band
    ur = np.fft.fftfreq(shape[1], 1 / fs) / rg_band
    ha = np.where(np.abs(ua) <= 0.5, np.cos(np.pi * ua) ** 2, 0.0)
    hr = np.where(np.abs(ur) <= 0.5, np.cos(np.pi * ur) ** 2, 0.0)
    return np.fft.ifft2(np.fft.fft2(x) * ha[:, None] * hr[None, :]).astype(np.complex64)


@needs_xs
def test_stripmap_safe_window_defocuses_and_refocuses():
    """A SAFE stripmap window (its rasters are zeros: a band-limited scene is put in) goes through defocus and back:
    the attributes the reader derives (chirp, sampling, PRF, velocity, Doppler) make an invertible pair."""
    from sarpipe.focus import defocus, focus
    from sarpipe.io.safe import open_s1_measurement
    from sarpipe.model import last_record

    tiff = next((S3_SAFE / "measurement").glob("*.tiff"))
    xml = next((S3_SAFE / "annotation").glob("s1*.xml"))
    ds = open_s1_measurement(tiff, xml, window=((1000, 1512), (2000, 5200))).load()
    a = ds.attrs
    x = band_limited_scene(
        ds["slc"].shape,
        a["prf"],
        a["range_sampling_rate"],
        a["doppler_centroid"],
        0.8 * a["prf"],
        0.8 * abs(a["chirp_rate"]) * a["pulse_duration"],
    )
    ds["slc"].values[:] = x
    # the scene is periodic (band-limited by FFT), so the pair is the circular one (linear differs near the edges)
    raw = defocus(ds, range_correlation="circular")
    assert raw.attrs["acquisition_mode"] == "S3" and raw["echo"].shape == ds["slc"].shape
    back = focus(raw, range_correlation="circular")
    edge = last_record(back.attrs, "focus")["params"]["rcm_margin"]  # RCM does not wrap exactly at the edges
    assert 0 < edge < 200
    err = np.linalg.norm((back["slc"].values - x)[:, edge:-edge]) / np.linalg.norm(x[:, edge:-edge])
    assert err < 1e-3


@needs_crop
def test_our_detector_on_the_real_crop(crop):
    """The README knows no RFI in the crop: our image-domain detector (restricted to the radar band by the
    annotation-derived sensor) flags no line; a narrowband tone added to lines 200..259 is found there."""
    from sarpipe.rfi.detect import detect_image
    from sarpipe.sensor import SensorParams

    sensor = SensorParams.from_attrs(dict(crop.attrs))
    image = crop["slc"].values
    assert detect_image(image, sensor=sensor).lines.sum() == 0
    tone = 300 * np.exp(2j * np.pi * 0.1 * np.arange(image.shape[1]))
    hit = image.copy()
    hit[200:260] += tone.astype(np.complex64)
    lines = np.flatnonzero(detect_image(hit, sensor=sensor).lines)
    assert set(range(200, 260)) <= set(lines) and lines.min() >= 200 - 30 and lines.max() < 260 + 30
