"""Level-0 round trip and reader behaviour: simulated point targets -> Level-0 packets (bypass, BAQ) -> read ->
focused, against the point-target theory; damaged packets (exit 2 with offset and index, ``--on-error skip``);
the ingest command's refusals; the BAQ decoder against the plain-Python reference on encoded packets."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from test_25_s1_level0_packets import reference_decode  # tests/ is on sys.path (pytest rootdir)

from sarpipe.focus.checks import check_stripmap_echoes
from sarpipe.io.s1_encoder import encode_level0, level0_attrs
from sarpipe.io.s1_level0 import read_s1_level0
from sarpipe.quality import point_target_analysis, processed_bandwidths, theoretical_response
from sarpipe.sensor import SensorParams
from sarpipe.simulate import scene_attrs, simulate

N_AZ, N_RG = 2048, 2048
RANGES = (400.3, 1024.3, 1600.7)
AZIMUTH = 1024.4


@functools.cache
def _scene():
    """A broadside C-band scene on the Level-0 header grids (S3 decimation, 10 us / 50 MHz chirp)."""
    sensor = {"preset": "sentinel1_sm", "pulse_duration": 10e-6, "chirp_rate": 5.0e12,
              "range_sampling_rate": 66.7e6, "prf": 1700.0}  # fmt: skip
    base = {"sensor": sensor, "scene": {"n_azimuth": N_AZ, "n_range": N_RG, "near_range": 850e3}}
    attrs, *_ = scene_attrs(base)
    snap = level0_attrs(attrs)
    sensor.update({k: snap[k] for k in ("range_sampling_rate", "chirp_rate", "pulse_duration", "prf")})
    base["scene"]["near_range"] = snap["near_range"]
    targets = [{"range_index": r, "azimuth_index": AZIMUTH} for r in RANGES]
    return simulate({**base, "targets": targets})


@pytest.mark.parametrize("baq_mode", [0, 3, 4, 5])
def test_encoded_packets_decode_to_the_encoder_values_and_attrs(tmp_path, baq_mode):
    raw = _scene().isel(azimuth=slice(960, 1090))  # around the targets (the scene has no noise)
    info = encode_level0(raw, tmp_path / "l0.dat", baq_mode=baq_mode)
    (key, ds), *rest = read_s1_level0(tmp_path / "l0.dat").items()
    assert not rest and key == "s3-vv-echo"
    np.testing.assert_array_equal(ds["echo"].values, info["reconstruction"])
    for name in ("range_sampling_rate", "chirp_rate", "pulse_duration", "prf", "near_range", "carrier_frequency"):
        assert ds.attrs[name] == pytest.approx(raw.attrs[name], rel=1e-12), name
    assert ds.attrs["velocity"] == pytest.approx(raw.attrs["velocity"], rel=1e-6)  # float32 ephemeris
    # the datation fine time steps 2^-16 s (uniform error, sigma 4.4 us); the PRI-grid fit over 130 pulses leaves
    # sigma 0.39 us, allowed 5 sigma
    t_raw = raw["azimuth_time"].values - np.floor(raw["azimuth_time"].values[0])  # epoch: the whole second before
    np.testing.assert_allclose(ds["azimuth_time"].values, t_raw, rtol=0, atol=2e-6)
    np.testing.assert_allclose(ds["slant_range"].values, raw["slant_range"].values, rtol=1e-12)
    # 130 packets: two complete 64-word cycles (packets 0-63, 64-127); the last two packets start a third
    assert ds["orbit_position"].shape == (2, 3)
    np.testing.assert_array_equal(ds["orbit_position"].values[:, 1:], 0.0)
    t_cycles = raw["azimuth_time"].values[[0, 64]] - np.floor(raw["azimuth_time"].values[0])
    np.testing.assert_allclose(ds["orbit_time"].values, t_cycles, atol=1e-6)  # GPS s in float64: 2.4e-7 ulp
    # the quantisation error is what the bit budget allows (bypass: integer rounding after scaling)
    err = ds["echo"].values / info["scale"] - raw["echo"].values
    sqnr = 10 * np.log10(np.mean(np.abs(raw["echo"].values) ** 2) / np.mean(np.abs(err) ** 2))
    assert sqnr > {0: 40, 3: 13, 4: 18, 5: 24}[baq_mode]


@pytest.mark.parametrize("baq_mode", [3, 4, 5])
def test_numba_baq_decoder_equals_plain_python_reference(tmp_path, baq_mode):
    raw = _scene().isel(azimuth=slice(700, 702), range=slice(0, 2 * 300))  # 300 quads: a partial last block
    info = encode_level0(raw, tmp_path / "l0.dat", baq_mode=baq_mode)
    data = (tmp_path / "l0.dat").read_bytes()
    size = info["packet_bytes"]
    ds = read_s1_level0(tmp_path / "l0.dat")["s3-vv-echo"]
    for k in range(2):
        packet = data[k * size : (k + 1) * size]
        np.testing.assert_array_equal(ds["echo"].values[k], reference_decode(packet[68:], 300, baq_mode))


@pytest.mark.slow
@pytest.mark.parametrize("baq_mode", [0, 5])
def test_level0_round_trip_focuses_to_point_target_theory(tmp_path, baq_mode):
    from sarpipe.focus import focus

    raw = _scene()
    encode_level0(raw, tmp_path / "l0.dat", baq_mode=baq_mode)
    ds = read_s1_level0(tmp_path / "l0.dat")["s3-vv-echo"]
    check_stripmap_echoes(ds)
    slc = focus(ds, doppler_centroid=0.0)  # broadside scene; Level-0 carries no centroid
    image = slc["slc"].values
    th = theoretical_response("rect")
    b_rg, b_az = processed_bandwidths(SensorParams.from_attrs(ds.attrs))
    irw_rg = th.irw * ds.attrs["range_sampling_rate"] / b_rg
    irw_az = th.irw * ds.attrs["prf"] / b_az
    failures = []
    for r in RANGES:
        res = point_target_analysis(image, AZIMUTH, r)
        figures = {
            "range position [px]": (res.range_position - r, 0.0, 0.05),
            "azimuth position [px]": (res.azimuth_position - AZIMUTH, 0.0, 0.05),
            "range IRW / theory - 1": (res.range.irw_samples / irw_rg - 1, 0.0, 0.03),
            "azimuth IRW / theory - 1": (res.azimuth.irw_samples / irw_az - 1, 0.0, 0.03),
            "range PSLR [dB]": (res.range.pslr_db, th.pslr_db, 0.3),
            "azimuth PSLR [dB]": (res.azimuth.pslr_db, th.pslr_db, 0.3),
            "range ISLR [dB]": (res.range.islr_db, th.islr_db, 0.5),
            "azimuth ISLR [dB]": (res.azimuth.islr_db, th.islr_db, 0.5),
        }
        failures += [f"target {r}: {n} {got:.4g} vs {want:.4g} ± {tol}"
                     for n, (got, want, tol) in figures.items() if abs(got - want) > tol]  # fmt: skip
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------- damaged packets, CLI


def _encoded(tmp_path, n=10):
    raw = _scene().isel(azimuth=slice(0, n), range=slice(0, 256))
    info = encode_level0(raw, tmp_path / "l0.dat", baq_mode=4)
    return tmp_path / "l0.dat", info["packet_bytes"], info["reconstruction"]


def _cli(*args):
    from sarpipe.cli import main

    return main(list(args))


@pytest.mark.parametrize("damage", ["sync", "length", "truncate", "user_data"])
def test_damaged_packet_exits_2_naming_offset_and_index_and_skip_keeps_the_rest(tmp_path, capsys, damage):
    path, size, expected = _encoded(tmp_path)
    data = bytearray(path.read_bytes())
    k = 9 if damage == "truncate" else 4
    if damage == "sync":
        data[k * size + 12] ^= 0xFF
    elif damage == "length":  # packet data length says longer than the packet: next header lands mid-packet
        data[k * size + 4] = 0x7F
    elif damage == "truncate":
        data = data[: k * size + size // 2]
    else:  # user data shorter than its quads need (length field lowered, the rest of the bytes left)
        short = size - 7 - 200
        data[k * size + 4 : k * size + 6] = short.to_bytes(2, "big")
    path.write_bytes(bytes(data))
    out = tmp_path / "out.zarr"
    assert _cli("ingest", str(path), "-o", str(out)) == 2
    err = capsys.readouterr().err
    assert f"packet {k} at byte offset {k * size}" in err and str(path) in err
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    assert _cli("ingest", str(path), "-o", str(out), "--on-error", "skip") == 0
    from sarpipe.model import open_raw

    ds = open_raw(out)
    kept = [i for i in range(10) if i != k]
    # the packets before and after are kept (by their byte offsets: after a wrong length field the bytes up to
    # the next packet found count as one more damaged record, so later packet indices shift by one)
    assert ds["pulse_byte_offset"].values.tolist() == [i * size for i in kept]
    np.testing.assert_array_equal(ds["echo"].values, expected[kept])
    skipped = ds.attrs["skipped_packets"]
    assert [s["index"] for s in skipped][:1] == [k] and skipped[0]["offset"] == k * size


def test_ingest_refuses_files_of_other_types(tmp_path, capsys):
    for name, content in (("notes.txt", b"hello world\n" * 100), ("empty.dat", b""), ("zeros.dat", bytes(4096))):
        src = tmp_path / name
        src.write_bytes(content)
        assert _cli("ingest", str(src), "-o", str(tmp_path / "o.zarr")) == 2
        err = capsys.readouterr().err
        assert "known formats: s1-l0" in err and "nisar-l0b" in err and str(src) in err
    path, _, _ = _encoded(tmp_path)
    assert _cli("ingest", str(path), "-o", str(tmp_path / "o.zarr"), "--format", "bogus") == 2
    assert "unknown format" in capsys.readouterr().err
    assert not (tmp_path / "o.zarr").exists()


def test_ingest_list_select_and_several_parts(tmp_path, capsys):
    path, _, _ = _encoded(tmp_path)
    assert _cli("ingest", str(path), "--list") == 0
    listing = capsys.readouterr().out
    assert "s3-vv-echo" in listing and "echo 10 x 256" in listing
    assert not list(tmp_path.glob("*.zarr"))
    assert _cli("ingest", str(path), "-o", str(tmp_path / "o.zarr"), "--select", "nope") == 2
    assert "s3-vv-echo" in capsys.readouterr().err
    assert _cli("ingest", str(path), "-o", str(tmp_path / "o.zarr"), "--select", "s3-vv-echo") == 0
    from sarpipe.model import last_record, open_raw

    ds = open_raw(tmp_path / "o.zarr")
    assert last_record(ds.attrs, "ingest")["params"]["format"] == "s1-l0"


def test_tops_parts_decode_but_focus_refuses(tmp_path):
    from sarpipe.errors import InputError

    raw = _scene().isel(azimuth=slice(0, 8), range=slice(0, 256))
    encode_level0(raw, tmp_path / "iw.dat", baq_mode=0, ecc_number=8, swath_number=11)
    (key, ds), *_ = read_s1_level0(tmp_path / "iw.dat").items()
    assert key == "iw2-vv-echo" and ds.attrs["acquisition_mode"] == "IW"
    with pytest.raises(InputError, match="TOPS focusing is not supported"):
        check_stripmap_echoes(ds)


def test_ingest_stage_in_a_pipeline_writes_the_part(tmp_path, capsys):
    from sarpipe.model import open_raw

    path, _, expected = _encoded(tmp_path)
    (tmp_path / "p.yaml").write_text(
        f"output_dir: {tmp_path / 'out'}\nsteps:\n  - {{name: l0, stage: ingest, params: {{source: {path}}}}}\n"
    )
    assert _cli("run", str(tmp_path / "p.yaml"), "--quiet") == 0, capsys.readouterr().err
    ds = open_raw(tmp_path / "out" / "l0.zarr")
    np.testing.assert_array_equal(ds["echo"].values, expected)
    assert ds.attrs["swath"] == "S3" and ds.attrs["acquisition_mode"] == "SM"
