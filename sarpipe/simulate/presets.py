"""Sensor presets for the stripmap simulator (SI units; sources in ``docs/simulation.md``).

Each preset is a complete parameter set plus a default scene size that holds at least one synthetic aperture
and one chirp. The azimuth antenna length sets the Doppler bandwidth ``B_a = 0.886 * 2 V cos(theta) / L_a``,
kept below the PRF in every preset (no azimuth aliasing of the main beam).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

#: Parameter names a preset defines (all SI): the contract attrs except ``near_range`` (a scene property)
#: plus the antenna length and the look side.
SENSOR_PARAMETERS: tuple[str, ...] = (
    "carrier_frequency",  # Hz
    "range_sampling_rate",  # Hz
    "chirp_rate",  # Hz/s, signed
    "pulse_duration",  # s
    "prf",  # Hz
    "velocity",  # m/s, effective
    "antenna_length",  # m, azimuth
    "look_side",  # "right" | "left"
)


def _preset(**values: Any) -> Mapping[str, Any]:
    return MappingProxyType(values)


SENSORS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        # C-band, Sentinel-1 stripmap-like (S1 beam). f0, antenna length, chirp bandwidth (87.6 MHz) and the
        # right-looking geometry are ESA's published values; pulse length, sampling rate and PRF are
        # representative values of the same order as the SM annotations, not one exact beam.
        "sentinel1_sm": _preset(
            carrier_frequency=5.405e9,
            range_sampling_rate=100.0e6,
            chirp_rate=87.6e6 / 40.0e-6,
            pulse_duration=40.0e-6,
            prf=1700.0,
            velocity=7100.0,
            antenna_length=12.3,
            look_side="right",
            near_range=850_000.0,
            n_azimuth=2048,
            n_range=6144,
            description="C-band Sentinel-1 stripmap-like (S1 beam, 87.6 MHz chirp)",
        ),
        # X-band airborne, MiniSAR-like: 300 MHz chirp (the 30-150 MHz broadband RFI of the DIFNet setting
        # fits inside), low-altitude platform at 100 m/s, ranges of a few km; the 0.8 m antenna gives a
        # synthetic aperture of ~520 pulses at 5 km.
        "minisar": _preset(
            carrier_frequency=9.6e9,
            range_sampling_rate=360.0e6,
            chirp_rate=300.0e6 / 1.0e-6,
            pulse_duration=1.0e-6,
            prf=300.0,
            velocity=100.0,
            antenna_length=0.8,
            look_side="right",
            near_range=5_000.0,
            n_azimuth=1024,
            n_range=2048,
            description="X-band airborne MiniSAR-like (300 MHz chirp)",
        ),
        # C-band RADARSAT-1 fine beam, the parameters of Cumming & Wong (2005), Table 6.1 / chapter 6 data set
        # (down-chirp). Their scene has f_dc ~ -6900 Hz; here the Doppler centroid is a separate setting.
        "radarsat1": _preset(
            carrier_frequency=5.300e9,
            range_sampling_rate=32.317e6,
            chirp_rate=-0.72135e12,
            pulse_duration=41.74e-6,
            prf=1256.98,
            velocity=7062.0,
            antenna_length=15.0,
            look_side="right",
            near_range=988_647.462,
            n_azimuth=2048,
            n_range=2048,
            description="C-band RADARSAT-1-like (Cumming & Wong fine-beam parameters)",
        ),
    }
)
