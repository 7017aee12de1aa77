"""Sentinel-1 sub-commutated ancillary data: the 16-bit words carried one per packet, reassembled into the platform's
position/velocity/time (PVT) and attitude records.

A cycle is 64 consecutive packets whose word index runs 1..64 (S1-IF-ASD-PL-0007 section 3.2.3, tables 3.2-5/6):
words 1-12 the ECEF position x, y, z (IEEE float64, m), 13-18 the ECEF velocity (float32, m/s), 19-22 the PVT time,
23-30 the attitude quaternion q0..q3 (float32), 31-36 the angular rates x, y, z (float32, rad/s), 37-40 the
attitude time, 41 the pointing status, 42-64 housekeeping temperatures. A time is GPS time in 4 words:
``w1 2^16 + w2 + (w3 2^16 + w4) 2^-32`` seconds. Packets whose cycle is incomplete contribute nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Ephemeris", "reassemble_ancillary"]

CYCLE_WORDS = 64


@dataclass(frozen=True)
class Ephemeris:
    """Orbit and attitude records, one per distinct time stamp, sorted by time (GPS seconds)."""

    orbit_time: np.ndarray  # (n,) s
    position: np.ndarray  # (n, 3) m, ECEF
    velocity: np.ndarray  # (n, 3) m/s, ECEF
    attitude_time: np.ndarray  # (m,) s
    quaternion: np.ndarray  # (m, 4) q0..q3 as in the packets
    angular_rate: np.ndarray  # (m, 3) rad/s

    @property
    def empty(self) -> bool:
        return self.orbit_time.size == 0


def _floats(words: np.ndarray, first: int, count: int, per_value: int, dtype: str) -> np.ndarray:
    """``count`` big-endian floats of ``per_value`` words each from columns ``first..`` of ``words`` (k, 64)."""
    block = np.ascontiguousarray(words[:, first : first + count * per_value].astype(">u2"))
    return block.view(dtype).reshape(words.shape[0], count).astype(np.float64)


def _gps_time(words: np.ndarray, first: int) -> np.ndarray:
    w = words[:, first : first + 4].astype(np.float64)
    return w[:, 0] * 65536.0 + w[:, 1] + (w[:, 2] * 65536.0 + w[:, 3]) * 2.0**-32


def reassemble_ancillary(word_index: np.ndarray, word: np.ndarray) -> Ephemeris:
    """The complete cycles among the packets' (word index, word) pairs, in packet order."""
    word_index = np.asarray(word_index, dtype=np.int64)
    word = np.asarray(word, dtype=np.int64)
    starts = np.flatnonzero(word_index[: max(0, word_index.size - CYCLE_WORDS + 1)] == 1)
    if starts.size:
        rows = starts[:, None] + np.arange(CYCLE_WORDS)
        complete = np.all(word_index[rows] == np.arange(1, CYCLE_WORDS + 1), axis=1)
        starts = starts[complete]
    if starts.size == 0:
        z = np.empty(0)
        return Ephemeris(z, z.reshape(0, 3), z.reshape(0, 3), z, z.reshape(0, 4), z.reshape(0, 3))
    words = word[starts[:, None] + np.arange(CYCLE_WORDS)].astype(np.uint16)
    position = _floats(words, 0, 3, 4, ">f8")
    velocity = _floats(words, 12, 3, 2, ">f4")
    orbit_time = _gps_time(words, 18)
    quaternion = _floats(words, 22, 4, 2, ">f4")
    angular_rate = _floats(words, 30, 3, 2, ">f4")
    attitude_time = _gps_time(words, 36)
    _, io = np.unique(orbit_time, return_index=True)
    _, ia = np.unique(attitude_time, return_index=True)
    return Ephemeris(orbit_time[io], position[io], velocity[io], attitude_time[ia], quaternion[ia], angular_rate[ia])
