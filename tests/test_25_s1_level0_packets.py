"""Sentinel-1 Level-0 packets: known-answer tests on real packets, and the numba decoders against a plain-Python
reference decoder written here from the specification (bit strings, dictionary Huffman decoding)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from sarpipe.io.s1_packets import HEADER_FIELDS, decode_headers, index_packets
from sarpipe.io.s1_user_data import (
    BAQ_NRL,
    BAQ_SIMPLE_A,
    FDBAQ_NRL,
    FDBAQ_SIMPLE_B,
    HUFFMAN_CODES,
    SIGMA_FACTORS,
    decode_user_data,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SARPIPE_SHARED_DATA", ROOT.parent / "shared" / "data")) / "s1_l0_packets"
PACKETS = ("000408-echo", "000000-noise", "000008-txcal")

needs_packets = pytest.mark.skipif(
    not (DATA / "000408-echo.dat").is_file(),
    reason=f"the real Sentinel-1 packets are not at {DATA} (set SARPIPE_SHARED_DATA)",
)

# reference JSON name -> our field name, where they differ
RENAMED = {
    "ecc_num": "ecc_number",
    "data_word_index": "subcom_data_word_index",
    "data_word": "subcom_data_word",
    "tx_pulse_start_freq": "tx_pulse_start_frequency",
    "polarization": "polarisation",
    "_dynamic_data": "sas_dynamic_data",
    "_beam_address": "beam_address",
    "cal_mode": "calibration_mode",
}


def _flatten(node: dict, out: dict) -> dict:
    for key, value in node.items():
        if isinstance(value, dict) and set(value) == {"name", "value"}:
            out[RENAMED.get(key, key)] = int(value["value"])
        elif isinstance(value, dict):
            _flatten(value, out)
        elif isinstance(value, str):  # the sub-commutated word, as hex
            out[RENAMED.get(key, key)] = int(value, 16)
        else:
            out[RENAMED.get(key, key)] = int(value)
    return out


def _packet(name: str) -> np.ndarray:
    return np.fromfile(DATA / f"{name}.dat", dtype=np.uint8)


# --------------------------------------------------------------------- plain-Python reference decoder


def _bits(data: bytes) -> str:
    return "".join(f"{b:08b}" for b in data)


def _reference_value(kind: str, table: int, thidx: int, sign: int, m: int) -> float:
    """Reconstruction per S1-IF-ASD-PL-0007 5.2, products in float32 like the ESA reference."""
    simple, nrl = (BAQ_SIMPLE_A[table], BAQ_NRL[table]) if kind == "baq" else (FDBAQ_SIMPLE_B[table], FDBAQ_NRL[table])
    if thidx <= len(simple) - 1:
        v = np.float32(m) if m < len(nrl) - 1 else np.float32(simple[thidx])
    else:
        v = np.float32(nrl[m]) * np.float32(SIGMA_FACTORS[thidx])
    return -v if sign else v


def reference_decode(data: bytes, nq: int, baq_mode: int) -> np.ndarray:
    bits = _bits(data)
    channels: list[list[float]] = []
    pos = 0
    n_blocks = -(-nq // 128)
    brcs: list[int] = []
    thidxs: list[int] = []
    raw_codes: list[list[tuple[int, int]]] = []
    for ch in range(4):
        start = pos
        codes = []
        if baq_mode == 0:
            for _ in range(nq):
                word = bits[pos : pos + 10]
                pos += 10
                codes.append((int(word[0]), int(word[1:], 2)))
        elif baq_mode in (3, 4, 5):
            for b in range(n_blocks):
                if ch == 2:
                    thidxs.append(int(bits[pos : pos + 8], 2))
                    pos += 8
                for _ in range(min(128, nq - 128 * b)):
                    word = bits[pos : pos + baq_mode]
                    pos += baq_mode
                    codes.append((int(word[0]), int(word[1:], 2)))
        else:
            for b in range(n_blocks):
                if ch == 0:
                    brcs.append(int(bits[pos : pos + 3], 2))
                    pos += 3
                if ch == 2:
                    thidxs.append(int(bits[pos : pos + 8], 2))
                    pos += 8
                lookup = {w: m for m, w in enumerate(HUFFMAN_CODES[brcs[b]])}
                for _ in range(min(128, nq - 128 * b)):
                    sign = int(bits[pos])
                    pos += 1
                    word = ""
                    while word not in lookup:
                        word += bits[pos]
                        pos += 1
                    codes.append((sign, lookup[word]))
        pos = start + -(-(pos - start) // 16) * 16
        raw_codes.append(codes)
    for codes in raw_codes:
        values = []
        for i, (sign, m) in enumerate(codes):
            if baq_mode == 0:
                values.append(-float(m) if sign else float(m))
            elif baq_mode in (3, 4, 5):
                values.append(_reference_value("baq", baq_mode, thidxs[i // 128], sign, m))
            else:
                values.append(_reference_value("fdbaq", brcs[i // 128], thidxs[i // 128], sign, m))
        channels.append(values)
    ie, io, qe, qo = (np.asarray(c, dtype=np.float32) for c in channels)
    out = np.empty(2 * nq, dtype=np.complex64)
    out[0::2] = ie + 1j * qe
    out[1::2] = io + 1j * qo
    return out


# ---------------------------------------------------------------------------------------- tests


@needs_packets
@pytest.mark.parametrize("name", PACKETS)
def test_every_header_field_equals_the_reference(name):
    buf = _packet(name)
    offsets, lengths, problems = index_packets(buf)
    assert offsets.tolist() == [0] and lengths.tolist() == [buf.size] and problems.tolist() == [0]
    decoded = {k: int(v[0]) for k, v in decode_headers(buf, offsets).items()}
    reference = _flatten(json.loads((DATA / f"{name}.headers.json").read_text()), {})
    assert set(decoded) == set(reference), "every header field of the reference, and only those"
    assert decoded == reference


@needs_packets
@pytest.mark.parametrize("name", PACKETS)
def test_decoded_samples_equal_the_esa_reference(name):
    buf = _packet(name)
    offsets, lengths, _ = index_packets(buf)
    h = decode_headers(buf, offsets)
    samples, status = decode_user_data(buf, offsets + 68, offsets + lengths, h["number_of_quads"], h["baq_mode"])
    reference = np.load(DATA / f"{name}.decoded.npy")
    assert status.tolist() == [0]
    assert samples.shape == (1, reference.size)
    # float32 rounding: ESA's reference is float32, so equal to the last bit
    np.testing.assert_array_equal(samples[0], reference)


@needs_packets
@pytest.mark.parametrize("name", PACKETS)
def test_numba_kernel_equals_plain_python_reference(name):
    buf = _packet(name)
    h = decode_headers(buf, np.array([0]))
    nq, mode = int(h["number_of_quads"][0]), int(h["baq_mode"][0])
    expected = reference_decode(buf[68:].tobytes(), nq, mode)
    samples, _ = decode_user_data(buf, np.array([68]), np.array([buf.size]), h["number_of_quads"], h["baq_mode"])
    np.testing.assert_array_equal(samples[0], expected)


def test_header_field_table_covers_the_secondary_header():
    """Fields never overlap, stay inside the 68 header bytes, and name the spec's fields once each."""
    spans = sorted((off, off + width) for _, off, width in HEADER_FIELDS)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    assert spans[-1][1] <= 68 * 8
    names = [n for n, _, _ in HEADER_FIELDS]
    assert len(names) == len(set(names))


@needs_packets
def test_many_packets_in_parallel_keep_their_own_rows():
    """Three different packets (FDBAQ, BAQ5, bypass) concatenated and repeated decode each to its reference."""
    bufs = [_packet(n) for n in PACKETS]
    stream = np.concatenate(bufs * 5)
    offsets, lengths, problems = index_packets(stream)
    assert offsets.size == 15 and not problems.any()
    h = decode_headers(stream, offsets)
    samples, status = decode_user_data(stream, offsets + 68, offsets + lengths, h["number_of_quads"], h["baq_mode"])
    assert not status.any()
    for k in range(15):
        ref = np.load(DATA / f"{PACKETS[k % 3]}.decoded.npy")
        np.testing.assert_array_equal(samples[k, : ref.size], ref)
        assert not samples[k, ref.size :].any()


@pytest.mark.parametrize("mode", [0, 3, 4, 5])
@pytest.mark.parametrize("nq", [1, 7, 9, 128, 131, 300])
def test_fixed_width_kernels_equal_plain_python_on_random_user_data(mode, nq):
    """Bypass and BAQ decode every bit pattern: random user data of quad counts that end inside a code group and
    inside a block (the grouped kernels' partial tails), packed back to back, equal the bit-string reference."""
    from sarpipe.io.s1_user_data import baq_user_data_bytes, bypass_user_data_bytes

    rng = np.random.default_rng(1000 * mode + nq)
    size = bypass_user_data_bytes(nq) if mode == 0 else baq_user_data_bytes(nq, mode)
    fields = [rng.integers(0, 256, size, dtype=np.uint8) for _ in range(3)]
    stream = np.concatenate(fields)  # the last field ends the buffer: its tail reads must stay in bounds
    starts = np.arange(3) * size
    samples, status = decode_user_data(stream, starts, starts + size, np.full(3, nq), np.full(3, mode))
    assert not status.any()
    for k, field in enumerate(fields):
        np.testing.assert_array_equal(samples[k], reference_decode(field.tobytes(), nq, mode))
