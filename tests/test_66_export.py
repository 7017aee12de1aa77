"""Export: GeoTIFF in radar geometry (values read back equal the image; a simulated scene is not georeferenced: its
transform maps pixels to slant range and along-track metres, no CRS, grid in the tags) and PNG quicklooks (multilooked intensity in dB against a plain-numpy reference, square-ish pixels, scaling), written
atomically."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import xarray as xr

from sarpipe.errors import InputError
from sarpipe.export import look_factors, multilook_db, to_uint8, write_geotiff, write_quicklook
from sarpipe.model import SPEED_OF_LIGHT, sar_dataset

pytestmark = pytest.mark.filterwarnings("error::rasterio.errors.NotGeoreferencedWarning")  # never: issue 12


@pytest.fixture
def slc(base_attrs) -> xr.Dataset:
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((50, 37)) + 1j * rng.standard_normal((50, 37))).astype(np.complex64)
    ds = sar_dataset(x, base_attrs, name="slc", azimuth_time0=12.5)
    return ds


@pytest.mark.parametrize("block_lines", [1024, 7])
def test_geotiff_amplitude_reads_back(slc, tmp_path, block_lines):
    path = write_geotiff(slc, tmp_path / "a.tif", block_lines=block_lines)
    x = slc["slc"].values
    with rasterio.open(path) as src:
        data = src.read(1)
        assert src.crs is None and not src.gcps[0], "a simulated scene: not georeferenced"
        dr = SPEED_OF_LIGHT / (2 * slc.attrs["range_sampling_rate"])
        dx = slc.attrs["velocity"] / slc.attrs["prf"]
        # pixel (i, j) centre -> (slant_range[j], azimuth_time[i] * velocity), in metres
        rg_m, az_m = src.transform @ (3.5, 2.5)
        assert rg_m == pytest.approx(slc["slant_range"].values[3]) and az_m == pytest.approx(
            slc["azimuth_time"].values[2] * slc.attrs["velocity"]
        )
        assert src.transform.a == pytest.approx(dr) and src.transform.e == pytest.approx(dx)
        assert src.block_shapes == [(256, 256)] or max(src.shape) < 256
        tags = src.tags()
        assert src.dtypes == ("float32",)
    np.testing.assert_allclose(data, np.hypot(x.real.astype(np.float64), x.imag.astype(np.float64)), rtol=1e-6)
    assert "NOT georeferenced" in tags["SARPIPE_GEOMETRY"]
    assert float(tags["SLANT_RANGE_SPACING_M"]) == pytest.approx(
        SPEED_OF_LIGHT / (2 * slc.attrs["range_sampling_rate"])
    )
    assert float(tags["AZIMUTH_TIME_SPACING_S"]) == pytest.approx(1 / slc.attrs["prf"])
    assert float(tags["AZIMUTH_TIME_FIRST_S"]) == 12.5 and float(tags["SLANT_RANGE_FIRST_M"]) == slc.attrs["near_range"]
    assert not list(tmp_path.glob(".*"))


def test_geotiff_complex_and_db(slc, tmp_path):
    with rasterio.open(write_geotiff(slc, tmp_path / "c.tif", mode="complex")) as src:
        np.testing.assert_array_equal(src.read(1), slc["slc"].values)
    with rasterio.open(write_geotiff(slc, tmp_path / "d.tif", mode="db")) as src:
        x = slc["slc"].values.astype(np.complex128)
        np.testing.assert_allclose(src.read(1), 10 * np.log10(np.abs(x) ** 2), atol=1e-4)


def test_failed_export_leaves_nothing(slc, tmp_path):
    with pytest.raises(InputError, match="no variable 'echo'"):
        write_geotiff(slc, tmp_path / "x.tif", "echo")
    with pytest.raises(InputError):
        write_geotiff(slc, tmp_path / "x.tif", mode="phase")
    assert list(tmp_path.iterdir()) == []


def test_look_factors_give_square_pixels_within_max_size():
    # azimuth pixels 1 m, range pixels 4 m: average 4 lines per range sample
    assert look_factors(4000, 1000, 1.0, 4.0, 1000) == (4, 1)
    la, lr = look_factors(8000, 1000, 1.0, 4.0, 1000)
    assert 8000 / la <= 1000 and 1000 / lr <= 1000 and la / lr == 4
    assert look_factors(100, 100, 1.0, 1.0, 1000) == (1, 1)


def test_quicklook_matches_numpy_multilook(slc, tmp_path):
    x = slc["slc"].values.astype(np.complex128)
    az_sp = slc.attrs["velocity"] / slc.attrs["prf"]
    rg_sp = SPEED_OF_LIGHT / (2 * slc.attrs["range_sampling_rate"])
    la, lr = look_factors(50, 37, az_sp, rg_sp, 16)
    db = multilook_db(slc, max_size=16)
    na, nr = 50 // la, 37 // lr
    ref = 10 * np.log10((np.abs(x[: na * la, : nr * lr]) ** 2).reshape(na, la, nr, lr).mean(axis=(1, 3)))
    np.testing.assert_allclose(db, ref, atol=1e-4)
    assert max(db.shape) <= 16

    path, top = write_quicklook(slc, tmp_path / "q.png", max_size=16, dynamic_range_db=20.0)
    from PIL import Image

    img = np.asarray(Image.open(path))
    np.testing.assert_array_equal(img, to_uint8(ref.astype(np.float32), top=top, dynamic_range_db=20.0))
    assert top == pytest.approx(np.percentile(ref, 99.9), abs=1e-3)


def test_to_uint8_scaling():
    db = np.array([[-100.0, 10.0, 30.0, 40.0, 50.0, -np.inf]], dtype=np.float32)
    out = to_uint8(db, top=40.0, dynamic_range_db=30.0)
    np.testing.assert_array_equal(out, [[0, 0, round(255 * 20 / 30), 255, 255, 0]])
