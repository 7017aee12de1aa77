"""torch is imported only by learned methods: the CLI, the RFI chain, the pipeline layer and a whole focus run in
a fresh interpreter must leave ``torch`` out of ``sys.modules``."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


@pytest.mark.slow
def test_focus_and_registries_do_not_import_torch(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import sarpipe.cli, sarpipe.rfi, sarpipe.pipeline
        from sarpipe.model import sar_dataset, save_dataset
        from sarpipe.rfi.methods import method_names, sr_names
        from sarpipe.pipeline.registry import stage_names
        from sarpipe.cli import main

        method_names(); sr_names(); stage_names()
        attrs = dict(carrier_frequency=1.25e9, range_sampling_rate=100e6, chirp_rate=4e13, pulse_duration=2e-6,
                     prf=100.0, velocity=200.0, near_range=10_000.0)
        rng = np.random.default_rng(0)
        echo = (rng.standard_normal((64, 512)) + 1j * rng.standard_normal((64, 512))).astype(np.complex64)
        save_dataset(sar_dataset(echo, attrs), {str(tmp_path / "raw.zarr")!r})
        code = main(["focus", {str(tmp_path / "raw.zarr")!r}, "-o", {str(tmp_path / "slc.zarr")!r}])
        assert code == 0, code
        code = main(["stages"])
        assert code == 0, code
        print("TORCH" if "torch" in sys.modules else "NO-TORCH")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "NO-TORCH"
