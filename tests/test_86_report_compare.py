"""The run report with two cleanup methods side by side (what the quickstart shows: the notch beside DIFNet):
method names from the cleanups' records, metrics per method, the strong targets' peak change against the image of
the clean echo (checked against a known gain), the markdown table and the four-panel figure."""

from __future__ import annotations

import numpy as np
import pytest

from sarpipe.focus import focus
from sarpipe.report import comparison_figure, report_markdown, report_metrics, strong_target_peaks
from sarpipe.rfi import clean
from sarpipe.rfi import metrics as M
from sarpipe.testing import make_scene, point_target_amplitude


@pytest.fixture(scope="module")
def scene():
    tgt = [{"azimuth_index": 256.0, "range_index": 512.0, "amplitude": point_target_amplitude(30.0)}]
    ds = make_scene("minisar", 11, n_azimuth=512, n_range=1024, targets=tgt, rfi=False)
    flags = np.zeros(512, bool)
    flags[200:300] = True
    notch = clean(ds, "notch", pulses=flags).raw
    fnotch = clean(ds, "fnotch", pulses=flags).raw
    ref = focus(ds.assign(echo=ds["echo_clean"]))
    return ds, ref, notch, fnotch


def test_two_methods_are_named_and_measured_side_by_side(scene):
    ds, ref, notch, fnotch = scene
    images = {"interfered": focus(ds), "cleaned": focus(notch), "compared": focus(fnotch), "reference": ref}
    r = report_metrics(images, {"raw": ds, "cleaned_raw": notch, "compared_raw": fnotch})
    assert r["methods"] == {"cleaned": "notch", "compared": "fnotch"}
    for k in ("cleaned", "compared"):
        assert r[f"psnr_{k}_db"] == pytest.approx(M.psnr(images[k]["slc"].values, ref["slc"].values))
    text = report_markdown(r)
    assert "| metric | interfered | cleaned (notch) | cleaned (fnotch) |" in text
    assert "Strong targets" in text


def test_strong_target_peak_change_matches_a_known_gain(scene):
    _ds, ref, _n, _f = scene
    half = ref.copy(deep=True)
    half["slc"] = half["slc"] * 0.5  # -6.02 dB everywhere
    rows = strong_target_peaks({"reference": ref, "interfered": ref, "compared": half})
    assert len(rows) == 1
    assert rows[0]["peak_change_interfered_db"] == pytest.approx(0.0, abs=1e-9)
    assert rows[0]["peak_change_compared_db"] == pytest.approx(20 * np.log10(0.5), abs=1e-6)
    # the target's pixel: the image's brightest (30 dB above the clutter)
    a, r = np.unravel_index(np.argmax(np.abs(ref["slc"].values)), ref["slc"].shape)
    assert abs(rows[0]["azimuth_index"] - a) <= 2 and abs(rows[0]["range_index"] - r) <= 2


def test_the_figure_has_a_panel_per_image(scene, tmp_path):
    ds, ref, notch, fnotch = scene
    pytest.importorskip("matplotlib")
    three = comparison_figure({"reference": ref, "interfered": focus(ds), "cleaned": focus(notch)}, tmp_path / "3.png")
    four = comparison_figure(
        {"reference": ref, "interfered": focus(ds), "cleaned": focus(notch), "compared": focus(fnotch)},
        tmp_path / "4.png",
        methods={"cleaned": "notch", "compared": "fnotch"},
    )
    from PIL import Image

    assert Image.open(four).size[0] > Image.open(three).size[0] * 1.2
