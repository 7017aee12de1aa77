"""`pipelines/quickstart.yaml` (what `make quickstart` runs): simulate an X-band MiniSAR-like scene with RFI -> focus
-> detect -> clean (the notch, and DIFNet with its shipped weights) -> re-image both -> quicklooks + a report
comparing the two, saying where its outputs are; a second run skips every step. Its time ("a few minutes") is a
benchmark figure (docs/benchmarks.md), not asserted here: on a loaded machine it took 229 s, on an idle one 91 s."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "plugins"))
from pipeline_testing import REPO, run_cli  # noqa: E402

pytestmark = pytest.mark.slow


def test_quickstart(tmp_path):
    out = tmp_path / "quickstart"
    r = run_cli("run", "pipelines/quickstart.yaml", "--set", f"output_dir={out}", cwd=REPO, timeout=600)  # a hang
    assert r.returncode == 0, r.stdout + r.stderr
    # the summary names the output folder (absolute, or relative to the working folder when that is shorter)
    assert any(f"outputs: {shown}/" in r.stdout for shown in (out, os.path.relpath(out, REPO))), r.stdout
    assert "11 ran, 0 skipped, 0 failed" in r.stdout, r.stdout

    m = json.loads((out / "report" / "metrics.json").read_text())
    # cleaning must help against the image of the clean echo, and raise the SIR of the contaminated pulses
    assert m["psnr_cleaned_db"] > m["psnr_interfered_db"] + 2.0, m
    assert m["sir_after_db"] > m["sir_before_db"] + 5.0, m
    assert m["pulse_recall"] >= 0.95, m
    # the learned cleanup beside it: named from its record, helping too, on the same pulses
    assert m["methods"] == {"cleaned": "notch", "compared": "difnet"}, m
    assert m["psnr_compared_db"] > m["psnr_interfered_db"] + 2.0, m
    assert m["sir_after_compared_db"] > m["sir_before_db"] + 5.0, m
    assert m["cleaned_pulses_compared"] == m["cleaned_pulses"], m
    # every simulated target's peak, in every image, against the image of the clean echo
    assert len(m["strong_targets"]) == 5
    assert all("peak_change_compared_db" in row and "peak_change_cleaned_db" in row for row in m["strong_targets"])
    # point targets of the cleaned (noisy) image against window theory (rect): IRW within 5 %, PSLR within 1 dB
    rows = m["point_targets"]["cleaned"]
    assert len(rows) == 5
    for row in rows:
        for axis in ("range", "azimuth"):
            assert abs(row[f"{axis}_irw_m"] / row[f"{axis}_irw_theory_m"] - 1) < 0.05, row
        assert abs(row["range_pslr_db"] - row["range_pslr_theory_db"]) < 1.0, row
        assert abs(row["azimuth_error_px"]) < 0.1 and abs(row["range_error_px"]) < 0.1, row

    from PIL import Image

    for name in ("quicklook_interfered", "quicklook_clean"):
        png = Image.open(out / name / f"{name}.png")
        assert max(png.size) <= 1024 and png.mode == "L"
    assert (out / "report" / "comparison.png").stat().st_size > 10_000
    text = (out / "report" / "report.md").read_text()
    assert "PSNR" in text and "cleaned (notch)" in text and "cleaned (difnet)" in text

    r2 = run_cli("run", "pipelines/quickstart.yaml", "--set", f"output_dir={out}", cwd=REPO, timeout=300)
    assert r2.returncode == 0 and "0 ran, 11 skipped" in r2.stdout, r2.stdout
