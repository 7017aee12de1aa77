"""``sarpipe rfi clean`` / ``sarpipe rfi detect``: outputs, exit codes, errors before anything is written."""

import json

import numpy as np
import pytest

from sarpipe.cli import main
from sarpipe.model import open_raw, save_dataset
from sarpipe.testing import make_scene
from sarpipe.simulate.interference import rfi_truth_pulses


@pytest.fixture(scope="module")
def raw_store(tmp_path_factory):
    ds = make_scene("minisar", 11, n_azimuth=768, n_range=1024, near_range=1500.0, sir_db=-12.0,
                    rfi_overrides={"pulses": [[360, 420]]})
    path = tmp_path_factory.mktemp("rfi") / "raw.zarr"
    save_dataset(ds, path)
    return path, rfi_truth_pulses(ds)


def test_detect_prints_and_writes_the_pulse_runs(raw_store, tmp_path, capsys):
    path, truth = raw_store
    assert main(["rfi", "detect", str(path), "--json", str(tmp_path / "d.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((tmp_path / "d.json").read_text())
    assert printed == saved
    flagged = np.zeros(truth.size, bool)
    for a, b in saved["rfi_pulses"]:
        flagged[a:b] = True
    assert np.count_nonzero(flagged & truth) >= 0.95 * truth.sum()
    assert np.count_nonzero(flagged & ~truth) <= 0.2 * truth.sum()
    assert saved["aperture_pulses"] > 0 and saved["n_image_lines"] > 0


def test_clean_writes_a_valid_raw_store_with_the_rfi_products(raw_store, tmp_path):
    path, truth = raw_store
    out, img = tmp_path / "clean.zarr", tmp_path / "clean_slc.zarr"
    assert main(["rfi", "clean", str(path), "-o", str(out), "--method", "notch", "--param", "pfa=1e-3",
                 "--image", str(img)]) == 0
    ds = open_raw(out)
    before = open_raw(path)
    flags = ds["rfi_pulses"].values
    assert flags.dtype == bool and ds["rfi_image_mask"].dtype == bool
    assert np.count_nonzero(flags & truth) >= 0.95 * truth.sum()
    np.testing.assert_array_equal(ds["echo"].values[~flags], before["echo"].values[~flags])
    record = ds.attrs["history"][-1]
    assert record["step"] == "rfi_clean" and record["params"]["params"]["pfa"] == 1e-3
    assert img.exists()


def test_bad_requests_exit_2_and_write_nothing(raw_store, tmp_path, capsys):
    path, _ = raw_store
    out = tmp_path / "never.zarr"
    assert main(["rfi", "clean", str(path), "-o", str(out), "--method", "nope"]) == 2
    assert "unknown cleanup method" in capsys.readouterr().err
    assert main(["rfi", "clean", str(path), "-o", str(out), "--sr", "2"]) == 2
    assert "no super-resolution model" in capsys.readouterr().err
    assert main(["rfi", "clean", str(path), "-o", str(out), "--param", "window_bins"]) == 2
    assert main(["rfi", "clean", str(path), "-o", str(out), "--param", "pfa=2"]) == 2  # a value the notch refuses
    assert "bad parameters for cleanup method 'notch'" in capsys.readouterr().err
    assert main(["rfi", "clean", str(tmp_path / "missing.zarr"), "-o", str(out)]) == 2
    assert main(["rfi", "detect"]) == 2
    assert not out.exists() and not list(tmp_path.glob(".never.zarr*"))
