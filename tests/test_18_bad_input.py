"""Bad input given on the command line is refused with exit status 2 and one message naming what the user wrote
(the option, the file, the key with its line), and nothing is written (issue 7, "finished-looking wrong outputs",
"resource bombs" and "messages")."""

from __future__ import annotations

import pytest

from sarpipe.cli import main

PIPELINE = """\
name: p
output_dir: out
steps:
  - name: raw
    stage: simulate
    params:
      config: {sensor: {preset: minisar}, scene: {n_azimuth: 64, n_range: 64}, targets: [{range_index: 32, azimuth_index: 32}]}
"""


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _error(capsys) -> str:
    return capsys.readouterr().err


def test_set_of_an_unknown_section_names_the_option(here, capsys):
    (here / "base.yaml").write_text(PIPELINE)
    code = main(["run", "base.yaml", "--set", "foo.bar=1", "--dry-run"])
    err = _error(capsys)
    assert code == 2
    assert "--set foo.bar=1: foo: unknown key" in err
    assert "base.yaml:1:1" not in err
    assert not (here / "out").exists()


def test_folder_given_as_pipeline_says_folder(here, capsys):
    (here / "p.yaml").mkdir()
    assert main(["run", "p.yaml"]) == 2
    assert "p.yaml: is a folder, expected a YAML file" in _error(capsys)


@pytest.mark.parametrize(
    "command",
    [["simulate", "cfg.yaml", "-o", "raw.zarr"], ["run", "cfg.yaml"], ["catalog", "list", "--catalog", "cfg.yaml"]],
)
def test_binary_file_given_as_yaml_is_one_line(here, capsys, command):
    (here / "cfg.yaml").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    assert main(command) == 2
    err = _error(capsys)
    assert err.startswith("error: cfg.yaml: is ") and err.count("\n") == 1, err
    assert not (here / "raw.zarr").exists()


# ------------------------------------------------------------------------------------------ simulator configs

SCENE = "sensor: {preset: minisar}\nscene: {n_azimuth: 64, n_range: 64}\n"
TARGET = "targets: [{range_index: 32, azimuth_index: 32}]\n"


def _simulate_fails(here, capsys, text: str) -> str:
    (here / "cfg.yaml").write_text(text)
    code = main(["simulate", "cfg.yaml", "-o", "raw.zarr"])
    err = _error(capsys)
    assert code == 2, err
    assert "Traceback" not in err
    assert not (here / "raw.zarr").exists()
    assert [p.name for p in here.iterdir()] == ["cfg.yaml"], "nothing may be left behind"
    return err


@pytest.mark.parametrize(
    "text, where",
    [
        (SCENE + TARGET + "noise: {snr_db: .nan}\n", "cfg.yaml:4:9: noise.snr_db"),
        (
            "sensor: {preset: minisar, velocity: .inf}\nscene: {n_azimuth: 64, n_range: 64}\n" + TARGET,
            "cfg.yaml:1:27: sensor.velocity",
        ),
        (
            SCENE + "targets: [{range_index: 32, azimuth_index: 32, amplitude: .inf}]\n",
            "cfg.yaml:3:48: targets[0].amplitude",
        ),
        (SCENE + TARGET + "rfi: {preset: minisar, sir_db: -.inf}\n", "cfg.yaml:4:24: rfi.sir_db"),
    ],
)
def test_nan_or_inf_in_the_config_is_refused_with_its_key(here, capsys, text, where):
    err = _simulate_fails(here, capsys, text)
    assert where in err and "finite" in err, err


def test_overflowing_amplitude_is_refused_before_writing(here, capsys):
    err = _simulate_fails(here, capsys, SCENE + "targets: [{range_index: 32, azimuth_index: 32, amplitude: 1e300}]\n")
    assert "variable 'echo'" in err and "NaN or Inf" in err


@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n"])
def test_empty_config_is_refused(here, capsys, text):
    assert "cfg.yaml: empty configuration" in _simulate_fails(here, capsys, text)


def test_scene_without_anything_in_it_is_refused(here, capsys):
    assert "the scene is empty" in _simulate_fails(here, capsys, SCENE)


def test_targets_and_rfi_intervals_outside_the_scene_are_refused_with_their_lines(here, capsys):
    err = _simulate_fails(
        here,
        capsys,
        SCENE + "targets:\n  - {range_index: 32, azimuth_index: 32}\n"
        "  - {range_index: 100, azimuth_index: -3}\n  - {slant_range: 1.0e6, azimuth_time: 0.01}\n"
        "rfi: {preset: minisar, pulses: [[10, 20], [50, 80]]}\n",
    )
    assert "cfg.yaml:5:6: targets[1].range_index: 100 lies outside the scene's range samples 0..63" in err
    assert "cfg.yaml:5:24: targets[1].azimuth_index: -3 lies outside the scene's pulses 0..63" in err
    assert "cfg.yaml:6:6: targets[2].slant_range: 1e+06 m lies outside the scene's slant ranges" in err
    assert "cfg.yaml:7:43: rfi.pulses[1]: pulse interval [50, 80) reaches beyond the scene's 64 pulses" in err


def test_rfi_bursts_longer_than_the_scene_are_refused(here, capsys):
    err = _simulate_fails(here, capsys, SCENE + TARGET + "rfi: {preset: minisar, bursts: {length: 100}}\n")
    assert "rfi.bursts.length: bursts of 100 pulses do not fit" in err


def test_duplicate_key_in_simulator_config_names_both_lines(here, capsys):
    err = _simulate_fails(here, capsys, SCENE + TARGET + "scene: {n_azimuth: 32, n_range: 64}\n")
    assert "cfg.yaml:4:1: scene: key given twice (first at line 2)" in err


@pytest.mark.parametrize(
    "scene, keys",
    [
        ("{n_azimuth: 1000000000}", "scene.n_azimuth"),
        ("{n_azimuth: 100000, n_range: 100000}", "scene.n_azimuth x scene.n_range"),
    ],
)
def test_huge_scene_is_refused_with_the_figure(here, capsys, scene, keys):
    err = _simulate_fails(here, capsys, f"sensor: {{preset: minisar}}\nscene: {scene}\n" + TARGET)
    assert keys in err and "GiB of memory" in err and "available" in err


def test_duplicate_key_in_catalog_names_both_lines(here, capsys):
    (here / "cat.yaml").write_text(
        "entries:\n  a: {kind: simulated, config: {sensor: {preset: minisar}}}\n"
        "  a: {kind: simulated, config: {sensor: {preset: radarsat1}}}\n"
    )
    assert main(["catalog", "list", "--catalog", "cat.yaml"]) == 2
    assert "cat.yaml:3:3: entries.a: key given twice (first at line 2)" in _error(capsys)


# ------------------------------------------------------------------------------------------ damaged stores


def _scene(seed: int = 1, n_azimuth: int = 600, n_range: int = 400, **extra):
    from sarpipe.simulate import simulate

    return simulate(
        {
            "sensor": {"preset": "minisar"},
            "scene": {"n_azimuth": n_azimuth, "n_range": n_range},
            "targets": [{"range_index": 200, "azimuth_index": 300}],
            "noise": {"snr_db": 20.0},
            "seed": seed,
            **extra,
        }
    )


def _store(ds, path, **kwargs):
    from sarpipe.model import save_dataset

    ds = ds.copy()
    ds.attrs.setdefault("sarpipe_product", "raw" if "echo" in ds else "slc")  # what save_dataset marks
    save_dataset(ds, path, **kwargs)
    return path


def test_deleted_chunk_is_refused_naming_it(here, capsys):
    raw = _store(_scene(), here / "raw.zarr", chunks={"azimuth": 256})
    (raw / "echo" / "c" / "1" / "0").unlink()
    assert main(["focus", "raw.zarr", "-o", "slc.zarr"]) == 2
    err = _error(capsys)
    assert "raw.zarr/echo/c/1/0: chunk file missing (azimuth 256..511, range 0..399 of variable 'echo'" in err, err
    assert not (here / "slc.zarr").exists()


def test_chunks_equal_to_the_fill_value_are_written(here):
    """The missing-chunk check relies on it: a store of zeros keeps every chunk file."""
    from sarpipe.model import open_raw

    ds = _scene()
    ds["echo_clean"][:] = 0  # a variable of zeros: zarr would skip its chunks by default
    _store(ds, here / "raw.zarr", chunks={"azimuth": 256})
    assert sorted(p.name for p in (here / "raw.zarr" / "echo_clean" / "c").iterdir()) == ["0", "1", "2"]
    assert open_raw(here / "raw.zarr")["echo_clean"].shape == (600, 400)


@pytest.mark.parametrize(
    "command",
    [
        ["rfi", "detect", "raw.zarr"],
        ["rfi", "clean", "raw.zarr", "-o", "clean.zarr"],
        ["focus", "raw.zarr", "-o", "clean.zarr"],
    ],
)
def test_truncated_chunk_is_refused_naming_it(here, capsys, command):
    raw = _store(_scene(), here / "raw.zarr", chunks={"azimuth": 256})
    chunk = raw / "echo" / "c" / "1" / "0"
    chunk.write_bytes(chunk.read_bytes()[:1000])
    assert main(command) == 2
    err = _error(capsys)
    assert "raw.zarr/echo/c/1/0: holds 1000 bytes" in err and "Traceback" not in err, err
    assert not (here / "clean.zarr").exists()
    # the other blocks finish before the error is raised, so none writes into a corner turn already removed
    assert sorted(p.name for p in here.iterdir()) == ["raw.zarr"]


def test_zarr_v2_store_is_refused(here, capsys):
    _scene().to_zarr(here / "raw.zarr", zarr_format=2, consolidated=False)
    assert main(["focus", "raw.zarr", "-o", "slc.zarr"]) == 2
    assert "raw.zarr: is a Zarr v2 store; sarpipe reads Zarr v3" in _error(capsys)
    assert not (here / "slc.zarr").exists()


# ------------------------------------------------------------------------------------------ provenance


def test_rfi_detect_refuses_the_image_of_another_scene(here, capsys):
    from sarpipe.focus import focus

    _store(_scene(seed=1), here / "a.zarr")
    other = _scene(seed=2, targets=[{"range_index": 100, "azimuth_index": 250}])
    _store(focus(other), here / "b_slc.zarr")
    for command in (
        ["rfi", "detect", "a.zarr", "--slc", "b_slc.zarr"],
        ["rfi", "clean", "a.zarr", "--slc", "b_slc.zarr", "-o", "clean.zarr"],
    ):
        assert main(command) == 2
        err = _error(capsys)
        assert "b_slc.zarr: is not the image of a.zarr: it was focused from another scene" in err, err
    assert not (here / "clean.zarr").exists()


def test_rfi_detect_accepts_the_image_of_its_scene_in_memory_or_streamed(here, capsys):
    from sarpipe.focus import focus

    raw = _scene(seed=1)
    _store(raw, here / "a.zarr")
    _store(focus(raw), here / "a_slc.zarr")  # focused before the raw was written
    assert main(["rfi", "detect", "a.zarr", "--slc", "a_slc.zarr"]) == 0
    assert main(["focus", "a.zarr", "-o", "a_slc2.zarr"]) == 0
    assert main(["rfi", "detect", "a.zarr", "--slc", "a_slc2.zarr"]) == 0


def test_image_without_fingerprint_is_accepted(here, capsys):
    from sarpipe.focus import focus

    raw = _scene(seed=1)
    slc = focus(raw)
    del slc.attrs["processing_history"][-1]["input_fingerprint"]  # an image written before fingerprints
    _store(raw, here / "a.zarr")
    _store(slc, here / "a_slc.zarr")
    assert main(["rfi", "detect", "a.zarr", "--slc", "a_slc.zarr"]) == 0


# ------------------------------------------------------------------------------------------ focusability


def _raw_with(here, attrs=None, n_azimuth=600, n_range=400):
    from sarpipe.model import sar_dataset

    ds = _scene(n_azimuth=n_azimuth, n_range=n_range)
    raw = sar_dataset(ds["echo"].values, {**ds.attrs, **(attrs or {})})
    return _store(raw, here / "raw.zarr")


@pytest.mark.parametrize(
    "attrs, size, words",
    [
        (
            {"range_sampling_rate": 200e6},
            {},
            "attributes 'chirp_rate', 'pulse_duration', 'range_sampling_rate': the chirp band",
        ),
        ({}, {"n_range": 300}, "dimension 'range': the scene has 300 range samples, fewer than one chirp"),
        ({}, {"n_azimuth": 400}, "dimension 'azimuth': the scene has 400 pulses, fewer than one synthetic aperture"),
    ],
)
def test_unfocusable_scene_is_refused(here, capsys, attrs, size, words):
    from sarpipe.errors import InputError
    from sarpipe.focus import focus
    from sarpipe.model import load_dataset

    _raw_with(here, attrs, **size)
    assert main(["focus", "raw.zarr", "-o", "slc.zarr"]) == 2
    err = _error(capsys)
    assert f"raw.zarr: {words}" in err, err
    assert not (here / "slc.zarr").exists()
    with pytest.raises(InputError, match=words.split(": ", 1)[1]):  # the in-memory focus refuses it too
        focus(load_dataset(here / "raw.zarr"))


def test_azimuth_bandwidth_above_the_prf_is_refused(here, capsys):
    _raw_with(here)
    assert main(["focus", "raw.zarr", "-o", "slc.zarr", "--azimuth-bandwidth", "400"]) == 2
    assert "--azimuth-bandwidth" in (err := _error(capsys)) and "exceeds the PRF (300 Hz)" in err, err
    assert not (here / "slc.zarr").exists()
    assert main(["focus", "raw.zarr", "-o", "slc.zarr", "--azimuth-bandwidth", "300"]) == 0


def test_catalog_scene_outside_problems_found_at_validation(here, capsys):
    (here / "cat.yaml").write_text(
        "entries:\n  a:\n    kind: simulated\n    config:\n      sensor: {preset: minisar}\n"
        "      scene: {n_azimuth: 64, n_range: 64}\n"
        "      targets: [{range_index: 70, azimuth_index: 3}]\n"
    )
    assert main(["catalog", "list", "--catalog", "cat.yaml"]) == 2
    err = _error(capsys)
    assert "cat.yaml:7:18: entries.a.config.targets[0].range_index: 70 lies outside" in err, err


def test_folder_given_as_catalog_says_folder(here, capsys):
    (here / "cat.yaml").mkdir()
    assert main(["catalog", "list", "--catalog", "cat.yaml"]) == 2
    assert "cat.yaml: is a folder, expected a YAML file" in _error(capsys)


def test_store_larger_than_memory_is_refused_before_reading(here, capsys):
    """`rfi detect` streams, but focuses the scene first into a scratch image: a 3 10^5 x 3 10^5 store (720 GB, its
    chunks never written) is refused with the figures of the disk that needs, before reading it."""
    import numpy as np
    import xarray as xr

    from sarpipe.model import sar_dataset

    small = _scene(n_azimuth=600, n_range=400)
    n = 300_000
    big = sar_dataset(np.zeros((1, 1), np.complex64), small.attrs)  # attrs and coordinates of a big grid:
    big = big.drop_vars("echo").drop_dims(["azimuth", "range"])
    big["azimuth_time"] = ("azimuth", np.arange(n) / small.attrs["prf"])
    big["slant_range"] = (
        "range",
        small.attrs["near_range"] + np.arange(n) * 299_792_458.0 / (2 * small.attrs["range_sampling_rate"]),
    )
    big = big.set_coords(["azimuth_time", "slant_range"])
    big.to_zarr(here / "big.zarr", zarr_format=3, consolidated=False)
    import zarr

    zarr.open_group(here / "big.zarr", mode="a").create_array(
        "echo",
        shape=(n, n),
        chunks=(1024, 1024),
        dtype=np.complex64,
        dimension_names=["azimuth", "range"],
        fill_value=0j,
    )
    assert xr.open_zarr(here / "big.zarr", consolidated=False)["echo"].shape == (n, n)
    assert main(["rfi", "detect", "big.zarr"]) == 2
    err = _error(capsys)
    assert "big.zarr: holds 670.6 GiB (300,000 x 300,000 samples)" in err and "scratch disk" in err, err


def test_corrupt_compressed_chunk_names_the_variable(here, capsys):
    raw = _store(_scene(), here / "raw.zarr")
    chunk = raw / "azimuth_time" / "c" / "0"  # float64 coordinates are compressed (zstd)
    chunk.write_bytes(b"not zstd at all" * 10)
    assert main(["rfi", "detect", "raw.zarr"]) == 2
    err = _error(capsys)
    assert "raw.zarr: variable 'azimuth_time': cannot be read" in err and "Traceback" not in err, err


def test_extended_scene_shorter_than_its_aperture_is_refused_with_the_key(here, capsys):
    import numpy as np

    np.save(here / "map.npy", np.ones((10, 10)))
    err = _simulate_fails_keeping(
        here, capsys, "sensor: {preset: minisar}\nscene: {n_azimuth: 200, n_range: 400}\nextended: {file: map.npy}\n"
    )
    assert "cfg.yaml:2:9: scene.n_azimuth: an extended scene needs at least one synthetic aperture" in err, err


def _simulate_fails_keeping(here, capsys, text: str) -> str:
    (here / "cfg.yaml").write_text(text)
    assert main(["simulate", "cfg.yaml", "-o", "raw.zarr"]) == 2
    assert not (here / "raw.zarr").exists()
    return _error(capsys)


def test_alias_bomb_in_a_set_value_is_refused(here, capsys):
    (here / "base.yaml").write_text(PIPELINE)
    bomb = (
        "["
        + ", ".join(
            ["&a0 [x, x, x, x, x, x, x, x, x, x]"]
            + [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
        )
        + "]"
    )
    assert main(["run", "base.yaml", "--set", f"description={bomb}", "--dry-run"]) == 2
    err = _error(capsys)
    assert f"--set description={bomb}" in err and "expands to more than" in err
    assert not (here / "out").exists()


def test_set_values_are_still_read_as_yaml(here, capsys):
    (here / "base.yaml").write_text(PIPELINE)
    assert (
        main(["run", "base.yaml", "--set", "steps.raw.params.config.seed=7", "--set", "description=", "--dry-run"]) == 0
    )


def test_rfi_detect_refuses_the_image_of_a_ground_truth_variable(here, capsys):
    from sarpipe.focus import focus_zarr

    _store(_scene(seed=1), here / "a.zarr")
    focus_zarr(here / "a.zarr", here / "truth.zarr", variable="echo_clean")
    assert main(["rfi", "detect", "a.zarr", "--slc", "truth.zarr"]) == 2
    assert "truth.zarr: is the image of the raw variable 'echo_clean', not of 'echo'" in _error(capsys)


def test_deleted_chunk_of_a_one_dimensional_variable_is_refused(here, capsys):
    import numpy as np

    ds = _scene()
    ds["rfi_pulses"] = ("azimuth", np.zeros(600, bool))
    raw = _store(ds, here / "raw.zarr", chunks={"azimuth": 256})
    [chunk] = [p for p in (raw / "rfi_pulses" / "c").iterdir()]
    chunk.unlink()
    assert main(["rfi", "detect", "raw.zarr"]) == 2
    assert f"raw.zarr/rfi_pulses/c/{chunk.name}: chunk file missing" in _error(capsys)
