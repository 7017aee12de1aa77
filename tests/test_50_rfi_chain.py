"""The RFI chain end to end on small simulated MiniSAR-like scenes (simulator + focusing): pulse recall and extra
pulses against the truth, PSNR gain of the notch, a strong point target through the notch, clean scenes."""

import numpy as np
import pytest

from sarpipe.focus import focus
from sarpipe.rfi.clean import DetectionSettings, clean, detect
from sarpipe.rfi.metrics import psnr, pulse_extra_fraction, pulse_recall
from sarpipe.simulate.interference import rfi_truth_pulses
from sarpipe.testing import make_scene, point_target_amplitude

N_AZ, N_RG = 1024, 2048
BURST = (470, 550)


def _image(ds, echo=None):
    return focus(ds if echo is None else ds.assign(echo=(("azimuth", "range"), np.asarray(echo)))).slc.values


@pytest.fixture(scope="module")
def contaminated():
    """One scene, one 80-pulse burst at SIR -10 dB, a point target 30 dB above the clutter in the middle of it."""
    target = [{"azimuth_index": 510.0, "range_index": 1024.0, "amplitude": point_target_amplitude(30.0)}]
    return make_scene(
        "minisar",
        3,
        n_azimuth=N_AZ,
        n_range=N_RG,
        sir_db=-10.0,
        targets=target,
        rfi_overrides={"pulses": [list(BURST)]},
    )


@pytest.fixture(scope="module")
def detection(contaminated):
    return detect(contaminated, focus(contaminated))


def test_rfi_pulses_found_with_few_extra(contaminated, detection):
    truth = rfi_truth_pulses(contaminated)
    assert truth.sum() == BURST[1] - BURST[0]
    assert pulse_recall(detection.rfi_pulses, truth) >= 0.95
    assert pulse_extra_fraction(detection.rfi_pulses, truth) <= 0.2
    # geometry alone is recall-complete but an aperture too wide on each side
    cand = detection.mapping.candidates
    assert pulse_recall(cand, truth) == 1.0 and cand.sum() > truth.sum() + detection.mapping.geometry.length_pulses
    assert detection.rfi_image_mask.any() and detection.image.lines.any()


def test_notch_chain_raises_psnr_and_touches_only_flagged_pulses(contaminated, detection):
    ref = _image(contaminated, contaminated["echo_clean"].values)
    interfered = psnr(_image(contaminated), ref)
    result = clean(contaminated, "notch", detection=detection)
    out = result.raw
    cleaned = psnr(_image(out), ref)
    assert cleaned - interfered >= 6.0
    flags = out["rfi_pulses"].values
    np.testing.assert_array_equal(flags, detection.rfi_pulses)
    np.testing.assert_array_equal(out["echo"].values[~flags], contaminated["echo"].values[~flags])
    assert not np.array_equal(out["echo"].values[flags], contaminated["echo"].values[flags])
    assert out["rfi_image_mask"].dims == ("azimuth", "range") and out["rfi_image_mask"].values.any()
    assert "rfi" not in out and out.attrs["processing_history"][-1]["step"] == "rfi_clean"
    assert out.attrs["processing_history"][-1]["params"]["method"] == "notch"


def test_strong_point_target_survives_the_notch(contaminated, detection):
    """A target 30 dB above the clutter whose aperture holds the 80-pulse burst keeps its peak within 1 dB."""
    win = (slice(500, 521), slice(1014, 1035))
    rfi_free = _image(contaminated, contaminated["echo"].values - contaminated["rfi"].values)
    notched = _image(clean(contaminated, "notch", detection=detection).raw)
    loss_db = 20 * np.log10(np.abs(notched[win]).max() / np.abs(rfi_free[win]).max())
    assert abs(loss_db) <= 1.0


@pytest.mark.slow
def test_no_pulses_flagged_on_clean_scenes_over_20_seeds():
    settings = DetectionSettings()
    flagged = []
    for seed in range(20):
        ds = make_scene("minisar", 100 + seed, rfi=False, n_azimuth=768, n_range=1024, near_range=1500.0)
        det = detect(ds, focus(ds), settings)
        flagged.append(int(det.rfi_pulses.sum()))
        if seed == 0:  # and the chain then leaves the scene exactly as it was
            out = clean(ds, "notch", detection=det).raw
            np.testing.assert_array_equal(out["echo"].values, ds["echo"].values)
    assert flagged == [0] * 20
