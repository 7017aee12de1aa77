"""SensorParams (the contract attributes as one validated value) and last_record (the one reader of the processing
history)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sarpipe.errors import InputError
from sarpipe.model import REQUIRED_ATTRS, last_record, sar_dataset, with_history
from sarpipe.sensor import SensorParams


def test_every_contract_attribute_is_read_and_given_back(base_attrs):
    attrs = {
        **base_attrs,
        "doppler_centroid": -120,
        "antenna_length": 10,
        "look_side": "left",
        "sensor": "S1-like",
        "azimuth_bandwidth": 1200,
        "history": [],
        "point_targets": [],
    }
    sensor = SensorParams.from_attrs(attrs)
    for key in REQUIRED_ATTRS:
        value = getattr(sensor, key)
        assert type(value) is float and value == attrs[key]
    assert (sensor.doppler_centroid, sensor.antenna_length) == (-120.0, 10.0)
    assert (sensor.look_side, sensor.sensor, sensor.azimuth_bandwidth) == ("left", "S1-like", 1200.0)
    back = sensor.as_attrs()
    assert "history" not in back and "point_targets" not in back
    assert SensorParams.from_attrs(back) == sensor


def test_optional_parameters_are_none_when_absent(base_attrs):
    sensor = SensorParams.from_attrs(base_attrs)
    assert sensor.doppler_centroid is None and sensor.antenna_length is None and sensor.azimuth_bandwidth is None
    assert set(sensor.as_attrs()) == set(REQUIRED_ATTRS)


@pytest.mark.parametrize("value", ["wide", -5.0, 0.0, float("inf"), True])
def test_an_unusable_recorded_bandwidth_is_ignored(base_attrs, value):
    assert SensorParams.from_attrs({**base_attrs, "azimuth_bandwidth": value}).azimuth_bandwidth is None


def test_derived_quantities_match_the_dataset_grid(base_attrs):
    ds = sar_dataset(np.zeros((8, 16), np.complex64), base_attrs)
    sensor = SensorParams.from_dataset(ds)
    np.testing.assert_allclose(np.diff(ds["slant_range"].values), sensor.range_pixel_spacing, rtol=1e-9)
    np.testing.assert_allclose(
        np.diff(ds["azimuth_time"].values) * sensor.velocity, sensor.azimuth_pixel_spacing, rtol=1e-9
    )
    assert sensor.wavelength * sensor.carrier_frequency == pytest.approx(299_792_458.0, rel=1e-15)
    flipped = dataclasses.replace(sensor, chirp_rate=-sensor.chirp_rate)
    assert flipped.chirp_bandwidth == sensor.chirp_bandwidth == pytest.approx(1e12 * 20e-6)


def test_bad_attributes_are_refused_naming_the_source_and_the_attribute(base_attrs):
    with pytest.raises(InputError, match="raw.zarr: attribute 'prf'"):
        SensorParams.from_attrs({k: v for k, v in base_attrs.items() if k != "prf"}, source="raw.zarr")
    with pytest.raises(InputError, match="attribute 'antenna_length'"):
        SensorParams.from_attrs({**base_attrs, "antenna_length": -1.0})


def test_uneven_pulses_are_refused_naming_the_coordinate(base_attrs):
    ds = sar_dataset(np.zeros((8, 16), np.complex64), base_attrs)
    t = ds["azimuth_time"].values.copy()
    t[4:] += 0.3 / base_attrs["prf"]
    with pytest.raises(InputError, match="scene.zarr: coordinate 'azimuth_time'"):
        SensorParams.from_dataset(ds.assign_coords(azimuth_time=("azimuth", t)), source="scene.zarr")


def test_last_record_matches_the_step_exactly(small_raw):
    ds = with_history(small_raw, "focus", {"range_window": "hamming:0.75"})
    ds = with_history(ds, "defocus", {"range_window": "rect"})
    ds.attrs["processing_history"] = ["not a record"] + ds.attrs["processing_history"]
    assert last_record(ds.attrs, "focus")["params"] == {"range_window": "hamming:0.75"}
    assert last_record(ds.attrs, "defocus")["params"] == {"range_window": "rect"}
    assert last_record(ds.attrs, "foc") is None
    assert last_record(small_raw.attrs, "focus") is None
    again = with_history(ds, "focus", {"range_window": "kaiser:2.5"})
    assert last_record(again.attrs, "focus")["params"] == {"range_window": "kaiser:2.5"}
