"""One operation per domain: each command and its pipeline stage come from one parameter model; CLI habits
(``--version``, ``--overwrite``, environment errors, Ctrl-C, options named in messages). In-process CLI runs."""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sarpipe.cli import OPERATIONS, main
from sarpipe.model import sar_dataset, save_dataset
from sarpipe.model_cli import build_command, model_options

sys.path.insert(0, str(Path(__file__).parent / "plugins"))
from pipeline_testing import REPO, write

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

ATTRS = {
    "carrier_frequency": 1.25e9,
    "range_sampling_rate": 100e6,
    "chirp_rate": 4e13,
    "pulse_duration": 2e-6,
    "prf": 100.0,
    "velocity": 200.0,
    "near_range": 10_000.0,
}

#: model fields with no command-line form, and why: the command takes the file (CONFIG.yaml) instead
PIPELINE_ONLY = {("simulate", "config")}


def _flat_fields(model, stage, prefix=""):
    """Dotted paths of every field, nested models flattened (a pipeline-only field stays one leaf)."""
    from sarpipe.model_cli import _nested_model

    out = []
    for name, f in model.model_fields.items():
        nested = _nested_model(f.annotation)
        if nested is None or (stage, prefix + name) in PIPELINE_ONLY:
            out.append(prefix + name)
        else:
            out += _flat_fields(nested, stage, prefix + name + ".")
    return out


def _cli_params(cmd):
    flags = {o for p in cmd.params for o in getattr(p, "opts", [])}
    return flags


def test_every_model_field_is_a_cli_option_and_a_stage_parameter():
    from sarpipe.pipeline.registry import REGISTRY

    assert set(OPERATIONS) == {
        "ingest",
        "simulate",
        "focus",
        "rfi detect",
        "rfi clean",
        "export",
        "report",
        "train difnet",
        "train scorecam",
        "train samsnet",
        "train sr",
    }
    seen_exempt = set()
    for path, spec in OPERATIONS.items():
        model = spec.model()
        stage_model = REGISTRY.get(spec.stage).params_model()
        assert stage_model is model, f"the {spec.stage} stage must take the {path} command's model"
        cmd = build_command(spec)
        flags = _cli_params(cmd)
        by_field = {o.field: o.flag for o in cmd.model_options}
        top_fields = set(stage_model.model_fields)
        for field in _flat_fields(model, spec.stage):
            top = field.split(".")[0]
            assert top in top_fields, f"{spec.stage}: no stage parameter {top!r}"
            if (spec.stage, field) in PIPELINE_ONLY:
                seen_exempt.add((spec.stage, field))
                continue
            if field in cmd.bound_fields:  # a positional argument stands for it
                continue
            assert field in by_field and by_field[field] in flags, f"sarpipe {path}: no option for {field!r}"
    assert seen_exempt == PIPELINE_ONLY


def test_an_option_added_to_a_model_appears_on_the_command_line():
    from pydantic import BaseModel, ConfigDict, Field

    from sarpipe.model_cli import CommandSpec

    class Toy(BaseModel):
        model_config = ConfigDict(extra="forbid")
        gain_db: float = Field(3.0, gt=0, description="gain [dB]")
        mode: str = "a"

    got = {}
    spec = CommandSpec(name="toy", model=lambda: Toy, run=lambda params: got.update(params.model_dump()), help="toy")
    assert [o.flag for o in model_options(Toy)] == ["--gain-db", "--mode"]
    from sarpipe.model_cli import register_lazy

    register_lazy("sarpipe", spec)
    try:
        assert main(["toy", "--gain-db", "6"]) == 0 and got == {"gain_db": 6.0, "mode": "a"}
        assert main(["toy", "--gain-db", "-1"]) == 2
    finally:
        from sarpipe import model_cli

        model_cli._LAZY["sarpipe"].pop("toy")


def test_focus_azimuth_bandwidth_on_the_command_line_and_in_a_pipeline(tmp_path, capsys):
    raw = tmp_path / "raw.zarr"
    rng = np.random.default_rng(1)
    echo = (rng.standard_normal((64, 256)) + 1j * rng.standard_normal((64, 256))).astype(np.complex64)
    save_dataset(sar_dataset(echo, ATTRS), raw)
    assert main(["focus", str(raw), "-o", str(tmp_path / "slc.zarr"), "--azimuth-bandwidth", "60"]) == 0
    err = capsys.readouterr().err
    assert f"focusing {raw}" in err, "a long command says what it does"
    from sarpipe.model import open_slc

    assert open_slc(tmp_path / "slc.zarr").attrs["processing_history"][-1]["params"]["azimuth_bandwidth"] == 60.0

    from sarpipe.pipeline.schema import load_pipeline

    write(
        tmp_path / "p.yaml",
        f"""
        output_dir: {tmp_path / "out"}
        steps:
          - {{name: slc, stage: focus, inputs: {{raw: {raw}}}, params: {{azimuth_bandwidth: 60}}}}
        """,
    )
    assert load_pipeline(tmp_path / "p.yaml").step("slc").params.azimuth_bandwidth == 60.0


def test_bad_option_values_name_the_option(tmp_path, capsys):
    raw = tmp_path / "raw.zarr"
    save_dataset(sar_dataset(np.ones((16, 64), np.complex64), ATTRS), raw)
    assert main(["focus", str(raw), "-o", str(tmp_path / "slc.zarr"), "--azimuth-window", "kaiser:-1"]) == 2
    assert "error: --azimuth-window:" in capsys.readouterr().err
    assert main(["export", str(raw), "-o", str(tmp_path / "q"), "--max-size", "3"]) == 2
    assert "error: --max-size:" in capsys.readouterr().err
    assert main(["rfi", "clean", str(raw), "-o", str(tmp_path / "c.zarr"), "--param", "pfa=abc"]) == 2
    err = capsys.readouterr().err
    assert "--param pfa" in err and "--method" not in err and "'<'" not in err
    assert main(["rfi", "clean", str(raw), "-o", str(tmp_path / "c.zarr"), "--param", "nope=1"]) == 2
    assert "--param nope" in capsys.readouterr().err
    assert not [p for p in tmp_path.iterdir() if p.name != "raw.zarr"]


def test_version_comes_from_one_place(capsys):
    import tomllib

    import sarpipe

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"sarpipe {sarpipe.__version__}"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "sarpipe.__version__"}


@pytest.mark.parametrize("code_name", ["ENOSPC", "EROFS", "EACCES"])
def test_environment_errors_are_one_line_exit_2(tmp_path, capsys, monkeypatch, code_name):
    import sarpipe.focus.focus_operation as op

    target = tmp_path / "out" / "slc.zarr"

    def refused(*args, **kwargs):
        code = getattr(errno, code_name)
        raise OSError(code, __import__("os").strerror(code), str(target))

    monkeypatch.setattr(op, "focus_store", refused)
    raw = tmp_path / "raw.zarr"
    save_dataset(sar_dataset(np.ones((16, 64), np.complex64), ATTRS), raw)
    assert main(["focus", str(raw), "-o", str(target)]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error")]
    assert lines == [f"error: {target}: {__import__('os').strerror(getattr(errno, code_name))}"]
    assert "Traceback" not in err


def test_ctrl_c_is_one_line_exit_130(tmp_path, capsys, monkeypatch):
    import sarpipe.focus.focus_operation as op

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(op, "focus_store", interrupted)
    raw = tmp_path / "raw.zarr"
    save_dataset(sar_dataset(np.ones((16, 64), np.complex64), ATTRS), raw)
    assert main(["focus", str(raw), "-o", str(tmp_path / "slc.zarr")]) == 130
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "interrupted" and "Traceback" not in err


def test_every_writing_command_has_overwrite():
    for path, spec in OPERATIONS.items():
        flags = _cli_params(build_command(spec))
        assert "--overwrite" in flags, path
    import typer.main

    from sarpipe.cli import app

    group = typer.main.get_command(app)
    defocus = group.get_command(None, "defocus")
    assert "--overwrite" in {o for p in defocus.params for o in p.opts}


def test_export_command_writes_what_the_stage_writes(tmp_path, capsys):
    from sarpipe.export import ExportParams, export_image

    rng = np.random.default_rng(2)
    x = (rng.standard_normal((40, 30)) + 1j * rng.standard_normal((40, 30))).astype(np.complex64)
    slc = tmp_path / "scene.zarr"
    save_dataset(sar_dataset(x, ATTRS, name="slc"), slc)
    assert main(["export", str(slc), "-o", str(tmp_path / "cli"), "--geotiff", "db", "--max-size", "16"]) == 0
    info = export_image(slc, tmp_path / "lib", ExportParams(geotiff="db", max_size=16), stem="scene")
    assert json.loads((tmp_path / "cli" / "export.json").read_text()) == info
    assert (tmp_path / "cli" / "scene.png").read_bytes() == (tmp_path / "lib" / "scene.png").read_bytes()
    assert main(["export", str(slc), "-o", str(tmp_path / "bad"), "--geotiff", "phase"]) == 2
    assert not (tmp_path / "bad").exists()


def test_report_command(tmp_path, capsys):
    from sarpipe.rfi import metrics as m

    rng = np.random.default_rng(4)
    ref = (rng.standard_normal((48, 40)) + 1j * rng.standard_normal((48, 40))).astype(np.complex64)
    noisy = (ref + 0.3 * rng.standard_normal(ref.shape)).astype(np.complex64)
    for name, x in (("ref", ref), ("noisy", noisy)):
        save_dataset(sar_dataset(x, ATTRS, name="slc"), tmp_path / f"{name}.zarr")
    out = tmp_path / "report"
    assert (
        main(
            [
                "report",
                "-o",
                str(out),
                "--interfered",
                str(tmp_path / "noisy.zarr"),
                "--reference",
                str(tmp_path / "ref.zarr"),
                "--max-size",
                "32",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["psnr_interfered_db"] == pytest.approx(m.psnr(noisy, ref))
    assert (out / "comparison.png").exists() and "PSNR" in (out / "report.md").read_text()
    assert json.loads(capsys.readouterr().out)["psnr_interfered_db"] == metrics["psnr_interfered_db"]


def test_kernel_cache_check(tmp_path, monkeypatch):
    """The first-run compile notice is shown when numba has no cached kernels of the module, beside its source or
    under NUMBA_CACHE_DIR."""
    from sarpipe.console import kernels_cached

    pkg = tmp_path / "src" / "toykernels"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "kernels.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))
    assert not kernels_cached("toykernels.kernels")
    (cache / "toykernels_0123").mkdir()
    (cache / "toykernels_0123" / "kernels.range_pass-10.py311.nbi").write_bytes(b"")
    assert kernels_cached("toykernels.kernels")
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    assert not kernels_cached("toykernels.kernels")
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "kernels.range_pass-10.py311.nbi").write_bytes(b"")
    assert kernels_cached("toykernels.kernels")


@pytest.mark.parametrize("stage", ["simulate", "focus", "detect_rfi", "clean_rfi", "export", "report"])
def test_config_template_parses_back_to_the_defaults(stage, capsys):
    import yaml

    from sarpipe.pipeline.registry import REGISTRY

    assert main(["config", "template", stage]) == 0
    step = yaml.safe_load(capsys.readouterr().out)[0]
    model = REGISTRY.get(stage).params_model()
    assert model.model_validate(step.get("params") or {}) == model()


def test_simulate_seed_option_matches_the_stage_parameter(tmp_path, capsys):
    """`sarpipe simulate --seed` is the stage's `seed`: the scene is the one the configuration with that seed gives."""
    from sarpipe.model import open_raw

    text = (
        "sensor: {preset: minisar}\nscene: {n_azimuth: 64, n_range: 128}\n"
        "targets:\n  - {range_index: 64, azimuth_index: 32}\nnoise: {snr_db: 10}\nseed: {seed}\n"
    )
    (tmp_path / "a.yaml").write_text(text.replace("{seed}", "1"))
    (tmp_path / "b.yaml").write_text(text.replace("{seed}", "7"))
    assert main(["simulate", str(tmp_path / "a.yaml"), "-o", str(tmp_path / "a7.zarr"), "--seed", "7"]) == 0
    assert f"simulating {tmp_path / 'a.yaml'}" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "b.yaml"), "-o", str(tmp_path / "b7.zarr")]) == 0
    assert main(["simulate", str(tmp_path / "a.yaml"), "-o", str(tmp_path / "a1.zarr")]) == 0
    a7, b7, a1 = (open_raw(tmp_path / f"{n}.zarr")["echo"].values for n in ("a7", "b7", "a1"))
    np.testing.assert_array_equal(a7, b7)
    assert not np.array_equal(a7, a1)


def test_dask_progress_only_on_a_terminal(monkeypatch):
    import io

    import dask
    from dask.callbacks import Callback

    from sarpipe.console import dask_progress

    class TTY(io.StringIO):
        def isatty(self):
            return True

    for stream, expect in ((io.StringIO(), False), (TTY(), True)):
        monkeypatch.setattr(sys, "stderr", stream)
        with dask_progress():
            active = bool(Callback.active)
            dask.compute(dask.delayed(sum)([1, 2]))
        assert active is expect
        assert not Callback.active


def test_detect_params_mirror_the_detection_settings():
    """DetectParams is the chain's DetectionSettings with checked types: same names, order and defaults."""
    import dataclasses

    from sarpipe.rfi.chain_io import DetectParams
    from sarpipe.rfi.clean import DetectionSettings

    fields = dataclasses.fields(DetectionSettings)
    assert list(DetectParams.model_fields) == [f.name for f in fields]
    assert DetectParams().settings() == DetectionSettings()
