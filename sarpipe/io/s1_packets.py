"""Sentinel-1 Instrument Source Packets: the index pass and the header fields of every packet.

Layout (ESA S1-IF-ASD-PL-0007, SAR Space Packet Protocol Data Unit): a 6-byte CCSDS primary header, a 62-byte
secondary header, then the user data field; a packet is ``packet_data_length + 7`` bytes. Every multi-bit field is
big-endian, bit 0 the most significant bit. :data:`HEADER_FIELDS` lists each field by its bit offset from the start
of the packet and its width; :func:`decode_headers` extracts all of them for all packets in one numba pass.

The index pass (:func:`index_packets`) walks the length chain from byte 0. A packet whose primary header is not a
Sentinel-1 one (version, secondary header flag) or whose sync marker is wrong breaks the chain: the next packet is
found again by searching for the next sync marker at its place (``offset + 12``) behind a plausible primary header.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = [
    "HEADER_FIELDS",
    "PACKET_PROBLEMS",
    "PRIMARY_HEADER_BYTES",
    "REFERENCE_FREQUENCY",
    "SECONDARY_HEADER_BYTES",
    "SYNC_MARKER",
    "decode_headers",
    "index_packets",
]

#: The instrument's reference frequency f_ref [Hz] (S1-IF-ASD-PL-0007 section 3.2.5): PRI, SWST, SWL, TXPL are
#: counted in periods of f_ref, TXPRR/TXPSF scaled by it.
REFERENCE_FREQUENCY = 37.53472224e6
PRIMARY_HEADER_BYTES = 6
SECONDARY_HEADER_BYTES = 62
USER_DATA_OFFSET = PRIMARY_HEADER_BYTES + SECONDARY_HEADER_BYTES
SYNC_MARKER = 0x352EF853

#: (name, bit offset from the packet start, width in bits), in packet order; spares are left out.
HEADER_FIELDS: tuple[tuple[str, int, int], ...] = (
    # primary header (CCSDS)
    ("packet_version_number", 0, 3),
    ("packet_type", 3, 1),
    ("secondary_header_flag", 4, 1),
    ("pid", 5, 7),
    ("pcat", 12, 4),
    ("sequence_flags", 16, 2),
    ("packet_sequence_count", 18, 14),
    ("packet_data_length", 32, 16),
    # datation service: GPS time, coarse [s] and fine [2^-16 s]
    ("coarse_time", 48, 32),
    ("fine_time", 80, 16),
    # fixed ancillary data service
    ("sync_marker", 96, 32),
    ("data_take_id", 128, 32),
    ("ecc_number", 160, 8),
    ("test_mode", 169, 3),
    ("rx_channel_id", 172, 4),
    ("instrument_configuration_id", 176, 32),
    # sub-commutated ancillary data service
    ("subcom_data_word_index", 208, 8),
    ("subcom_data_word", 216, 16),
    # counters service
    ("space_packet_count", 232, 32),
    ("pri_count", 264, 32),
    # radar configuration support service
    ("error_flag", 296, 1),
    ("baq_mode", 299, 5),
    ("baq_block_length", 304, 8),
    ("range_decimation", 320, 8),
    ("rx_gain", 328, 8),
    ("tx_ramp_rate", 336, 16),
    ("tx_pulse_start_frequency", 352, 16),
    ("tx_pulse_length", 368, 24),
    ("rank", 395, 5),
    ("pri", 400, 24),
    ("swst", 424, 24),
    ("swl", 448, 24),
    # SAS SSB message
    ("ssb_flag", 472, 1),
    ("polarisation", 473, 3),
    ("temperature_compensation", 476, 2),
    # imaging/noise (ssb_flag 0): elevation beam address; calibration (ssb_flag 1): SAS test bit + cal type
    ("sas_dynamic_data", 480, 4),
    # imaging/noise: azimuth beam address; calibration: calibration beam address
    ("beam_address", 486, 10),
    # SES SSB message
    ("calibration_mode", 496, 2),
    ("tx_pulse_number", 499, 5),
    ("signal_type", 504, 4),
    ("swap", 511, 1),
    ("swath_number", 512, 8),
    # radar sample count service
    ("number_of_quads", 520, 16),
)
_FIELD_TABLE = np.array([(off, width) for _, off, width in HEADER_FIELDS], dtype=np.int64)

#: index-pass problem codes -> what they mean (0: none).
PACKET_PROBLEMS = {
    1: "truncated: the packet runs past the end of the file",
    2: "not a Sentinel-1 packet header (version, type or secondary-header flag)",
    3: "sync marker is not 0x352EF853",
    4: "packet data length too short for the secondary header",
}


@nb.njit(cache=True)
def _header_ok(buf: np.ndarray, p: int) -> int:
    """0 if a plausible Sentinel-1 packet starts at byte ``p`` of ``buf``, else its problem code."""
    n = buf.size
    if p + USER_DATA_OFFSET > n:
        return 1
    b0 = buf[p]
    if (b0 >> 5) != 0 or ((b0 >> 4) & 1) != 0 or ((b0 >> 3) & 1) != 1:
        return 2
    sync = (np.int64(buf[p + 12]) << 24) | (np.int64(buf[p + 13]) << 16) | (np.int64(buf[p + 14]) << 8) | buf[p + 15]
    if sync != SYNC_MARKER:
        return 3
    length = ((np.int64(buf[p + 4]) << 8) | buf[p + 5]) + 7
    if length < USER_DATA_OFFSET:
        return 4
    if p + length > n:
        return 1
    return 0


@nb.njit(cache=True)
def _resync(buf: np.ndarray, start: int) -> int:
    """The first byte >= ``start`` where a well-formed packet starts, else -1."""
    n = buf.size
    for p in range(start, n - USER_DATA_OFFSET + 1):
        if buf[p + 12] == 0x35 and buf[p + 13] == 0x2E and buf[p + 14] == 0xF8 and buf[p + 15] == 0x53:
            if _header_ok(buf, p) == 0:
                return p
    return -1


@nb.njit(cache=True)
def _index(buf: np.ndarray):
    n = buf.size
    cap = max(16, n // 1024)
    offsets = np.empty(cap, np.int64)
    lengths = np.empty(cap, np.int64)
    problems = np.zeros(cap, np.int8)
    count = 0
    p = 0
    while p < n:
        if count == offsets.size:
            offsets = np.concatenate((offsets, np.empty(offsets.size, np.int64)))
            lengths = np.concatenate((lengths, np.empty(lengths.size, np.int64)))
            problems = np.concatenate((problems, np.zeros(problems.size, np.int8)))
        code = _header_ok(buf, p)
        offsets[count] = p
        problems[count] = code
        if code == 0:
            length = ((np.int64(buf[p + 4]) << 8) | buf[p + 5]) + 7
            lengths[count] = length
            count += 1
            p += length
            continue
        nxt = _resync(buf, p + 1)
        lengths[count] = (n if nxt < 0 else nxt) - p
        count += 1
        if nxt < 0:
            break
        p = nxt
    return offsets[:count], lengths[:count], problems[:count]


def index_packets(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Find every packet of a Level-0 byte stream (uint8 array).

    Returns ``(offsets, lengths, problems)``: each packet's byte offset, its length in bytes (for a damaged one:
    up to the next packet found, or the end of the file) and its problem code (:data:`PACKET_PROBLEMS`, 0 = none).
    """
    buf = np.ascontiguousarray(buf, dtype=np.uint8)
    if buf.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int8)
    return _index(buf)


@nb.njit(parallel=True, cache=True)
def _extract_fields(buf: np.ndarray, offsets: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    n_fields = table.shape[0]
    for i in nb.prange(offsets.size):
        base = offsets[i]
        for f in range(n_fields):
            bit = table[f, 0]
            width = table[f, 1]
            first = base + (bit >> 3)
            last = base + ((bit + width - 1) >> 3)
            acc = np.int64(0)
            for b in range(first, last + 1):
                acc = (acc << 8) | buf[b]
            tail = (8 - ((bit + width) & 7)) & 7
            out[f, i] = (acc >> tail) & ((np.int64(1) << width) - 1)


def decode_headers(buf: np.ndarray, offsets: np.ndarray) -> dict[str, np.ndarray]:
    """Every field of :data:`HEADER_FIELDS` for the packets starting at ``offsets`` (each must hold at least
    68 bytes), as ``{name: int64 array}``, raw codes as in the packet (no scaling)."""
    buf = np.ascontiguousarray(buf, dtype=np.uint8)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    out = np.zeros((len(HEADER_FIELDS), offsets.size), dtype=np.int64)
    if offsets.size:
        _extract_fields(buf, offsets, _FIELD_TABLE, out)
    return {name: out[k] for k, (name, _, _) in enumerate(HEADER_FIELDS)}
