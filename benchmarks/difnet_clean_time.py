"""Time of the cleanup step alone (STFT -> method -> ISTFT of the flagged pulses) for the notch and DIFNet with its
shipped weights: 500 contaminated pulses of an 8192-sample scene, the size issue 8 asks to clean in under 2 minutes.
Prints one line per method. Run: `.venv/bin/python benchmarks/difnet_clean_time.py`."""

import time

import numpy as np

from sarpipe.model import sar_dataset
from sarpipe.rfi.clean import clean

attrs = {
    "carrier_frequency": 9.6e9,
    "range_sampling_rate": 360e6,
    "chirp_rate": 300e6 / 2e-6,
    "pulse_duration": 2e-6,
    "prf": 1000.0,
    "velocity": 100.0,
    "near_range": 5000.0,
}
rng = np.random.default_rng(0)
n_az, n_rg = 600, 8192
echo = (rng.standard_normal((n_az, n_rg)) + 1j * rng.standard_normal((n_az, n_rg))).astype(np.complex64)
t = np.arange(n_rg) / 360e6
echo[:500] += (30 * np.exp(2j * np.pi * 40e6 * t)).astype(np.complex64)
ds = sar_dataset(echo, attrs)
pulses = np.zeros(n_az, bool)
pulses[:500] = True
for m in ("notch", "difnet"):
    t0 = time.perf_counter()
    clean(ds, m, pulses=pulses)
    print(m, f"{time.perf_counter() - t0:.1f} s for 500 pulses x 8192 samples", flush=True)
