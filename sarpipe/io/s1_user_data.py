"""Sentinel-1 user data field decoding: bypass, BAQ 3/4/5-bit and FDBAQ, parallel over packets (numba ``prange``).

The user data of a packet with ``NQ`` quads holds four channels one after the other, each starting on a 16-bit word
boundary: IE, IO, QE, QO (in-phase / quadrature of the even / odd samples). Decoded samples are interleaved in time:
``s[2i] = IE[i] + j QE[i]``, ``s[2i+1] = IO[i] + j QO[i]`` (complex64, ``2 NQ`` per packet).

- Bypass (BAQ mode 0, data formats A/B): 10-bit sign-and-magnitude codes, value = the signed code.
- BAQ (modes 3, 4, 5, format C): ``b``-bit sign-and-magnitude codes; blocks of 128 quads, each QE block starts with an
  8-bit threshold index THIDX shared by the four channels of the block.
- FDBAQ (modes 12-14, format D): Huffman codes (sign bit, then the magnitude's code word from the tree of the
  block's bit-rate code BRC 0-4); each IE block starts with a 3-bit BRC, each QE block with the 8-bit THIDX.

Reconstruction (S1-IF-ASD-PL-0007 section 5.2): *simple* when THIDX is at most the table's threshold (magnitude
``m`` itself below the top code, the top code -> the simple-reconstruction parameter A (BAQ) / B (FDBAQ) of THIDX);
*normal* above it: ``NRL[m] * SF[THIDX]`` (normalised reconstruction level times sigma factor; the product is
taken in float32, as ESA's reference decoder does: a float64 product differs from its output by one ulp). Tables 5.2-1..3 below
are the specification's values.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = [
    "BAQ_NRL",
    "BAQ_SIMPLE_A",
    "FDBAQ_NRL",
    "FDBAQ_SIMPLE_B",
    "HUFFMAN_CODES",
    "SIGMA_FACTORS",
    "USER_DATA_PROBLEMS",
    "baq_user_data_bytes",
    "bypass_user_data_bytes",
    "decode_user_data",
]

BLOCK_QUADS = 128

#: Table 5.2-1, simple reconstruction parameter A per BAQ mode (index THIDX 0.., last index = threshold).
BAQ_SIMPLE_A = {
    3: (3.00, 3.00, 3.12, 3.55),
    4: (7.00, 7.00, 7.00, 7.17, 7.40, 7.76),
    5: (15.00, 15.00, 15.00, 15.00, 15.00, 15.00, 15.44, 15.56, 16.11, 16.38, 16.65),
}
#: Table 5.2-1, simple reconstruction parameter B per FDBAQ bit-rate code.
FDBAQ_SIMPLE_B = {
    0: (3.00, 3.00, 3.16, 3.53),
    1: (4.00, 4.00, 4.08, 4.37),
    2: (6.00, 6.00, 6.00, 6.15, 6.50, 6.88),
    3: (9.00, 9.00, 9.00, 9.00, 9.36, 9.50, 10.10),
    4: (15.00, 15.00, 15.00, 15.00, 15.00, 15.00, 15.22, 15.50, 16.05),
}
#: Table 5.2-2, normalised reconstruction levels per BAQ mode (index = magnitude code).
BAQ_NRL = {
    3: (0.2490, 0.7681, 1.3655, 2.1864),
    4: (0.1290, 0.3900, 0.6601, 0.9471, 1.2623, 1.6261, 2.0793, 2.7467),
    5: (
        0.0660, 0.1985, 0.3320, 0.4677, 0.6061, 0.7487, 0.8964, 1.0510,
        1.2143, 1.3896, 1.5800, 1.7914, 2.0329, 2.3234, 2.6971, 3.2692,
    ),
}  # fmt: skip
#: Table 5.2-2, normalised reconstruction levels per FDBAQ bit-rate code.
FDBAQ_NRL = {
    0: (0.3637, 1.0915, 1.8208, 2.6406),
    1: (0.3042, 0.9127, 1.5216, 2.1313, 2.8426),
    2: (0.2305, 0.6916, 1.1528, 1.6140, 2.0754, 2.5369, 3.1191),
    3: (0.1702, 0.5107, 0.8511, 1.1916, 1.5321, 1.8726, 2.2131, 2.5536, 2.8942, 3.3744),
    4: (
        0.1130, 0.3389, 0.5649, 0.7908, 1.0167, 1.2428, 1.4687, 1.6947,
        1.9206, 2.1466, 2.3725, 2.5985, 2.8244, 3.0504, 3.2764, 3.6623,
    ),
}  # fmt: skip
#: Table 5.2-3, sigma factors SF[THIDX], THIDX 0..255: 0.627 steps to 100, then 1.2545 steps.
SIGMA_FACTORS = (
    0.00, 0.63, 1.25, 1.88, 2.51, 3.13, 3.76, 4.39, 5.01, 5.64, 6.27, 6.89, 7.52, 8.15, 8.77, 9.40,
    10.03, 10.65, 11.28, 11.91, 12.53, 13.16, 13.79, 14.41, 15.04, 15.67, 16.29, 16.92, 17.55, 18.17, 18.80, 19.43,
    20.05, 20.68, 21.31, 21.93, 22.56, 23.19, 23.81, 24.44, 25.07, 25.69, 26.32, 26.95, 27.57, 28.20, 28.83, 29.45,
    30.08, 30.71, 31.33, 31.96, 32.59, 33.21, 33.84, 34.47, 35.09, 35.72, 36.35, 36.97, 37.60, 38.23, 38.85, 39.48,
    40.11, 40.73, 41.36, 41.99, 42.61, 43.24, 43.87, 44.49, 45.12, 45.75, 46.37, 47.00, 47.63, 48.25, 48.88, 49.51,
    50.13, 50.76, 51.39, 52.01, 52.64, 53.27, 53.89, 54.52, 55.15, 55.77, 56.40, 57.03, 57.65, 58.28, 58.91, 59.53,
    60.16, 60.79, 61.41, 62.04, 62.98, 64.24, 65.49, 66.74, 68.00, 69.25, 70.50, 71.76, 73.01, 74.26, 75.52, 76.77,
    78.02, 79.28, 80.53, 81.78, 83.04, 84.29, 85.54, 86.80, 88.05, 89.30, 90.56, 91.81, 93.06, 94.32, 95.57, 96.82,
    98.08, 99.33, 100.58, 101.84, 103.09, 104.34, 105.60, 106.85, 108.10, 109.35, 110.61, 111.86, 113.11, 114.37,
    115.62, 116.87, 118.13, 119.38, 120.63, 121.89, 123.14, 124.39, 125.65, 126.90, 128.15, 129.41, 130.66, 131.91,
    133.17, 134.42, 135.67, 136.93, 138.18, 139.43, 140.69, 141.94, 143.19, 144.45, 145.70, 146.95, 148.21, 149.46,
    150.71, 151.97, 153.22, 154.47, 155.73, 156.98, 158.23, 159.49, 160.74, 161.99, 163.25, 164.50, 165.75, 167.01,
    168.26, 169.51, 170.77, 172.02, 173.27, 174.53, 175.78, 177.03, 178.29, 179.54, 180.79, 182.05, 183.30, 184.55,
    185.81, 187.06, 188.31, 189.57, 190.82, 192.07, 193.33, 194.58, 195.83, 197.09, 198.34, 199.59, 200.85, 202.10,
    203.35, 204.61, 205.86, 207.11, 208.37, 209.62, 210.87, 212.13, 213.38, 214.63, 215.89, 217.14, 218.39, 219.65,
    220.90, 222.15, 223.41, 224.66, 225.91, 227.17, 228.42, 229.67, 230.93, 232.18, 233.43, 234.69, 235.94, 237.19,
    238.45, 239.70, 240.95, 242.21, 243.46, 244.71, 245.97, 247.22, 248.47, 249.73, 250.98, 252.23, 253.49, 254.74,
    255.99, 255.99,
)  # fmt: skip
#: Huffman code words of the magnitude (after the sign bit) per bit-rate code, index = magnitude (section 4.4).
HUFFMAN_CODES = {
    0: ("0", "10", "110", "111"),
    1: ("0", "10", "110", "1110", "1111"),
    2: ("0", "10", "110", "1110", "11110", "111110", "111111"),
    3: ("00", "01", "10", "110", "1110", "11110", "111110", "1111110", "11111110", "11111111"),
    4: (
        "00", "010", "011", "100", "101", "1100", "1101", "1110", "11110", "111110",
        "11111100", "11111101", "111111100", "111111101", "111111110", "111111111",
    ),
}  # fmt: skip

#: decode problem codes -> what they mean (0: none).
USER_DATA_PROBLEMS = {
    1: "user data ends before all samples are decoded (truncated or corrupted)",
    2: "invalid bit-rate code (BRC > 4) in an FDBAQ block",
    3: "unknown BAQ mode",
    4: "number of quads is zero",
}

_PEEK = 10  # bits looked at per Huffman symbol: sign + the longest code word (9)


def _huffman_tables() -> np.ndarray:
    """``table[brc, w]`` for the next 10 bits ``w``: ``length << 8 | sign << 4 | magnitude`` (length incl. sign)."""
    table = np.zeros((5, 1 << _PEEK), dtype=np.int32)
    for brc, codes in HUFFMAN_CODES.items():
        for m, word in enumerate(codes):
            for sign in (0, 1):
                bits = str(sign) + word
                free = _PEEK - len(bits)
                base = int(bits, 2) << free
                table[brc, base : base + (1 << free)] = (len(bits) << 8) | (sign << 4) | m
    return table


def _padded(rows: dict[int, tuple[float, ...]], n_rows: int, width: int) -> np.ndarray:
    out = np.zeros((n_rows, width), dtype=np.float32)
    for k, values in rows.items():
        out[k, : len(values)] = values
    return out


_HUFFMAN = _huffman_tables()
_SF = np.array(SIGMA_FACTORS, dtype=np.float32)
_FD_NRL = _padded(FDBAQ_NRL, 5, 16)
_FD_B = _padded(FDBAQ_SIMPLE_B, 5, 16)
_FD_SIMPLE_MAX = np.array([len(FDBAQ_SIMPLE_B[b]) - 1 for b in range(5)], dtype=np.int64)  # THIDX threshold
_FD_LEVELS = np.array([len(FDBAQ_NRL[b]) for b in range(5)], dtype=np.int64)
_BAQ_NRL = _padded(BAQ_NRL, 6, 16)
_BAQ_A = _padded(BAQ_SIMPLE_A, 6, 16)
_BAQ_SIMPLE_MAX = np.array([0, 0, 0, 3, 5, 10], dtype=np.int64)


def bypass_user_data_bytes(nq: int) -> int:
    """Bytes of a bypass user data field with ``nq`` quads (four channels of ``ceil(10 nq / 16)`` words)."""
    return 4 * 2 * ((10 * nq + 15) // 16)


def baq_user_data_bytes(nq: int, bits: int) -> int:
    """Bytes of a BAQ ``bits``-bit user data field with ``nq`` quads (the QE channel carries one THIDX per block)."""
    blocks = (nq + BLOCK_QUADS - 1) // BLOCK_QUADS
    words = (bits * nq + 15) // 16
    return 2 * (3 * words + (bits * nq + 8 * blocks + 15) // 16)


# The kernels below read bits through a 64-bit accumulator ``acc`` holding ``nacc`` unread bits (refilled a byte at a
# time up to 56 bits): one shift and mask per symbol instead of three byte loads. ``byte`` is the next byte to load,
# so the bit position is ``8 byte - nacc``.


@nb.njit(inline="always")
def _refill(buf, byte, acc, nacc):
    n = buf.size
    while nacc <= 48:
        acc = (acc << 8) | (np.int64(buf[byte]) if byte < n else np.int64(0))
        byte += 1
        nacc += 8
    return byte, acc & ((np.int64(1) << nacc) - 1), nacc


_SLOT = np.array([0, 2, 1, 3], dtype=np.int64)  # IE, IO, QE, QO -> float index within a quad (re/im of 2 samples)

# Bypass and BAQ codes have a fixed width, so a channel decodes in *groups* that end on a byte boundary: 4 bypass codes
# in 5 bytes, 8 BAQ codes in ``bits`` bytes. A group is loaded as one big-endian integer and its codes shifted out,
# and every code goes through a table straight into the output (no per-code bit reader, no intermediate code array).


@nb.njit(inline="always")
def _load_be(buf, at, nbytes):
    """``nbytes`` (<= 7) bytes of ``buf`` from ``at`` as a big-endian integer; bytes past the end read as 0."""
    v = np.int64(0)
    for k in range(nbytes):
        v = (v << 8) | (np.int64(buf[at + k]) if at + k < buf.size else np.int64(0))
    return v


@nb.njit(inline="always")
def _load_be_unchecked(buf, at, nbytes):
    """As :func:`_load_be` for a group known to lie inside ``buf`` (``nbytes`` a literal: the loop unrolls)."""
    v = np.int64(0)
    for k in range(nbytes):
        v = (v << 8) | np.int64(buf[at + k])
    return v


def _bypass_table() -> np.ndarray:
    """10-bit sign-and-magnitude code -> float32 value."""
    c = np.arange(1024)
    return np.where(c & 0x200, -(c & 0x1FF), c & 0x1FF).astype(np.float32)


_BYPASS = _bypass_table()


@nb.njit(inline="always")
def _fixed_run(buf, at, first, count, bits, per_group, lut, row, slot):
    """``count`` codes of ``bits`` bits from byte ``at`` (groups of ``per_group`` codes in ``bits * per_group / 8``
    whole bytes) -> ``row[4 (first + i) + slot] = lut[code]``. ``bits`` and ``per_group`` are literals."""
    mask = (1 << bits) - 1
    group_bytes = bits * per_group // 8
    full = count // per_group
    if at + full * group_bytes > buf.size:  # never for a packet that passed the length check; keep reads in bounds
        full = 0
    for g in range(full):
        v = _load_be_unchecked(buf, at + group_bytes * g, group_bytes)
        base = 4 * (first + per_group * g) + slot
        for k in range(per_group):
            row[base + 4 * k] = lut[(v >> (bits * (per_group - 1 - k))) & mask]
    for i in range(per_group * full, count):  # the partial last group
        g, k = divmod(i, per_group)
        v = _load_be(buf, at + group_bytes * g, group_bytes)
        row[4 * (first + i) + slot] = lut[(v >> (bits * (per_group - 1 - k))) & mask]


@nb.njit(cache=True)
def _decode_bypass(buf, start, end, nq, row, table) -> int:
    words = (10 * nq + 15) // 16
    if start + 8 * words > end:
        return 1
    for ch in range(4):
        _fixed_run(buf, start + 2 * words * ch, 0, nq, 10, 4, table, row, _SLOT[ch])
    return 0


@nb.njit(inline="always")
def _baq_channels(buf, start, words, qe_words, nq, bits, row, luts):
    qe_start = start + 4 * words
    block_bytes = 1 + 16 * bits  # THIDX + 128 codes
    for b in range(luts.shape[0]):
        first = b * BLOCK_QUADS
        count = min(BLOCK_QUADS, nq - first)
        lut = luts[b]
        _fixed_run(buf, start + 16 * bits * b, first, count, bits, 8, lut, row, 0)  # IE
        _fixed_run(buf, start + 2 * words + 16 * bits * b, first, count, bits, 8, lut, row, 2)  # IO
        _fixed_run(buf, qe_start + b * block_bytes + 1, first, count, bits, 8, lut, row, 1)  # QE
        _fixed_run(buf, qe_start + 2 * qe_words + 16 * bits * b, first, count, bits, 8, lut, row, 3)  # QO


@nb.njit(cache=True)
def _decode_baq(buf, start, end, nq, bits, row, sf, nrl, simple_a, simple_max) -> int:
    words = (bits * nq + 15) // 16
    n_blocks = (nq + BLOCK_QUADS - 1) // BLOCK_QUADS
    qe_words = (bits * nq + 8 * n_blocks + 15) // 16
    if start + 2 * (3 * words + qe_words) > end:
        return 1
    qe_start = start + 4 * words
    levels = 1 << (bits - 1)
    luts = np.empty((n_blocks, 2 * levels), np.float32)  # per block: code (sign << (bits-1) | magnitude) -> value
    for b in range(n_blocks):
        t = np.int64(buf[qe_start + b * (1 + 16 * bits)])
        for m in range(levels):
            if t <= simple_max[bits]:
                v = np.float32(m) if m < levels - 1 else simple_a[bits, t]
            else:
                v = nrl[bits, m] * sf[t]
            luts[b, m] = v
            luts[b, levels + m] = -v
    # the width as a literal in each branch, so the group loops compile with constant shifts
    if bits == 3:
        _baq_channels(buf, start, words, qe_words, nq, 3, row, luts)
    elif bits == 4:
        _baq_channels(buf, start, words, qe_words, nq, 4, row, luts)
    else:
        _baq_channels(buf, start, words, qe_words, nq, 5, row, luts)
    return 0


@nb.njit(cache=True)
def _fdbaq_reconstruct(codes, brc, thidx, nq, row, sf, nrl, simple_b, simple_max, n_levels) -> None:
    """Codes (sign << 4 | magnitude) of the four channels -> interleaved float32 samples, per-block tables."""
    lut = np.empty(32, np.float32)
    for b in range(brc.size):
        r = brc[b]
        t = thidx[b]
        top = n_levels[r] - 1
        for m in range(n_levels[r]):
            if t <= simple_max[r]:
                v = np.float32(m) if m < top else simple_b[r, t]
            else:
                v = nrl[r, m] * sf[t]
            lut[m] = v
            lut[16 + m] = -v
        for i in range(b * BLOCK_QUADS, min(nq, (b + 1) * BLOCK_QUADS)):
            row[4 * i] = lut[codes[0, i]]
            row[4 * i + 2] = lut[codes[1, i]]
            row[4 * i + 1] = lut[codes[2, i]]
            row[4 * i + 3] = lut[codes[3, i]]


@nb.njit(cache=True)
def _decode_fdbaq(buf, start, end, nq, row, huffman, sf, nrl, simple_b, simple_max, n_levels) -> int:
    n_blocks = (nq + BLOCK_QUADS - 1) // BLOCK_QUADS
    brc = np.empty(n_blocks, np.int64)
    thidx = np.empty(n_blocks, np.int64)
    codes = np.empty((4, nq), np.uint8)  # sign << 4 | magnitude
    byte = start
    for ch in range(4):
        ch_start = byte
        acc = np.int64(0)
        nacc = 0
        for b in range(n_blocks):
            if nacc < 8:
                byte, acc, nacc = _refill(buf, byte, acc, nacc)
            if ch == 0:
                nacc -= 3
                brc[b] = (acc >> nacc) & 7
                if brc[b] > 4:
                    return 2
            elif ch == 2:
                nacc -= 8
                thidx[b] = (acc >> nacc) & 0xFF
            table = huffman[brc[b]]
            out = codes[ch]
            for i in range(b * BLOCK_QUADS, min(nq, (b + 1) * BLOCK_QUADS)):
                if nacc < _PEEK:
                    byte, acc, nacc = _refill(buf, byte, acc, nacc)
                e = table[(acc >> (nacc - _PEEK)) & ((1 << _PEEK) - 1)]
                nacc -= e >> 8
                out[i] = e & 0x1F
        used = 8 * (byte - ch_start) - nacc
        byte = ch_start + 2 * ((used + 15) // 16)
        if byte > end:
            return 1
    _fdbaq_reconstruct(codes, brc, thidx, nq, row, sf, nrl, simple_b, simple_max, n_levels)
    return 0


@nb.njit(cache=True)
def _decode_fdbaq_pair(buf, start0, end0, start1, end1, nq, row0, row1, huffman, sf, nrl, simple_b, simple_max,
                       n_levels) -> int:  # fmt: skip
    """Two FDBAQ packets of the same quad count in lockstep: two independent bit-reading chains in one loop keep
    the core busy while each waits on its table load (the Huffman decode is latency-bound). Nonzero: a packet
    failed (the caller decodes both alone to tell which)."""
    n_blocks = (nq + BLOCK_QUADS - 1) // BLOCK_QUADS
    brc0 = np.empty(n_blocks, np.int64)
    brc1 = np.empty(n_blocks, np.int64)
    thidx0 = np.empty(n_blocks, np.int64)
    thidx1 = np.empty(n_blocks, np.int64)
    codes0 = np.empty((4, nq), np.uint8)
    codes1 = np.empty((4, nq), np.uint8)
    byte0, byte1 = start0, start1
    mask = (1 << _PEEK) - 1
    for ch in range(4):
        ch0, ch1 = byte0, byte1
        acc0 = np.int64(0)
        acc1 = np.int64(0)
        nacc0 = 0
        nacc1 = 0
        for b in range(n_blocks):
            if nacc0 < 8:
                byte0, acc0, nacc0 = _refill(buf, byte0, acc0, nacc0)
            if nacc1 < 8:
                byte1, acc1, nacc1 = _refill(buf, byte1, acc1, nacc1)
            if ch == 0:
                nacc0 -= 3
                nacc1 -= 3
                brc0[b] = (acc0 >> nacc0) & 7
                brc1[b] = (acc1 >> nacc1) & 7
                if brc0[b] > 4 or brc1[b] > 4:
                    return 2
            elif ch == 2:
                nacc0 -= 8
                nacc1 -= 8
                thidx0[b] = (acc0 >> nacc0) & 0xFF
                thidx1[b] = (acc1 >> nacc1) & 0xFF
            t0 = huffman[brc0[b]]
            t1 = huffman[brc1[b]]
            out0 = codes0[ch]
            out1 = codes1[ch]
            for i in range(b * BLOCK_QUADS, min(nq, (b + 1) * BLOCK_QUADS)):
                if nacc0 < _PEEK:
                    byte0, acc0, nacc0 = _refill(buf, byte0, acc0, nacc0)
                if nacc1 < _PEEK:
                    byte1, acc1, nacc1 = _refill(buf, byte1, acc1, nacc1)
                e0 = t0[(acc0 >> (nacc0 - _PEEK)) & mask]
                e1 = t1[(acc1 >> (nacc1 - _PEEK)) & mask]
                nacc0 -= e0 >> 8
                nacc1 -= e1 >> 8
                out0[i] = e0 & 0x1F
                out1[i] = e1 & 0x1F
        byte0 = ch0 + 2 * ((8 * (byte0 - ch0) - nacc0 + 15) // 16)
        byte1 = ch1 + 2 * ((8 * (byte1 - ch1) - nacc1 + 15) // 16)
        if byte0 > end0 or byte1 > end1:
            return 1
    _fdbaq_reconstruct(codes0, brc0, thidx0, nq, row0, sf, nrl, simple_b, simple_max, n_levels)
    _fdbaq_reconstruct(codes1, brc1, thidx1, nq, row1, sf, nrl, simple_b, simple_max, n_levels)
    return 0


@nb.njit(cache=True)
def _decode_one(buf, k, starts, ends, nqs, modes, out, status, huffman, sf, fd_nrl, fd_b, fd_max, fd_levels,
                baq_nrl, baq_a, baq_max, bypass) -> None:  # fmt: skip
    nq = nqs[k]
    mode = modes[k]
    row = out[k]
    if nq <= 0:
        status[k] = 4
    elif mode == 0:
        status[k] = _decode_bypass(buf, starts[k], ends[k], nq, row, bypass)
    elif mode == 3 or mode == 4 or mode == 5:
        status[k] = _decode_baq(buf, starts[k], ends[k], nq, mode, row, sf, baq_nrl, baq_a, baq_max)
    elif mode == 12 or mode == 13 or mode == 14:
        status[k] = _decode_fdbaq(buf, starts[k], ends[k], nq, row, huffman, sf, fd_nrl, fd_b, fd_max, fd_levels)
    else:
        status[k] = 3


@nb.njit(parallel=True, cache=True)
def _decode_all(
    buf, starts, ends, nqs, modes, out, status, huffman, sf, fd_nrl, fd_b, fd_max, fd_levels, baq_nrl, baq_a, baq_max,
    bypass,
):  # fmt: skip
    n = starts.size
    for j in nb.prange((n + 1) // 2):
        k0 = 2 * j
        k1 = k0 + 1
        out[k0, 4 * max(nqs[k0], 0) :] = 0.0  # zero padding of a shorter row (the output is not pre-zeroed)
        if k1 < n:
            out[k1, 4 * max(nqs[k1], 0) :] = 0.0
        paired = k1 < n and nqs[k0] == nqs[k1] and nqs[k0] > 0 and 12 <= modes[k0] <= 14 and 12 <= modes[k1] <= 14
        if paired and _decode_fdbaq_pair(buf, starts[k0], ends[k0], starts[k1], ends[k1], nqs[k0], out[k0], out[k1],
                                         huffman, sf, fd_nrl, fd_b, fd_max, fd_levels) == 0:  # fmt: skip
            status[k0] = 0
            status[k1] = 0
            continue
        for k in range(k0, min(k1 + 1, n)):
            _decode_one(buf, k, starts, ends, nqs, modes, out, status, huffman, sf, fd_nrl, fd_b, fd_max, fd_levels,
                        baq_nrl, baq_a, baq_max, bypass)  # fmt: skip


def decode_user_data(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    number_of_quads: np.ndarray,
    baq_mode: np.ndarray,
    n_samples: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode the user data fields ``buf[starts[k]:ends[k]]`` (byte offsets) of many packets in parallel.

    Returns ``(samples, status)``: complex64 ``(n_packets, n_samples)`` (default ``2 * max(number_of_quads)``;
    shorter rows zero-padded, a row of a packet that failed is undefined) and per packet its problem code
    (:data:`USER_DATA_PROBLEMS`, 0 = decoded).
    """
    buf = np.ascontiguousarray(buf, dtype=np.uint8)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    nqs = np.ascontiguousarray(number_of_quads, dtype=np.int64)
    modes = np.ascontiguousarray(baq_mode, dtype=np.int64)
    width = int(n_samples if n_samples is not None else (2 * nqs.max() if nqs.size else 0))
    out = np.empty((starts.size, 2 * width), dtype=np.float32)
    status = np.zeros(starts.size, dtype=np.int8)
    if starts.size:
        _decode_all(
            buf, starts, ends, nqs, modes, out, status, _HUFFMAN, _SF, _FD_NRL, _FD_B, _FD_SIMPLE_MAX, _FD_LEVELS,
            _BAQ_NRL, _BAQ_A, _BAQ_SIMPLE_MAX, _BYPASS,
        )  # fmt: skip
    return out.view(np.complex64), status
