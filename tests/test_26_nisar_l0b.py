"""NISAR L0B (RRSD) reader: the real ALOS PALSAR block in shared data, and small synthetic files for the layout
cases the block does not have (receive-window and PRI changes, invalid lines, damaged files)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from sarpipe import model
from sarpipe.errors import InputError
from sarpipe.focus.doppler import estimate_doppler_centroid
from sarpipe.focus.range_compression import range_compress
from sarpipe.io.nisar_l0b import read_nisar_l0b, sniff_nisar_l0b
from sarpipe.orbit import geometric_doppler_centroid
from sarpipe.sensor import SensorParams

h5py = pytest.importorskip("h5py")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SARPIPE_SHARED_DATA", ROOT.parent / "shared" / "data"))
ALOS = SHARED / "alos_palsar_l0b" / "ALPSRP264757150-H1.0__A_HH_LINE4000-5000_RANGE0-2200.h5"
C = 299_792_458.0
TX = "science/LSAR/RRSD/swaths/frequencyA/txH"

needs_alos = pytest.mark.skipif(
    not ALOS.is_file(), reason=f"ALOS L0B block not found at {ALOS} (set SARPIPE_SHARED_DATA to the shared data)"
)


@pytest.fixture(scope="module")
def alos_parts():
    if not ALOS.is_file():
        pytest.skip(f"ALOS L0B block not found at {ALOS}")
    return read_nisar_l0b(ALOS)


@pytest.fixture(scope="module")
def alos_file():
    if not ALOS.is_file():
        pytest.skip(f"ALOS L0B block not found at {ALOS}")
    with h5py.File(ALOS, "r") as f:
        yield f


def lut_decode(raw, lut):
    """Independent reference: each stored uint16 pair indexes the float32 table."""
    r = np.take(lut, raw["r"].astype(np.int64))
    i = np.take(lut, raw["i"].astype(np.int64))
    return r.astype(np.float64) + 1j * i.astype(np.float64)


@needs_alos
def test_alos_block_ingests_echo_lines_only(alos_parts, alos_file):
    cal_type = alos_file[f"{TX}/calType"][:]
    line_index = alos_file[f"{TX}/rangeLineIndex"][:]
    utc = alos_file[f"{TX}/UTCtime"][:]
    assert sniff_nisar_l0b(ALOS)
    echo_keys = sorted(k for k in alos_parts if "-echo" in k)
    assert set(alos_parts) == {*echo_keys, "A-hh-cal"}
    counts = np.concatenate([alos_parts[k]["pulse_count"].values for k in echo_keys])
    np.testing.assert_array_equal(counts, line_index[cal_type == 0])  # every HPA (echo) line, in order, once
    np.testing.assert_array_equal(alos_parts["A-hh-cal"]["pulse_count"].values, line_index[cal_type != 0])
    np.testing.assert_array_equal(alos_parts["A-hh-cal"]["pulse_cal_type"].values, cal_type[cal_type != 0])
    for key in echo_keys:
        ds = alos_parts[key]
        model.validate(ds, "raw")
        lines = np.searchsorted(line_index, ds["pulse_count"].values)
        np.testing.assert_array_equal(ds["azimuth_time"].values, utc[lines])
        SensorParams.from_dataset(ds)  # evenly spaced by 1/prf: no calibration gap inside a segment
        assert ds.attrs["signal_type"] == "echo"


@needs_alos
def test_alos_samples_equal_the_lookup_table_decoding(alos_parts, alos_file):
    raw = alos_file[f"{TX}/rxH/HH"][:]
    lut = alos_file[f"{TX}/rxH/BFPQLUT"][:]
    line_index = alos_file[f"{TX}/rangeLineIndex"][:]
    ref = lut_decode(raw, lut)
    for ds in alos_parts.values():
        lines = np.searchsorted(line_index, ds["pulse_count"].values)
        got = ds["echo"].values
        assert got.dtype == np.complex64
        np.testing.assert_array_equal(got, ref[lines].astype(np.complex64))


@needs_alos
def test_alos_attributes_equal_the_file(alos_parts, alos_file):
    tx = alos_file[TX]
    slant = tx["slantRange"][:]
    units = tx["UTCtime"].attrs["units"]
    units = units.decode() if isinstance(units, bytes) else units
    orbit = alos_file["science/LSAR/RRSD/lowRateTelemetry/orbit"]
    att = alos_file["science/LSAR/RRSD/lowRateTelemetry/attitude"]
    look = alos_file["science/LSAR/identification/lookDirection"][()].decode().lower()
    for ds in alos_parts.values():
        a = ds.attrs
        assert a["carrier_frequency"] == tx["centerFrequency"][()]
        assert a["chirp_rate"] == tx["chirpSlope"][()]
        assert a["pulse_duration"] == tx["chirpDuration"][()]
        assert a["range_bandwidth"] == tx["rangeBandwidth"][()]
        assert a["range_sampling_rate"] == pytest.approx(C / (2 * tx["slantRangeSpacing"][()]), rel=1e-12)
        assert a["near_range"] == slant[0]
        np.testing.assert_allclose(ds["slant_range"].values, slant, rtol=0, atol=1e-6)
        assert a["prf"] == pytest.approx(tx["nominalAcquisitionPRF"][()], rel=1e-6)
        assert a["look_side"] == look and a["polarisation"] == "HH" and a["mission"] == "ALOS"
        assert a["azimuth_time_epoch"].startswith(units.split("since")[1].strip().replace(" ", "T"))
        assert a["valid_samples"] == [0, slant.size]  # the file's [0, 5194) clipped to the 2200 samples kept
        np.testing.assert_array_equal(ds["orbit_position"].values, orbit["position"][:])
        np.testing.assert_array_equal(ds["orbit_velocity"].values, orbit["velocity"][:])
        np.testing.assert_array_equal(ds["orbit_time"].values, orbit["time"][:])  # same epoch in this file
        np.testing.assert_array_equal(ds["attitude_quaternion"].values, att["quaternions"][:])
        # effective velocity ~ sqrt(V_sat * V_ground); the file's along-track spacing gives V_ground = dx * PRF
        v_sat = np.linalg.norm(orbit["velocity"][:], axis=1).mean()
        v_ground = tx["sceneCenterAlongTrackSpacing"][()] * tx["nominalAcquisitionPRF"][()]
        assert a["velocity"] == pytest.approx(np.sqrt(v_sat * v_ground), rel=5e-3)


def irw_3db(profile: np.ndarray, upsample: int) -> float:
    """-3 dB width (in input samples) of an amplitude profile, linear interpolation at the crossings."""
    a = profile / profile.max()
    m = int(np.argmax(a))
    th = 2**-0.5
    lo = m - np.argmax(a[m::-1] < th)
    hi = m + np.argmax(a[m:] < th)
    left = lo + (th - a[lo]) / (a[lo + 1] - a[lo])
    right = hi - 1 + (a[hi - 1] - th) / (a[hi - 1] - a[hi])
    return (right - left) / upsample


def upsampled_autocorrelation(power_spectrum: np.ndarray, upsample: int) -> np.ndarray:
    n = power_spectrum.size
    padded = np.zeros(n * upsample, complex)
    padded[: n // 2] = power_spectrum[: n // 2]
    padded[-(n // 2) :] = power_spectrum[-(n // 2) :]
    return np.abs(np.fft.fftshift(np.fft.ifft(padded)))


@needs_alos
def test_alos_range_compression_with_the_file_chirp_has_the_expected_resolution(alos_parts):
    """The scene is pure speckle (no point target), so the resolution is measured twice: on the compressed replica
    of the file's chirp, and as the range correlation length of the compressed echoes (the complex autocorrelation
    of speckle is the autocorrelation of the impulse response, whose -3 dB width is the IRW for a flat band)."""
    ds = alos_parts["A-hh-echo-seg1"]
    sensor = SensorParams.from_attrs(ds.attrs)
    fs, bandwidth = sensor.range_sampling_rate, abs(sensor.chirp_rate) * sensor.pulse_duration
    theory = 0.886 * C / (2 * bandwidth)  # rect window: no broadening
    up = 32
    m = int(sensor.pulse_duration * fs / 2)
    t = np.arange(-m, m + 1) / fs
    replica = np.exp(1j * np.pi * sensor.chirp_rate * t * t)
    spec = np.abs(np.fft.fft(replica, 4096)) ** 2
    irw_replica = irw_3db(upsampled_autocorrelation(spec, up), up) * C / (2 * fs)
    assert irw_replica == pytest.approx(theory, rel=0.01)  # Fresnel ripple of a TB = 378 chirp: < 1 %
    compressed = range_compress(ds["echo"].values, sensor)[:, m : ds.sizes["range"] - m]  # full-replica part
    power = (np.abs(np.fft.fft(compressed, axis=1)) ** 2).mean(axis=0)
    irw_data = irw_3db(upsampled_autocorrelation(power, up), up) * C / (2 * fs)
    # measured 9.64 m against 9.49 m: the receiver's band edges roll off, widening the response by ~2 %
    assert irw_data == pytest.approx(theory, rel=0.03)
    # and a chirp of the wrong rate decorrelates less: the matched filter is the file's
    wrong = SensorParams.from_attrs(dict(ds.attrs, chirp_rate=sensor.chirp_rate * 0.7))
    c_wrong = range_compress(ds["echo"].values, wrong)[:, m : ds.sizes["range"] - m]
    power_w = (np.abs(np.fft.fft(c_wrong, axis=1)) ** 2).mean(axis=0)
    assert irw_3db(upsampled_autocorrelation(power_w, up), up) * C / (2 * fs) > 1.2 * theory


@needs_alos
def test_alos_data_doppler_agrees_with_orbit_and_attitude(alos_parts):
    """Data: lag-one estimator (baseband, mod PRF). Geometry: the boresight plane of the file's attitude on the
    WGS84 ellipsoid, mean over the swath. Measured: data 60.3 / 59.6 Hz, geometry 49.6 Hz, i.e. ~10 Hz or 0.5 % of
    the PRF (about 0.01 deg of pointing: the file's Euler angles are rounded to 0.001 deg, pitch is given as 0).
    Asserted: 0.05 PRF (~0.1 deg of pointing), ten times tighter than what ambiguity resolution needs (PRF / 2)."""
    for key in ("A-hh-echo-seg1", "A-hh-echo-seg2"):
        ds = alos_parts[key]
        prf = ds.attrs["prf"]
        f_data = estimate_doppler_centroid(ds)
        f_geom = float(np.mean(geometric_doppler_centroid(ds)))
        wrapped = (f_data - f_geom + prf / 2) % prf - prf / 2
        assert abs(wrapped) < 0.05 * prf, (key, f_data, f_geom)


@needs_alos
def test_alos_part_survives_a_store_round_trip(alos_parts, tmp_path):
    ds = alos_parts["A-hh-echo-seg2"]
    out = model.save_dataset(ds, tmp_path / "alos.zarr")
    back = model.open_raw(out)
    np.testing.assert_array_equal(back["echo"].values, ds["echo"].values)
    np.testing.assert_array_equal(back["orbit_position"].values, ds["orbit_position"].values)
    assert back["attitude_quaternion"].attrs["convention"].startswith("rcs_to_ecef")
    assert back.attrs["azimuth_time_epoch"] == ds.attrs["azimuth_time_epoch"]


# ------------------------------------------------------------------------------------------ synthetic files


def write_l0b(path: Path, *, times, cal_type, n_samples=64, window=None, lut_nan_index=None, drop=(), chunk_lines=None):
    """A minimal L0B file with the datasets the reader needs; ``window`` (n, 3) gives RD, WD, WL per line."""
    n = len(times)
    rng = np.random.default_rng(0)
    lut = ((np.arange(65536) - 32768) * 0.5).astype(np.float32)
    if lut_nan_index is not None:
        lut[lut_nan_index] = np.nan
    raw = np.zeros((n, n_samples), dtype=[("r", "<u2"), ("i", "<u2")])
    raw["r"] = rng.integers(32768 - 20, 32768 + 20, (n, n_samples))
    raw["i"] = rng.integers(32768 - 20, 32768 + 20, (n, n_samples))
    if lut_nan_index is not None:
        raw["r"][3, 5] = lut_nan_index
    t_orbit = np.arange(-60.0, 120.0, 10.0)
    with h5py.File(path, "w") as f:
        tx = f.create_group(TX)
        tx["UTCtime"] = np.asarray(times, float)
        tx["UTCtime"].attrs["units"] = "seconds since 2024-05-06 07:08:09.5"
        tx["calType"] = np.asarray(cal_type, np.uint8)
        tx["rangeLineIndex"] = np.arange(1, n + 1)
        tx["centerFrequency"] = 1.257e9
        tx["chirpSlope"] = 20e6 / 40e-6
        tx["chirpDuration"] = 40e-6
        tx["rangeBandwidth"] = 20e6
        tx["nominalAcquisitionPRF"] = 1.0 / (times[1] - times[0])
        tx["slantRangeSpacing"] = C / (2 * 24e6)
        tx["slantRange"] = 9e5 + np.arange(n_samples) * C / (2 * 24e6)
        tx["validSamplesSubSwath1"] = np.tile([2, 10_000], (n, 1))
        rx = tx.create_group("rxH")
        if chunk_lines:
            rx.create_dataset("HH", data=raw, chunks=(chunk_lines, n_samples), compression="gzip")
        else:
            rx["HH"] = raw
        rx["BFPQLUT"] = lut
        if window is not None:
            w = np.asarray(window)
            for k, name in enumerate(("RD", "WD", "WL")):
                rx[name] = np.stack([w[:, k], w[:, k] + 2], axis=1).astype(np.uint32)  # two channels
        o = f.create_group("science/LSAR/RRSD/lowRateTelemetry/orbit")
        o["time"] = t_orbit
        o["time"].attrs["units"] = "seconds since 2024-05-06 07:08:09.5"
        o["position"] = np.stack([7.0e6 + 0 * t_orbit, 7.5e3 * t_orbit, 0 * t_orbit], 1)
        o["velocity"] = np.tile([0.0, 7.5e3, 0.0], (t_orbit.size, 1))
        ident = f.create_group("science/LSAR/identification")
        ident["lookDirection"] = np.bytes_("Left")
        ident["missionId"] = np.bytes_("NISAR")
        for name in drop:
            del f[name]


def test_synthetic_calibration_invalid_lines_and_a_pri_change_make_segments(tmp_path):
    pri1, pri2 = 500e-6, 520e-6
    times = np.concatenate([np.arange(31) * pri1, 30 * pri1 + np.arange(1, 10) * pri2])
    cal = np.zeros(times.size, int)
    cal[10], cal[25] = 1, 255  # an LNA calibration line and an invalid one
    path = tmp_path / "syn.h5"
    write_l0b(path, times=times, cal_type=cal, lut_nan_index=7)
    assert sniff_nisar_l0b(path)
    parts = read_nisar_l0b(path)
    assert sorted(parts) == ["A-hh-cal", "A-hh-echo-seg1", "A-hh-echo-seg2", "A-hh-echo-seg3", "A-hh-echo-seg4"]
    spans = [list(parts[f"A-hh-echo-seg{k}"]["pulse_count"].values[[0, -1]] - 1) for k in range(1, 5)]
    assert spans == [[0, 9], [11, 24], [26, 30], [31, 39]]
    assert parts["A-hh-echo-seg4"].attrs["prf"] == pytest.approx(1 / pri2)
    assert parts["A-hh-echo-seg1"].attrs["prf"] == pytest.approx(1 / pri1)
    for k in range(1, 5):
        SensorParams.from_dataset(parts[f"A-hh-echo-seg{k}"])
    record = model.last_record(parts["A-hh-echo-seg1"].attrs, "ingest")
    assert record["params"]["invalid_lines"] == [25] and record["params"]["calibration_lines"] == [10]
    assert record["params"]["fill_samples"] == 1  # the NaN table entry became 0, counted
    assert parts["A-hh-echo-seg1"]["echo"].values[3, 5] == 0
    a = parts["A-hh-cal"].attrs
    assert a["signal_type"] == "calibration" and a["look_side"] == "left"
    assert a["azimuth_time_epoch"] == "2024-05-06T07:08:09.500000Z"
    assert a["valid_samples"] == [2, 64]
    assert "attitude_quaternion" not in parts["A-hh-cal"]  # the file has none


def test_synthetic_receive_window_change_splits_and_moves_the_near_range(tmp_path):
    times = np.arange(20) * 500e-6
    window = np.tile([1000, 200, 1500], (20, 1))
    window[12:, 1] = 440  # WD grows by 240 ticks = 1 us at 240 MHz -> 149.9 m further
    path = tmp_path / "win.h5"
    write_l0b(path, times=times, cal_type=np.zeros(20, int), window=window)
    parts = read_nisar_l0b(path)
    assert sorted(parts) == ["A-hh-echo-seg1", "A-hh-echo-seg2"]
    s1, s2 = parts["A-hh-echo-seg1"], parts["A-hh-echo-seg2"]
    assert s1.sizes["azimuth"] == 12 and s2.sizes["azimuth"] == 8
    assert s2.attrs["near_range"] - s1.attrs["near_range"] == pytest.approx(C / 2 * 240 / 240e6, rel=1e-12)
    np.testing.assert_allclose(s2["pulse_swst"].values, 1440 / 240e6)


def test_not_hdf5_is_refused_naming_the_file(tmp_path):
    bad = tmp_path / "notes.h5"
    bad.write_text("not an HDF5 file\n")
    assert not sniff_nisar_l0b(bad)
    with pytest.raises(InputError, match="not a readable HDF5 file") as err:
        read_nisar_l0b(bad)
    assert str(bad) in str(err.value)


def test_hdf5_without_rrsd_product_is_refused(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["science/LSAR/RSLC/x"] = 1
    assert not sniff_nisar_l0b(path)
    with pytest.raises(InputError, match="RRSD"):
        read_nisar_l0b(path)


@pytest.mark.parametrize(
    "missing", [f"{TX}/chirpSlope", f"{TX}/rxH/BFPQLUT", "science/LSAR/RRSD/lowRateTelemetry/orbit/velocity"]
)
def test_missing_dataset_is_named(tmp_path, missing):
    path = tmp_path / "missing.h5"
    write_l0b(path, times=np.arange(8) * 5e-4, cal_type=np.zeros(8, int), drop=[missing])
    with pytest.raises(InputError) as err:
        read_nisar_l0b(path)
    assert str(path) in str(err.value) and missing.split("/")[-1] in str(err.value)


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "full.h5"
    write_l0b(path, times=np.arange(8) * 5e-4, cal_type=np.zeros(8, int))
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as err:
        read_nisar_l0b(cut)
    assert str(cut) in str(err.value)


def test_damaged_lines_raise_or_are_skipped_and_listed(tmp_path):
    n = 1100  # two read blocks of 1024 lines
    path = tmp_path / "damaged.h5"
    write_l0b(path, times=np.arange(n) * 5e-4, cal_type=np.zeros(n, int), n_samples=16, chunk_lines=50)
    with h5py.File(path, "r") as f:
        info = f[f"{TX}/rxH/HH"].id.get_chunk_info(21)  # lines 1050..1099, in the second block
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset)
        fh.write(b"\xff" * info.size)
    with pytest.raises(InputError, match="range lines 1024..1099 cannot be read") as err:
        read_nisar_l0b(path)
    assert str(path) in str(err.value) and "rxH/HH" in str(err.value)
    parts = read_nisar_l0b(path, on_error="skip")
    assert list(parts) == ["A-hh-echo"]
    assert parts["A-hh-echo"].sizes["azimuth"] == 1024
    record = model.last_record(parts["A-hh-echo"].attrs, "ingest")
    assert record["params"]["unreadable_lines"] == list(range(1024, 1100))


def test_bad_on_error_option_is_refused(tmp_path):
    with pytest.raises(InputError, match="on_error"):
        read_nisar_l0b(tmp_path / "x.h5", on_error="ignore")
