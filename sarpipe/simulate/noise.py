"""Thermal noise: circular complex Gaussian, white over the raw samples.

SNR definition: ``snr_db = 10 log10(mean(|echo_clean|**2) / P_n)``, the mean taken over every raw sample of the
scene (including samples no echo reaches), ``P_n = E|n|**2`` the noise power per complex sample.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def noise_power(echo_clean: np.ndarray, snr_db: float | None = None, power: float | None = None) -> float:
    """Noise power per complex sample from an SNR [dB] (definition above) or given directly."""
    if power is not None:
        return float(power)
    signal = float(np.mean(np.abs(echo_clean.astype(np.complex128)) ** 2)) if echo_clean.size else 0.0
    if signal == 0.0:
        raise InputError(
            "noise.snr_db needs a signal, but the scene has no echo (use noise.power instead)", where="noise.snr_db"
        )
    return signal / 10.0 ** (float(snr_db) / 10.0)


def thermal_noise(shape: tuple[int, int], power: float, rng: np.random.Generator) -> np.ndarray:
    """Complex64 white Gaussian noise with ``E|n|**2 = power``."""
    sigma = np.float32(np.sqrt(power / 2.0))
    out = np.empty(shape, dtype=np.complex64)
    view = out.view(np.float32)
    rng.standard_normal(out=view, dtype=np.float32)
    view *= sigma
    return out
