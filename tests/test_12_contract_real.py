"""The data contract for real acquisitions (issue 9 section 1): absolute time, CF attributes, processing records
under their own name, segments, and the optional orbit / attitude / calibration items, through focus and back."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import xarray as xr

from sarpipe.cli import main
from sarpipe.errors import InputError
from sarpipe.focus import defocus, defocus_zarr, focus, focus_zarr
from sarpipe.model import (
    CF_ATTRS,
    SPEED_OF_LIGHT,
    azimuth_datetime,
    last_record,
    open_raw,
    open_slc,
    processing_records,
    sar_dataset,
    save_dataset,
    scene_fingerprint,
    validate,
    with_history,
)
from sarpipe.rfi.clean import clean
from sarpipe.segments import check_one_segment, segment_boundaries, split_segments
from sarpipe.sensor import SensorParams

# L-band airborne-like; no antenna_length, so any number of pulses is focusable
ATTRS = {
    "carrier_frequency": 1.25e9,
    "range_sampling_rate": 100e6,
    "chirp_rate": 4e13,
    "pulse_duration": 2e-6,
    "prf": 100.0,
    "velocity": 200.0,
    "near_range": 10_000.0,
    "doppler_centroid": 11.0,
}
EPOCH = "2022-09-18T07:49:21.123456Z"


def _echo(n_az: int, n_rg: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n_az, n_rg)) + 1j * rng.standard_normal((n_az, n_rg))).astype(np.complex64)


def _real_like(n_az: int = 64, n_rg: int = 256) -> xr.Dataset:
    """A raw dataset carrying everything a reader of real data may add (values made up but well formed)."""
    ds = sar_dataset(_echo(n_az, n_rg), {**ATTRS, "azimuth_time_epoch": EPOCH}, azimuth_time0=2.5)
    ds.attrs.update(polarisation="HH", swath="S3", look_side="right", mission="test", acquisition_mode="SM")
    pri = np.full(n_az, 1 / ATTRS["prf"])
    ds = ds.assign_coords(
        pulse_pri=("azimuth", pri),
        pulse_swst=("azimuth", np.full(n_az, 60e-6)),
        pulse_count=("azimuth", np.arange(n_az, dtype=np.int64) + 1000),
        pulse_decimation_code=("azimuth", np.zeros(n_az, np.int8)),  # all zero: the fill value, still stored
        orbit_time=("orbit_time", np.arange(5, dtype=np.float64) * 2.0),
        attitude_time=("attitude_time", np.arange(3, dtype=np.float64) * 4.0),
    )
    position = np.array([7.0e6, 0.0, 0.0]) + np.arange(5)[:, None] * np.array([0.0, 200.0 * 2.0, 0.0])
    ds["orbit_position"] = (("orbit_time", "xyz"), position)
    ds["orbit_velocity"] = (("orbit_time", "xyz"), np.tile([0.0, 200.0, 0.0], (5, 1)))
    q = np.tile([1.0, 0.0, 0.0, 0.0], (3, 1))
    ds["attitude_quaternion"] = (("attitude_time", "quaternion"), q, {"convention": "q0 scalar first, body to ECEF"})
    ds["noise_line"] = (("noise_pulse", "noise_sample"), _echo(2, 100, seed=1))
    ds["doppler_centroid_range"] = (("range",), np.linspace(10.0, 12.0, n_rg))
    ds.attrs["doppler_centroid_method"] = "given"
    return ds


ACQUISITION = (
    "pulse_pri",
    "pulse_swst",
    "pulse_count",
    "pulse_decimation_code",
    "orbit_time",
    "attitude_time",
    "orbit_position",
    "orbit_velocity",
    "attitude_quaternion",
    "noise_line",
    "doppler_centroid_range",
)


def _assert_carried(product: xr.Dataset, raw: xr.Dataset) -> None:
    for name in ACQUISITION:
        assert name in product.variables, name
        np.testing.assert_array_equal(product[name].values, raw[name].values, err_msg=name)
        assert product[name].dims == raw[name].dims, name
    assert product["attitude_quaternion"].attrs["convention"] == raw["attitude_quaternion"].attrs["convention"]
    for key in ("azimuth_time_epoch", "polarisation", "swath", "mission", "acquisition_mode"):
        assert product.attrs[key] == raw.attrs[key], key
    np.testing.assert_array_equal(azimuth_datetime(product), azimuth_datetime(raw))


# ------------------------------------------------------------------------------------------------ time


def test_epoch_gives_absolute_times_to_the_nanosecond():
    ds = _real_like(8, 256)
    got = azimuth_datetime(ds)
    assert got.dtype == np.dtype("datetime64[ns]")
    start = dt.datetime(2022, 9, 18, 7, 49, 21, 123456)  # independent: Python datetime arithmetic
    for k in (0, 1, 7):
        expected = start + dt.timedelta(seconds=2.5 + k / ATTRS["prf"])
        assert got[k] == np.datetime64(expected, "ns")
    assert ds["azimuth_time"].dtype == np.float64  # the kernels keep float64 seconds
    nano = ds.assign_attrs(azimuth_time_epoch="2022-09-18T07:49:21.123456789Z")
    assert azimuth_datetime(nano)[0] - np.datetime64("2022-09-18T07:49:21.123456789", "ns") == np.timedelta64(
        2_500_000_000, "ns"
    )
    orbit = azimuth_datetime(ds, "orbit_time")
    assert orbit[1] - orbit[0] == np.timedelta64(2, "s")


@pytest.mark.parametrize(
    "value", ["yesterday", "2022-13-01T00:00:00Z", "2022-02-30T00:00:00Z", "2022-09-18T07:49:21+02:00", 20220918]
)
def test_a_bad_epoch_is_refused_naming_the_attribute(tmp_path, value):
    ds = _real_like(8, 256).assign_attrs(azimuth_time_epoch=value)
    with pytest.raises(InputError, match="attribute 'azimuth_time_epoch'"):
        validate(ds, "raw")
    store = save_dataset(ds, tmp_path / "bad.zarr")  # written without a check: the reader must refuse it
    with pytest.raises(InputError, match=r"bad\.zarr: attribute 'azimuth_time_epoch'"):
        open_raw(store)


def test_relative_time_has_no_datetime():
    ds = sar_dataset(_echo(4, 256), ATTRS)
    validate(ds, "raw")
    with pytest.raises(InputError, match="azimuth_time_epoch.*relative"):
        azimuth_datetime(ds)


# -------------------------------------------------------------------------------------------------- CF


def test_cf_attrs_are_added_on_saving_and_values_are_unchanged(tmp_path):
    ds = with_history(_real_like(), "simulate", {})
    store = save_dataset(ds, tmp_path / "raw.zarr")
    back = xr.open_zarr(store, consolidated=False)
    present = [n for n in CF_ATTRS if n in back.variables]
    assert {"echo", "azimuth_time", "slant_range", "pulse_pri", "orbit_position", "attitude_quaternion"} <= set(present)
    for name in present:
        units, long_name = CF_ATTRS[name]
        assert (back[name].attrs["units"], back[name].attrs["long_name"]) == (units, long_name), name
        np.testing.assert_array_equal(back[name].values, ds[name].values, err_msg=name)
        assert back[name].dtype == ds[name].dtype, name  # "s" is not decoded into timedelta/datetime
    assert not ds["echo"].attrs  # the caller's dataset is left as it was
    validate(back, "raw")


def test_a_known_variable_with_other_units_is_refused():
    ds = _real_like(8, 256)
    ds["orbit_position"].attrs["units"] = "km"
    with pytest.raises(InputError, match="variable 'orbit_position'.*units must be 'm'"):
        validate(ds, "raw")


# ------------------------------------------------------------------------------------------- records


def test_a_cf_history_string_survives_and_records_go_to_processing_history(tmp_path):
    text = "2021-03-04T05:06:07Z: created by the instrument processor"
    ds = sar_dataset(_echo(16, 256), {**ATTRS, "history": text})
    assert processing_records(ds.attrs) == []  # never a list of characters
    ds = with_history(ds, "simulate", {"seed": 1})
    assert ds.attrs["history"] == text
    back = open_raw(save_dataset(ds, tmp_path / "raw.zarr"))
    assert back.attrs["history"] == text
    assert [r["step"] for r in back.attrs["processing_history"]] == ["simulate"]
    slc = focus(back)
    assert slc.attrs["history"] == text
    assert [r["step"] for r in processing_records(slc.attrs)] == ["simulate", "focus"]


def test_a_store_written_before_processing_history_still_gives_its_records(tmp_path):
    legacy = sar_dataset(_echo(16, 256), ATTRS)
    old_record = {"step": "focus", "params": {"range_window": "hamming:0.75"}, "sarpipe_version": "0.1.0"}
    legacy.attrs["history"] = [{"step": "simulate", "params": {}}, old_record]
    legacy.to_zarr(tmp_path / "old.zarr", zarr_format=3, consolidated=False)  # no CF attrs, no sarpipe_product
    back = open_raw(tmp_path / "old.zarr")
    assert [r["step"] for r in processing_records(back.attrs)] == ["simulate", "focus"]
    assert last_record(back.attrs, "focus")["params"] == {"range_window": "hamming:0.75"}
    renamed = back.copy()
    renamed.attrs = {k: v for k, v in back.attrs.items() if k != "history"}
    renamed.attrs["processing_history"] = processing_records(back.attrs)
    assert scene_fingerprint(renamed) == scene_fingerprint(back)  # images focused from it still match it
    moved = with_history(back, "rfi_clean", {})
    assert "history" not in moved.attrs
    assert [r["step"] for r in moved.attrs["processing_history"]] == ["simulate", "focus", "rfi_clean"]


def test_processing_history_that_is_not_a_list_is_refused():
    ds = sar_dataset(_echo(4, 256), {**ATTRS, "processing_history": "focused once"})
    with pytest.raises(InputError, match="attribute 'processing_history'"):
        validate(ds, "raw")


# ------------------------------------------------------------------------------------------- segments


def _take(n1: int = 40, n2: int = 30, n3: int = 30, n_rg: int = 256) -> xr.Dataset:
    """A data take whose PRI changes at pulse n1 and whose SWST (and sample count) changes at n1 + n2."""
    n = n1 + n2 + n3
    pri = np.r_[np.full(n1, 1 / 100.0), np.full(n2 + n3, 1 / 125.0)]
    swst = np.r_[np.full(n1 + n2, 60e-6), np.full(n3, 62e-6)]
    count = np.r_[np.full(n1 + n2, n_rg), np.full(n3, n_rg - 56)]
    t = np.r_[0.0, np.cumsum(pri[:-1])]
    ds = sar_dataset(_echo(n, n_rg), ATTRS)  # attrs describe the first pulse (prf 100 Hz)
    return ds.assign_coords(
        azimuth_time=("azimuth", t),
        pulse_pri=("azimuth", pri),
        pulse_swst=("azimuth", swst),
        pulse_sample_count=("azimuth", count),
    )


def test_split_segments_gives_valid_parts_at_each_change():
    take = _take()
    assert segment_boundaries(take) == [slice(0, 40), slice(40, 70), slice(70, 100)]
    parts = split_segments(take)
    assert [p.sizes["azimuth"] for p in parts] == [40, 30, 30]
    assert [p.sizes["range"] for p in parts] == [256, 256, 200]
    for part in parts:
        validate(part, "raw")
        check_one_segment(part)
        SensorParams.from_dataset(part)  # pulses evenly spaced by the part's 1/prf
    assert [p.attrs["prf"] for p in parts] == pytest.approx([100.0, 125.0, 125.0], rel=1e-12)
    # the receive window opened 2 us later: the first sample is c/2 * 2 us = 299.79 m further out
    assert parts[2].attrs["near_range"] == pytest.approx(ATTRS["near_range"] + SPEED_OF_LIGHT / 2 * 2e-6, abs=1e-6)
    assert parts[1].attrs["near_range"] == ATTRS["near_range"]
    np.testing.assert_array_equal(parts[1]["echo"].values, take["echo"].values[40:70])
    np.testing.assert_array_equal(parts[2]["echo"].values, take["echo"].values[70:, :200])
    assert [p.attrs["segment_first_pulse"] for p in parts] == [0, 40, 70]


def test_focus_refuses_a_pri_change_naming_the_coordinate_and_pulse(tmp_path, capsys):
    take = _take(40, 60, 0)
    with pytest.raises(InputError, match=r"coordinate 'pulse_pri'.*changes at pulse 40"):
        focus(take)
    raw = save_dataset(take, tmp_path / "raw.zarr")
    out = tmp_path / "slc.zarr"
    assert main(["focus", str(raw), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "raw.zarr: coordinate 'pulse_pri'" in err and "pulse 40" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.zarr"]


# ------------------------------------------------------------------------------------------- optional items


def _bad_orbit_dims(ds):
    ds["orbit_position"] = (("xyz", "orbit_time"), ds["orbit_position"].values.T)
    return ds


@pytest.mark.parametrize(
    "spoil,named",
    [
        (_bad_orbit_dims, "variable 'orbit_position'.*dims"),
        (lambda ds: ds.drop_vars("orbit_velocity"), "variable 'orbit_velocity'.*missing"),
        (lambda ds: ds.assign_coords(orbit_time=("orbit_time", ds.orbit_time.values[::-1])), "'orbit_time'.*increase"),
        (
            lambda ds: ds.assign(attitude_quaternion=ds.attitude_quaternion * 2),
            "variable 'attitude_quaternion'.*unit",
        ),
        (
            lambda ds: ds.assign(attitude_quaternion=(ds.attitude_quaternion.dims, ds.attitude_quaternion.values)),
            "variable 'attitude_quaternion'.*convention",
        ),
        (lambda ds: ds.assign(noise_line=(DIMS2, _echo(64, 256))), "variable 'noise_line'.*own dims"),
        (
            lambda ds: ds.assign(doppler_centroid_range=(("noise_sample",), np.zeros(100))),
            "variable 'doppler_centroid_range'.*dims",
        ),
        (
            lambda ds: ds.assign_coords(pulse_pri=("azimuth", np.full(ds.sizes["azimuth"], 1 / 90.0))),
            "coordinate 'pulse_pri'.*prf",
        ),
        (lambda ds: ds.assign_attrs(polarisation="hh"), "attribute 'polarisation'"),
    ],
)
def test_bad_optional_items_are_refused_by_name(spoil, named):
    ds = _real_like()
    validate(ds, "raw")
    with pytest.raises(InputError, match=named):
        validate(spoil(ds.copy()), "raw")


DIMS2 = ("azimuth", "range")


# ------------------------------------------------------------------------------------------- through focus


def test_focus_keeps_the_acquisition_items_in_memory_and_streaming(tmp_path):
    raw = _real_like()
    validate(raw, "raw")
    slc = focus(raw)
    validate(slc, "slc")
    _assert_carried(slc, raw)
    _assert_carried(defocus(slc), raw)
    flags = np.zeros(raw.sizes["azimuth"], bool)
    flags[10:14] = True
    cleaned = clean(raw, "notch", pulses=flags).raw
    _assert_carried(cleaned, raw)
    assert [r["step"] for r in cleaned.attrs["processing_history"]] == ["rfi_clean"]

    store = save_dataset(raw, tmp_path / "raw.zarr")
    streamed = open_slc(focus_zarr(store, tmp_path / "slc.zarr"))
    _assert_carried(streamed, raw)
    np.testing.assert_allclose(streamed["slc"].values, slc["slc"].values, rtol=0, atol=1e-4 * abs(slc["slc"]).max())
    for name in ("slc", "azimuth_time", "pulse_pri", "orbit_position"):
        assert streamed[name].attrs["units"] == CF_ATTRS[name][0], name
    _assert_carried(open_raw(defocus_zarr(tmp_path / "slc.zarr", tmp_path / "back.zarr")), raw)
