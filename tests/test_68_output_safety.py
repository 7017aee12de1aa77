"""Nothing a user gives is lost: an output never replaces an input, nor anything sarpipe did not write, unless
``--overwrite``; leftovers of killed runs are removed by the next run; stores carry consolidated metadata."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sarpipe.cli import main
from sarpipe.errors import InputError
from sarpipe.model import open_raw, sar_dataset, save_dataset

sys.path.insert(0, str(Path(__file__).parent / "plugins"))
from pipeline_testing import env, run_here, write  # noqa: E402

PRODUCT_ATTR = "sarpipe_product"  # the root attribute of the stores sarpipe writes
ATTRS = {
    "carrier_frequency": 9.6e9,
    "range_sampling_rate": 100.0e6,
    "chirp_rate": 1.0e13,
    "pulse_duration": 2.0e-6,
    "prf": 500.0,
    "velocity": 100.0,
    "near_range": 5000.0,
}


def _echo(n_az: int = 64, n_rg: int = 512, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n_az, n_rg)) + 1j * rng.standard_normal((n_az, n_rg))).astype(np.complex64)


def tree_hash(path: Path) -> str:
    """Hash of every file's relative name and bytes under ``path`` (or of the file itself)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(os.fspath(f.relative_to(path) if f != path else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture
def raw(tmp_path) -> Path:
    path = tmp_path / "raw.zarr"
    save_dataset(sar_dataset(_echo(), ATTRS), path)
    return path


def _focus(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["focus", *map(str, args)])
    return code, capsys.readouterr().err


# ------------------------------------------------------------------------------------------ -o and the input


@pytest.mark.parametrize("spelling", ["same", "dotdot", "relative", "symlink"])
def test_focus_output_equal_to_its_input_is_refused_and_the_input_is_intact(
    raw, tmp_path, capsys, monkeypatch, spelling
):
    before = tree_hash(raw)
    monkeypatch.chdir(tmp_path)
    if spelling == "symlink":
        (tmp_path / "link.zarr").symlink_to(raw, target_is_directory=True)
    out = {
        "same": raw,
        "dotdot": tmp_path / "sub" / ".." / "raw.zarr",
        "relative": Path("raw.zarr"),
        "symlink": tmp_path / "link.zarr",
    }[spelling]
    code, err = _focus(capsys, raw, "-o", out)
    assert code == 2, err
    assert err.startswith("error: --output") and "is the input" in err and len(err.strip().splitlines()) == 1, err
    assert tree_hash(raw) == before, "the input store must be untouched"
    assert open_raw(raw).echo.shape == (64, 512)


def test_focus_output_inside_or_containing_its_input_is_refused(raw, tmp_path, capsys):
    before = tree_hash(raw)
    code, err = _focus(capsys, raw, "-o", raw / "slc.zarr")
    assert code == 2 and "inside the input" in err, err
    code, err = _focus(capsys, raw, "-o", tmp_path)
    assert code == 2 and "contains the input" in err, err
    assert tree_hash(raw) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.zarr"], "nothing written beside it either"


def test_defocus_output_equal_to_its_input_is_refused(raw, tmp_path, capsys):
    code, _ = _focus(capsys, raw, "-o", tmp_path / "slc.zarr")
    assert code == 0
    slc = tmp_path / "slc.zarr"
    before = tree_hash(slc)
    capsys.readouterr()
    assert main(["defocus", str(slc), "-o", str(slc)]) == 2
    assert "is the input" in capsys.readouterr().err
    assert tree_hash(slc) == before


# ------------------------------------------------------------------------------------------ -o and the user's things


def test_output_an_existing_user_folder_keeps_the_users_files(raw, tmp_path, capsys):
    mine = tmp_path / "results"
    mine.mkdir()
    (mine / "notes.txt").write_text("two weeks of field notes\n")
    code, err = _focus(capsys, raw, "-o", mine)
    assert code == 2, err
    assert "exists and is a folder sarpipe did not write" in err and "--overwrite" in err, err
    assert (mine / "notes.txt").read_text() == "two weeks of field notes\n"
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary left beside it"


def test_output_an_existing_user_file_is_refused(raw, tmp_path, capsys):
    mine = tmp_path / "slc.zarr"
    mine.write_bytes(b"my own bytes")
    code, err = _focus(capsys, raw, "-o", mine)
    assert code == 2 and "exists and is a file sarpipe did not write" in err, err
    assert mine.read_bytes() == b"my own bytes"
    with pytest.raises(InputError, match="file sarpipe did not write"):
        save_dataset(sar_dataset(_echo(), ATTRS), mine)
    assert mine.read_bytes() == b"my own bytes"
    save_dataset(sar_dataset(_echo(), ATTRS), mine, overwrite=True)  # the user said so
    assert open_raw(mine).echo.shape == (64, 512)


def test_output_a_zarr_store_of_the_users_is_refused(raw, tmp_path):
    theirs = tmp_path / "theirs.zarr"
    sar_dataset(_echo(), ATTRS).to_zarr(theirs, zarr_format=3, consolidated=False)  # written by xarray, not sarpipe
    before = tree_hash(theirs)
    with pytest.raises(InputError, match="folder sarpipe did not write"):
        save_dataset(sar_dataset(_echo(seed=2), ATTRS), theirs)
    assert tree_hash(theirs) == before


def test_rerunning_onto_its_own_earlier_output_still_works(raw, tmp_path, capsys):
    out = tmp_path / "slc.zarr"
    assert _focus(capsys, raw, "-o", out)[0] == 0
    first = xr.open_zarr(out)["slc"].values
    assert _focus(capsys, raw, "-o", out, "--range-window", "hamming:0.75")[0] == 0
    assert not np.array_equal(xr.open_zarr(out)["slc"].values, first), "the earlier output was replaced"
    empty = tmp_path / "empty.zarr"
    empty.mkdir()
    assert _focus(capsys, raw, "-o", empty)[0] == 0, "an empty folder holds nothing to lose"
    assert xr.open_zarr(out).attrs[PRODUCT_ATTR] == "slc"
    assert xr.open_zarr(raw).attrs[PRODUCT_ATTR] == "raw"


def test_output_under_a_file_names_it(raw, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, err = _focus(capsys, raw, "-o", tmp_path / "afile" / "slc.zarr")
    assert code == 2 and "afile is a file, not a folder" in err and "Traceback" not in err, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_output_in_a_read_only_folder_names_it(raw, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, err = _focus(capsys, raw, "-o", ro / "slc.zarr")
    finally:
        ro.chmod(0o755)
    assert code == 2 and f"the folder {ro} is not writable" in err, err


def test_the_working_folder_is_never_an_output(raw, tmp_path, monkeypatch):
    from sarpipe.outputs import check_output

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for path in (".", "..", work):
        with pytest.raises(InputError, match="working folder"):
            check_output(path, overwrite=True)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(InputError, match="home folder"):
        check_output("~", overwrite=True)


# ------------------------------------------------------------------------------------------ simulate / rfi clean


def test_simulate_config_as_its_own_output_is_refused(tmp_path, capsys):
    """`sarpipe simulate CONFIG.yaml -o CONFIG.yaml`: refused through the library (inputs=) and the command line."""
    cfg = tmp_path / "scene.yaml"
    cfg.write_text("sensor: {preset: minisar}\nscene: {n_azimuth: 64, n_range: 96, near_range: 1000.0}\n")
    before = cfg.read_bytes()
    with pytest.raises(InputError, match="is the input"):
        save_dataset(sar_dataset(_echo(), ATTRS), cfg, inputs=(cfg,), overwrite=True)  # refused even with overwrite
    capsys.readouterr()
    assert main(["simulate", str(cfg), "-o", str(cfg)]) == 2
    assert "scene.yaml" in capsys.readouterr().err
    assert cfg.read_bytes() == before


def test_rfi_clean_onto_its_input_is_refused_by_save_dataset(raw):
    before = tree_hash(raw)
    ds = open_raw(raw).load()
    with pytest.raises(InputError, match="is the input"):
        save_dataset(ds, raw, inputs=(raw,))
    with pytest.raises(InputError, match="contains the input"):
        save_dataset(ds, raw.parent, inputs=(raw,), overwrite=True)
    assert tree_hash(raw) == before


def test_rfi_clean_cli_onto_its_input_is_refused(raw, capsys):
    before = tree_hash(raw)
    assert main(["rfi", "clean", str(raw), "-o", str(raw)]) == 2
    assert "is the input" in capsys.readouterr().err
    assert tree_hash(raw) == before


def test_a_folder_of_files_sarpipe_wrote_may_be_replaced_a_users_may_not(tmp_path):
    from sarpipe.atomic import atomic_path
    from sarpipe.outputs import written_by_sarpipe

    ours = tmp_path / "quicklooks"
    with atomic_path(ours) as tmp:
        tmp.mkdir()
        (tmp / "a.txt").write_text("1")
    assert written_by_sarpipe(ours)
    with atomic_path(ours) as tmp:  # a rerun onto its own folder needs no --overwrite
        tmp.mkdir()
        (tmp / "a.txt").write_text("2")
    assert (ours / "a.txt").read_text() == "2"
    users = tmp_path / "mine"
    users.mkdir()
    (users / "notes.txt").write_text("keep")
    with pytest.raises(InputError, match="not written by sarpipe|--overwrite"):
        with atomic_path(users) as tmp:
            tmp.mkdir()
    assert (users / "notes.txt").read_text() == "keep"


# ------------------------------------------------------------------------------------------ recognising sarpipe's files


def test_sarpipe_recognises_its_own_files_only(tmp_path):
    from PIL import Image, PngImagePlugin

    from sarpipe.outputs import written_by_sarpipe

    (tmp_path / "mine.json").write_text(json.dumps({"sarpipe_product": "rfi_detection"}))
    (tmp_path / "user.json").write_text(json.dumps({"rfi_pulses": []}))
    info = PngImagePlugin.PngInfo()
    info.add_text(PRODUCT_ATTR, "quicklook")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "mine.png", pnginfo=info)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "user.png")
    (tmp_path / "user.txt").write_text("{not json")
    assert written_by_sarpipe(tmp_path / "mine.json") and written_by_sarpipe(tmp_path / "mine.png")
    for name in ("user.json", "user.png", "user.txt"):
        assert not written_by_sarpipe(tmp_path / name), name
    from sarpipe.atomic import atomic_path

    with atomic_path(tmp_path / "mine.json") as tmp:  # replaced: sarpipe wrote it
        tmp.write_text("{}")
    with pytest.raises(InputError, match="file sarpipe did not write"), atomic_path(tmp_path / "user.json") as tmp:
        tmp.write_text("{}")
    assert json.loads((tmp_path / "user.json").read_text()) == {"rfi_pulses": []}


def test_a_geotiff_sarpipe_exported_is_replaced_without_overwrite(tmp_path):
    pytest.importorskip("rasterio")
    from sarpipe.export import write_geotiff
    from sarpipe.outputs import written_by_sarpipe

    slc = sar_dataset(_echo(40, 48), ATTRS)
    path = write_geotiff(slc, tmp_path / "a.tif", "echo")
    assert written_by_sarpipe(path)
    write_geotiff(slc, path, "echo", mode="db")  # a rerun onto its own earlier output
    (tmp_path / "user.tif").write_bytes(b"II*\0" + bytes(64))
    assert not written_by_sarpipe(tmp_path / "user.tif")
    with pytest.raises(InputError, match="file sarpipe did not write"):
        write_geotiff(slc, tmp_path / "user.tif", "echo")


# ------------------------------------------------------------------------------------------ consolidated metadata


def test_stores_carry_consolidated_metadata_and_open_without_warning(raw, tmp_path, capsys):
    out = tmp_path / "slc.zarr"
    assert _focus(capsys, raw, "-o", out)[0] == 0
    for path in (raw, out):
        assert "consolidated_metadata" in json.loads((path / "zarr.json").read_text()), path
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ds = xr.open_zarr(path)
        assert set(ds.data_vars) == ({"echo"} if path == raw else {"slc"})
    slc = xr.open_zarr(out, consolidated=True)["slc"].values
    assert np.array_equal(slc, xr.open_zarr(out, consolidated=False)["slc"].values) and np.abs(slc).max() > 0


# ------------------------------------------------------------------------------------------ leftovers of a kill


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_hidden_siblings_of_dead_processes_are_removed_by_the_next_run(raw, tmp_path, capsys):
    from sarpipe.atomic import HOST_TAG, remove_stale_siblings

    out = tmp_path / "slc.zarr"
    dead = tmp_path / f".slc.zarr.cornerturn-{_dead_pid()}-{HOST_TAG}-0badc0de"
    (dead / "c" / "0").mkdir(parents=True)
    (dead / "c" / "0" / "0").write_bytes(b"\0" * 64)
    mine_old = tmp_path / f".slc.zarr.tmp-{os.getpid()}-{HOST_TAG}-0badc0df"  # our pid, from before this process
    mine_old.mkdir()
    os.utime(mine_old, (time.time() - 3600, time.time() - 3600))
    other_host = tmp_path / f".slc.zarr.cornerturn-{_dead_pid()}-ffffff-0badc0e0"
    other_host.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(2.5)  # the living writer started well before its sibling was made
        alive = tmp_path / f".slc.zarr.cornerturn-{sleeper.pid}-{HOST_TAG}-0badc0e1"
        alive.mkdir()
        user = tmp_path / ".slc.zarr.cornerturn-notes"
        user.write_text("a user's file that only looks similar")
        assert _focus(capsys, raw, "-o", out)[0] == 0
        left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
        assert left == sorted([other_host.name, alive.name, user.name]), left
    finally:
        sleeper.kill()
        sleeper.wait()
    assert remove_stale_siblings(out) == 1 and not alive.exists(), "its process is gone now"


def test_a_kill_between_the_two_renames_restores_the_earlier_output(raw, tmp_path):
    from sarpipe.atomic import HOST_TAG, remove_stale_siblings

    out = tmp_path / "slc.zarr"
    before = tree_hash(raw)
    old = tmp_path / f".slc.zarr.old-{_dead_pid()}-{HOST_TAG}-0badc0de"
    os.replace(raw, old)  # the earlier output moved aside, the new one never renamed into place
    assert remove_stale_siblings(out) == 1
    assert tree_hash(out) == before


@pytest.mark.slow
def test_corner_turn_left_by_a_sigkill_mid_focus_is_removed_by_the_next_run(tmp_path, capsys):
    raw = tmp_path / "big.zarr"
    save_dataset(sar_dataset(_echo(2048, 2048, seed=3), ATTRS), raw, chunks={"azimuth": 64})
    out = tmp_path / "slc.zarr"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sarpipe.cli", "focus", str(raw), "-o", str(out)],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".slc.zarr.cornerturn-*")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the corner-turn store never appeared"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert list(tmp_path.glob(".slc.zarr.cornerturn-*")), "the kill left the corner turn behind"
    assert not out.exists()
    assert _focus(capsys, raw, "-o", out)[0] == 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------------------------------ pipelines

MAKE = """
plugins: [sarpipe_teststages]
output_dir: made
steps:
  - name: a
    stage: make_array
    params: {seed: 2, n_azimuth: 8, n_range: 16}
"""


@pytest.fixture
def made(tmp_path, capsys, monkeypatch) -> Path:
    write(tmp_path / "make.yaml", MAKE)
    code, out, err = run_here(capsys, monkeypatch, tmp_path, "run", "make.yaml", "--quiet")
    assert code == 0, out + err
    return tmp_path / "made" / "a.zarr"


def test_pipeline_step_output_equal_to_its_input_is_refused_before_anything_runs(made, tmp_path, capsys, monkeypatch):
    before = tree_hash(made)
    write(
        tmp_path / "p.yaml",
        f"""
        plugins: [sarpipe_teststages]
        output_dir: out
        steps:
          - name: first
            stage: make_array
            params: {{calls_log: calls.log}}
          - name: b
            stage: scale
            inputs: {{data: made/a.zarr}}
            output: {made.parent}/../made/a.zarr
        """,
    )
    code, out, err = run_here(capsys, monkeypatch, tmp_path, "run", "p.yaml")
    assert code == 2, out + err
    assert "p.yaml:10:" in err and "step b: output" in err and "is input made/a.zarr" in err, err
    assert tree_hash(made) == before
    assert not (tmp_path / "calls.log").exists() and not (tmp_path / "out").exists(), "nothing ran, nothing written"
    code, out, err = run_here(capsys, monkeypatch, tmp_path, "run", "p.yaml", "--dry-run")
    assert code == 2 and "is input made/a.zarr" in err
    text = (tmp_path / "p.yaml").read_text()
    for output, how in ((made.parent, "contains"), (made / "echo", "is inside")):
        (tmp_path / "p.yaml").write_text(text.replace(f"{made.parent}/../made/a.zarr", str(output)))
        code, out, err = run_here(capsys, monkeypatch, tmp_path, "run", "p.yaml")
        assert code == 2 and f"{how} input made/a.zarr" in err, err
    assert tree_hash(made) == before


def test_pipeline_output_an_existing_path_it_did_not_write_is_refused(tmp_path, capsys, monkeypatch):
    from sarpipe.pipeline.runner import run_pipeline
    from sarpipe.pipeline.schema import load_pipeline

    mine = tmp_path / "mine.zarr"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    write(
        tmp_path / "p.yaml",
        """
        plugins: [sarpipe_teststages]
        output_dir: out
        steps:
          - name: a
            stage: make_array
            output: ../mine.zarr
            params: {calls_log: calls.log}
        """,
    )
    code, out, err = run_here(capsys, monkeypatch, tmp_path, "run", "p.yaml")
    assert code == 2, out + err
    assert "p.yaml:6:" in err and "folder a pipeline did not write" in err and "--overwrite" in err, err
    assert (mine / "notes.txt").read_text() == "keep me" and not (tmp_path / "calls.log").exists()
    summary = run_pipeline(load_pipeline("p.yaml"), overwrite=True)  # the user said so
    assert summary.exit_code == 0
    assert open_raw(mine).echo.shape == (32, 48) and not (mine / "notes.txt").exists()


def test_output_dir_holding_the_users_stores_replaces_none_of_them(made, tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    save_dataset(open_raw(made).load(), data / "a.zarr")  # the user's own store (sarpipe wrote it, no pipeline did)
    (data / "b.zarr").mkdir()
    (data / "b.zarr" / "readme.txt").write_text("mine")
    before = {p.name: tree_hash(p) for p in data.iterdir()}
    write(
        tmp_path / "p.yaml",
        """
        plugins: [sarpipe_teststages]
        steps:
          - name: a
            stage: make_array
            params: {seed: 9, calls_log: calls.log}
          - name: b
            stage: scale
            inputs: {data: a}
        """,
    )
    code, out, err = run_here(capsys, monkeypatch, tmp_path, "run", "p.yaml", "--set", "output_dir=data")
    assert code == 2, out + err
    assert "--set output_dir=data" in err and "step a: output" in err and "step b: output" in err, err
    assert {p.name: tree_hash(p) for p in data.iterdir()} == before
    assert not (tmp_path / "calls.log").exists()
    # a new folder is fine, and so is running again onto what the pipeline wrote there
    for _ in range(2):
        code, out, err = run_here(
            capsys, monkeypatch, tmp_path, "run", "p.yaml", "--set", "output_dir=fresh", "--restart"
        )
        assert code == 0, out + err


def test_pipeline_outputs_that_nest_in_one_another_or_the_output_folder_are_refused(tmp_path, capsys, monkeypatch):
    write(
        tmp_path / "p.yaml",
        """
        plugins: [sarpipe_teststages]
        output_dir: out
        steps:
          - name: a
            stage: make_array
          - name: b
            stage: scale
            inputs: {data: a}
            output: a.zarr/inner.zarr
          - name: c
            stage: scale
            inputs: {data: a}
            output: "."
        """,
    )
    code, out, err = run_here(capsys, monkeypatch, tmp_path, "run", "p.yaml")
    assert code == 2, out + err
    assert "is inside the output of step a" in err and "is the output folder out" in err, err
    assert not (tmp_path / "out").exists()


def test_batch_outputs_onto_the_catalog_data_are_refused_for_every_entry(tmp_path, capsys, monkeypatch):
    from pipeline_testing import BATCH, make_scenes

    make_scenes(tmp_path, 2, corrupt=None)
    before = {p.name: tree_hash(p) for p in (tmp_path / "scenes").iterdir()}
    write(
        tmp_path / "p.yaml",
        BATCH.replace("output_dir: out", "output_dir: scenes").replace(
            "inputs: {raw: $entry}", "inputs: {raw: $entry}\n    output: ../{entry}.zarr"
        ),
    )
    code, out, err = run_here(capsys, monkeypatch, tmp_path, "run", "p.yaml")
    assert code == 2, out + err
    for k in (1, 2):
        assert f"step scene_{k}/slc: output" in err and f"is input catalog:scene_{k}" in err, err
    assert {p.name: tree_hash(p) for p in (tmp_path / "scenes").iterdir()} == before


def test_a_full_disk_inside_a_writer_is_reported_with_the_output_and_leaves_nothing(tmp_path):
    import errno

    from sarpipe.atomic import atomic_path
    from sarpipe.errors import environment_message

    out = tmp_path / "out.zarr"
    with pytest.raises(OSError) as err:
        with atomic_path(out) as tmp:
            tmp.mkdir()
            raise OSError(errno.ENOSPC, "No space left on device")  # as zarr raises it: no file name
    assert err.value.filename == str(out)
    assert environment_message(err.value) == f"{out}: No space left on device"
    assert list(tmp_path.iterdir()) == []
