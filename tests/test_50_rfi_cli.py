"""``sarpipe rfi clean`` / ``sarpipe rfi detect``: outputs, exit codes, errors before anything is written."""

import json

import numpy as np
import pytest

from sarpipe.cli import main
from sarpipe.model import open_raw, save_dataset
from sarpipe.simulate.interference import rfi_truth_pulses
from sarpipe.testing import make_scene


@pytest.fixture(scope="module")
def raw_store(tmp_path_factory):
    ds = make_scene(
        "minisar",
        11,
        n_azimuth=768,
        n_range=1024,
        near_range=1500.0,
        sir_db=-12.0,
        rfi_overrides={"pulses": [[360, 420]]},
    )
    path = tmp_path_factory.mktemp("rfi") / "raw.zarr"
    save_dataset(ds, path)
    return path, rfi_truth_pulses(ds)


def test_detect_prints_and_writes_the_pulse_runs(raw_store, tmp_path, capsys):
    path, truth = raw_store
    assert main(["rfi", "detect", str(path), "--json", str(tmp_path / "d.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((tmp_path / "d.json").read_text())
    assert saved.pop("sarpipe_product") == "rfi-detection-summary"  # the marker that lets a rerun replace it
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
    assert (
        main(
            ["rfi", "clean", str(path), "-o", str(out), "--method", "notch", "--param", "pfa=1e-3", "--image", str(img)]
        )
        == 0
    )
    ds = open_raw(out)
    before = open_raw(path)
    flags = ds["rfi_pulses"].values
    assert flags.dtype == bool and ds["rfi_image_mask"].dtype == bool
    assert np.count_nonzero(flags & truth) >= 0.95 * truth.sum()
    np.testing.assert_array_equal(ds["echo"].values[~flags], before["echo"].values[~flags])
    record = ds.attrs["processing_history"][-1]
    assert record["step"] == "rfi_clean" and record["params"]["params"]["pfa"] == 1e-3
    assert img.exists()


def test_bad_requests_exit_2_and_write_nothing(raw_store, tmp_path, capsys):
    path, _ = raw_store
    out = tmp_path / "never.zarr"
    assert main(["rfi", "clean", str(path), "-o", str(out), "--method", "nope"]) == 2
    assert "unknown cleanup method" in capsys.readouterr().err
    assert main(["rfi", "clean", str(path), "-o", str(out), "--sr", "1.5"]) == 2
    assert "SR factor must be a whole number" in capsys.readouterr().err
    assert main(["rfi", "clean", str(path), "-o", str(out), "--param", "window_bins"]) == 2
    assert main(["rfi", "clean", str(path), "-o", str(out), "--param", "pfa=2"]) == 2  # a value the notch refuses
    err = capsys.readouterr().err
    assert "bad parameters for cleanup method 'notch'" in err and "--param" in err
    assert main(["rfi", "clean", str(path), "-o", str(out), "--param", "window_bins=31.5"]) == 2  # int(31.5) is 31
    assert "--param window_bins" in capsys.readouterr().err
    assert main(["rfi", "clean", str(tmp_path / "missing.zarr"), "-o", str(out)]) == 2
    assert main(["rfi", "detect"]) == 2
    assert not out.exists() and not list(tmp_path.glob(".never.zarr*"))


def test_detect_writes_the_product_clean_reads_it(raw_store, tmp_path, capsys):
    """`rfi detect -o` writes the same product the detect_rfi stage writes; `rfi clean --detection` reuses it and
    cleans exactly what cleaning with its own detection does."""
    from sarpipe.rfi.detection import DETECTION_LAYOUT_VERSION, open_detection

    path, truth = raw_store
    det_path = tmp_path / "det.zarr"
    assert main(["rfi", "detect", str(path), "-o", str(det_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    det = open_detection(det_path)
    assert det.mapping.pulses.shape == truth.shape
    from sarpipe.rfi.clean import pulse_runs

    assert [list(r) for r in pulse_runs(det.rfi_pulses)] == printed["rfi_pulses"]
    import xarray as xr

    stored = xr.open_zarr(det_path, consolidated=False)
    assert stored.attrs["rfi_detection_layout_version"] == DETECTION_LAYOUT_VERSION
    assert stored.attrs["processing_history"][-1]["step"] == "rfi_detect"

    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    assert main(["rfi", "clean", str(path), "-o", str(a), "--detection", str(det_path)]) == 0
    assert main(["rfi", "clean", str(path), "-o", str(b)]) == 0
    ra, rb = open_raw(a), open_raw(b)
    np.testing.assert_array_equal(ra["echo"].values, rb["echo"].values)
    np.testing.assert_array_equal(ra["rfi_pulses"].values, rb["rfi_pulses"].values)
    rec_a, rec_b = ra.attrs["processing_history"][-1]["params"], rb.attrs["processing_history"][-1]["params"]
    assert rec_a["sr"] is None and rec_a["method"] == "notch" and rec_a["detection"] == rec_b["detection"]


def test_detection_layout_is_checked(raw_store, tmp_path):
    import xarray as xr

    from sarpipe.errors import InputError
    from sarpipe.rfi.detection import open_detection

    path, _ = raw_store
    det_path = tmp_path / "det.zarr"
    assert main(["rfi", "detect", str(path), "-o", str(det_path)]) == 0
    ds = xr.open_zarr(det_path, consolidated=False).load()
    ds.attrs["rfi_detection_layout_version"] = 99
    save_dataset(ds, tmp_path / "future.zarr")
    with pytest.raises(InputError, match="future.zarr: detection layout version 99"):
        open_detection(tmp_path / "future.zarr")
    del ds.attrs["rfi_detection_layout_version"]
    save_dataset(ds, tmp_path / "old.zarr")
    with pytest.raises(InputError, match="not an RFI detection store"):
        open_detection(tmp_path / "old.zarr")
    out = tmp_path / "never.zarr"
    assert main(["rfi", "clean", str(path), "-o", str(out), "--detection", str(tmp_path / "old.zarr")]) == 2
    assert main(["rfi", "clean", str(path), "-o", str(out), "--detection", str(path)]) == 2  # a raw store
    assert not out.exists()


def test_wrong_option_type_names_the_option(raw_store, tmp_path, capsys):
    path, _ = raw_store
    out = tmp_path / "never.zarr"
    assert main(["rfi", "clean", str(path), "-o", str(out), "--param", "pfa=abc"]) == 2
    err = capsys.readouterr().err
    assert "error: --param pfa:" in err and "--method" not in err
    assert main(["rfi", "clean", str(path), "-o", str(out), "--method", "esf", "--param", "max_rank=two"]) == 2
    assert "--param max_rank" in capsys.readouterr().err
    assert not out.exists()
