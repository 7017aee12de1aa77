"""The raw/SLC data contract: construction, validation errors that name what is wrong, Zarr v3 round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from sarpipe import __version__
from sarpipe.errors import InputError
from sarpipe.model import (
    REQUIRED_ATTRS,
    SPEED_OF_LIGHT,
    open_raw,
    open_slc,
    sar_dataset,
    save_dataset,
    validate,
    with_history,
)


def test_coordinates_follow_the_contract(small_raw, base_attrs):
    j = np.arange(small_raw.sizes["range"])
    expected = base_attrs["near_range"] + j * SPEED_OF_LIGHT / (2 * base_attrs["range_sampling_rate"])
    np.testing.assert_allclose(small_raw.slant_range.values, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.diff(small_raw.azimuth_time.values), 1 / base_attrs["prf"], rtol=1e-12)
    assert small_raw.echo.dtype == np.complex64
    assert small_raw.slant_range.dtype == np.float64 and small_raw.azimuth_time.dtype == np.float64


@pytest.mark.parametrize("name", sorted(REQUIRED_ATTRS))
def test_each_missing_attribute_is_named(small_raw, name):
    del small_raw.attrs[name]
    with pytest.raises(InputError, match=f"attribute '{name}'"):
        validate(small_raw, "raw")


@pytest.mark.parametrize(
    "name,value,why",
    [
        ("prf", -1700.0, "positive"),
        ("velocity", 0.0, "positive"),
        ("chirp_rate", 0.0, "non-zero"),
        ("carrier_frequency", float("nan"), "finite"),
        ("pulse_duration", "20us", "number"),
        ("range_sampling_rate", True, "number"),
    ],
)
def test_bad_attribute_values(small_raw, name, value, why):
    small_raw.attrs[name] = value
    with pytest.raises(InputError, match=f"attribute '{name}'.*{why}"):
        validate(small_raw, "raw")


def test_negative_chirp_rate_is_allowed(small_raw):
    small_raw.attrs["chirp_rate"] = -1e12
    validate(small_raw, "raw")


def test_wrong_dtype_nan_and_empty_axis(small_raw, base_attrs):
    bad = small_raw.copy()
    bad["echo"] = bad.echo.astype(np.complex128)
    with pytest.raises(InputError, match="variable 'echo'.*complex64"):
        validate(bad, "raw")

    nan = small_raw.copy(deep=True)
    nan.echo.values[3, 4] = np.nan
    with pytest.raises(InputError, match="variable 'echo'.*NaN"):
        validate(nan, "raw")
    validate(nan, "raw", check_values=False)  # the scan is what finds it

    empty = sar_dataset(np.zeros((0, 8), np.complex64), base_attrs)
    with pytest.raises(InputError, match="'azimuth' axis is empty"):
        validate(empty, "raw")


def test_missing_variable_and_wrong_grid(small_raw):
    with pytest.raises(InputError, match="variable 'slc'"):
        validate(small_raw, "slc")
    shifted = small_raw.assign_coords(slant_range=small_raw.slant_range + 10.0)
    with pytest.raises(InputError, match="coordinate 'slant_range'"):
        validate(shifted, "raw")
    transposed = small_raw.transpose("range", "azimuth")
    with pytest.raises(InputError, match="dims"):
        validate(transposed, "raw")


def test_zarr_v3_round_trip_keeps_values_attrs_and_history(tmp_path, small_raw):
    ds = with_history(small_raw, "unit-test", {"window": "hamming:0.75", "n": np.int64(3)})
    path = save_dataset(ds, tmp_path / "raw.zarr")
    meta = json.loads((path / "zarr.json").read_text())
    assert meta["zarr_format"] == 3
    back = open_raw(path)
    np.testing.assert_array_equal(back.echo.values, small_raw.echo.values)
    assert back.echo.dtype == np.complex64
    record = back.attrs["processing_history"][-1]
    assert record["step"] == "unit-test" and record["params"] == {"window": "hamming:0.75", "n": 3}
    assert record["sarpipe_version"] == __version__
    assert not list(tmp_path.glob(".*tmp*"))


def test_open_errors_name_the_file(tmp_path, small_raw):
    with pytest.raises(InputError, match="missing.zarr"):
        open_raw(tmp_path / "missing.zarr")
    save_dataset(small_raw, tmp_path / "raw.zarr")
    with pytest.raises(InputError, match=r"raw\.zarr.*variable 'slc'"):
        open_slc(tmp_path / "raw.zarr")


def test_failed_save_leaves_nothing_and_keeps_the_old_output(tmp_path, small_raw):
    target = tmp_path / "out.zarr"
    save_dataset(small_raw, target)
    before = sorted(p.name for p in target.iterdir())

    class Boom(xr.Dataset):
        __slots__ = ()

        def to_zarr(self, *a, **k):  # writes part of a store, then fails
            super().to_zarr(*a, **{**k, "compute": False})
            raise RuntimeError("killed half way")

    with pytest.raises(RuntimeError, match="half way"):
        save_dataset(Boom(small_raw.data_vars, small_raw.coords, small_raw.attrs), target)
    assert sorted(p.name for p in target.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]


def test_load_dataset_reads_into_memory_and_still_refuses_nan(tmp_path, small_raw):
    save_dataset(small_raw, tmp_path / "ok.zarr")
    from sarpipe.model import load_dataset

    ds = load_dataset(tmp_path / "ok.zarr")
    assert not hasattr(ds.echo.data, "dask") and ds.echo.dtype == np.complex64
    np.testing.assert_array_equal(ds.echo.values, small_raw.echo.values)
    bad = small_raw.copy(deep=True)
    bad.echo.values[1, 2] = np.inf
    save_dataset(bad, tmp_path / "bad.zarr")
    with pytest.raises(InputError, match=r"bad\.zarr: variable 'echo'.*NaN or Inf"):
        load_dataset(tmp_path / "bad.zarr", "raw")


def test_scene_fingerprint_survives_a_store_and_tells_scenes_apart(tmp_path, small_raw):
    from sarpipe.model import load_dataset, save_dataset, scene_fingerprint, with_history

    before = scene_fingerprint(small_raw)
    save_dataset(small_raw, tmp_path / "a.zarr")
    assert scene_fingerprint(load_dataset(tmp_path / "a.zarr")) == before
    assert scene_fingerprint(with_history(small_raw, "simulate", {"seed": 2})) != before
    shifted = small_raw.assign_coords(azimuth_time=small_raw["azimuth_time"] + 1.0)
    assert scene_fingerprint(shifted) != before


def test_missing_chunk_of_a_foreign_store_is_not_guessed_at(tmp_path, small_raw):
    """Stores sarpipe did not write (no ``sarpipe_product``) may omit chunks equal to the fill value on purpose."""
    from sarpipe.model import open_raw

    small_raw.to_zarr(tmp_path / "f.zarr", zarr_format=3, consolidated=False, encoding={"echo": {"chunks": (8, 32)}})
    (tmp_path / "f.zarr" / "echo" / "c" / "1" / "0").unlink()
    assert open_raw(tmp_path / "f.zarr", check_values=False)["echo"].shape == (16, 32)
