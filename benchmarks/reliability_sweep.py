"""The bad-input sweep: run ``sarpipe`` on many broken inputs, as a hostile new user would, and judge each answer.

    PYTHONPATH=. python benchmarks/reliability_sweep.py [--out DIR] [--jobs N] [--only PATTERN] [--markdown FILE]

Every case is a real subprocess ``python -m sarpipe.cli ...`` in its own folder, holding copies of the fixtures it
needs (small raw and SLC stores made once with sarpipe's own simulator and focuser, YAML configs, pipelines) and
whatever user files the case sets up. A case PASSES only when

- the exit status is the expected one (2 for bad input unless the case says otherwise),
- no Python traceback is printed,
- the message is one ``error:`` line (indented problem lines under it, click's usage block and a line saying what
  the command was doing allowed; a second error line or a Python warning is not) and matches what the case expects
  it to name (the option, key, variable or file),
- nothing was left behind (no new file or folder, no hidden ``.NAME.tmp-*`` sibling), and
- every file the user gave is still there, byte for byte.

The rules are in docs/reliability.md. ``--only`` takes comma-separated case ids or globs (``focus_*``). The exit
status is 1 when any case fails, 0 otherwise (cases marked n/a do not count).
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

GIB = 1 << 30
TRACEBACK = "Traceback (most recent call last)"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

# --------------------------------------------------------------------------------------------------- fixtures

#: The base scene: X-band MiniSAR-like, 512 pulses x 512 samples at 2.5 km (aperture ~270 pulses, chirp 360
#: samples), one point target, RFI on pulses [200, 230).
SIM = {
    "sensor": {"preset": "minisar"},
    "scene": {"n_azimuth": 512, "n_range": 512, "near_range": 2500.0},
    "targets": [{"range_index": 256, "azimuth_index": 256}],
    "noise": {"snr_db": 10},
    "rfi": {"preset": "minisar", "sir_db": -10, "pulses": [[200, 230]]},
    "seed": 1,
}
#: Another scene of the same size (different targets, RFI and seed): its image is not the image of SIM.
OTHER = {
    **SIM,
    "targets": [{"range_index": 100, "azimuth_index": 150}, {"range_index": 400, "azimuth_index": 380}],
    "rfi": {"preset": "minisar", "sir_db": -5, "pulses": [[300, 340]]},
    "seed": 7,
}

PIPE = """\
name: tiny
output_dir: runs/tiny
steps:
  - name: raw
    stage: simulate
    params: {config_file: sim.yaml}
  - name: slc
    stage: focus
    inputs: {raw: raw}
"""

CATALOG = """\
version: 1
entries:
  tiny:
    kind: simulated
    config_file: sim.yaml
  store:
    kind: raw
    path: raw.zarr
"""

RAW_ATTRS = (
    "carrier_frequency",
    "range_sampling_rate",
    "chirp_rate",
    "pulse_duration",
    "prf",
    "velocity",
    "near_range",
)


def _yaml(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


def _sim(**changes: Any) -> str:
    """The base simulator YAML with ``changes`` applied: ``section__key=value`` sets a nested key, None removes it."""
    import copy

    data = copy.deepcopy(SIM)
    for key, value in changes.items():
        parts = key.split("__")
        node = data
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    return _yaml(data)


def _alias_bomb(top: str = "") -> str:
    """The 'billion laughs': nine levels of nine aliases each, 9**9 leaves once expanded."""
    lines = [top] if top else []
    lines.append('l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]')
    for i in range(1, 10):
        refs = ", ".join([f"*l{i - 1}"] * 9)
        lines.append(f"l{i}: &l{i} [{refs}]")
    return "\n".join(lines) + "\n"


def _echo_only(ds):
    return ds[["echo"]]


def _set_attr(key: str, value: Any) -> Callable:
    def f(ds):
        ds = _echo_only(ds)
        ds.attrs[key] = value
        return ds

    return f


def _del_attr(key: str) -> Callable:
    def f(ds):
        ds = _echo_only(ds)
        ds.attrs.pop(key, None)
        return ds

    return f


def _variants() -> dict[str, Callable]:
    """Derived raw stores: name -> function of the base raw dataset (in memory) returning the broken one."""
    import numpy as np

    def dtype(t):
        def f(ds):
            ds = _echo_only(ds)
            v = ds["echo"].values
            ds["echo"] = (ds["echo"].dims, (v.real.astype(t) if np.dtype(t).kind != "c" else v.astype(t)))
            return ds

        return f

    def sample(value):
        def f(ds):
            ds = _echo_only(ds)
            v = ds["echo"].values.copy()
            v[300, 100] = value
            ds["echo"] = (ds["echo"].dims, v)
            return ds

        return f

    def coord(name, fn):
        def f(ds):
            ds = _echo_only(ds)
            return ds.assign_coords({name: (ds[name].dims, fn(ds[name].values.copy()))})

        return f

    def swapped(ds):
        ds = _echo_only(ds)
        return ds.transpose("range", "azimuth")

    def renamed(ds):
        return _echo_only(ds).rename({"echo": "samples"})

    v: dict[str, Callable] = {f"missing_{k}": _del_attr(k) for k in RAW_ATTRS}
    v.update(
        {
            "prf_negative": _set_attr("prf", -300.0),
            "prf_text": _set_attr("prf", "300 Hz"),
            "prf_inf": _set_attr("prf", float("inf")),
            "chirp_rate_zero": _set_attr("chirp_rate", 0.0),
            "pulse_duration_negative": _set_attr("pulse_duration", -1e-6),
            "near_range_negative": _set_attr("near_range", -2500.0),
            "carrier_nan": _set_attr("carrier_frequency", float("nan")),
            "doppler_nan": _set_attr("doppler_centroid", float("nan")),
            "antenna_negative": _set_attr("antenna_length", -0.8),
            "look_side_up": _set_attr("look_side", "up"),
            "processing_history_text": _set_attr("processing_history", "focused once"),
            "echo_c128": dtype(np.complex128),
            "echo_f32": dtype(np.float32),
            "dims_swapped": swapped,
            "no_echo": renamed,
            "nan_sample": sample(np.nan),
            "inf_sample": sample(np.inf),
            "empty_azimuth": lambda ds: _echo_only(ds).isel(azimuth=slice(0, 0)),
            "empty_range": lambda ds: _echo_only(ds).isel(range=slice(0, 0)),
            "slant_range_shifted": coord("slant_range", lambda a: a + 10.0),
            "azimuth_time_reversed": coord("azimuth_time", lambda a: a[::-1]),
            "no_azimuth_time": lambda ds: _echo_only(ds).drop_vars("azimuth_time"),
            # 500 MHz chirp (|Kr| Tp) sampled at 360 MHz
            "chirp_above_fs": _set_attr("chirp_rate", 500e6 / 1e-6),
            # a recorded Doppler band of 1000 Hz at a PRF of 300 Hz
            "azimuth_band_above_prf": _set_attr("azimuth_bandwidth", 1000.0),
            # 200 samples: shorter than the 360-sample chirp
            "short_range": lambda ds: _echo_only(ds).isel(range=slice(0, 200)),
            # 64 pulses: far shorter than the ~270-pulse synthetic aperture
            "short_azimuth": lambda ds: _echo_only(ds).isel(azimuth=slice(0, 64)),
        }
    )
    return v


def _write_plain(ds, path: Path, zarr_format: int = 3) -> None:
    """Write with xarray directly (not through sarpipe), chunked by 128 lines where there are lines."""
    ds = ds.copy()
    enc = {}
    for name, var in ds.variables.items():
        var.encoding = {}
        if var.ndim == 2 and all(var.shape):
            enc[name] = {"chunks": (min(128, var.shape[0]), var.shape[1])}
    ds.to_zarr(path, mode="w-", zarr_format=zarr_format, consolidated=False, encoding=enc)


def _chunk_file(store: Path, var: str) -> Path:
    """The second chunk (lines 128..255) of a 2-D variable, v3 (``c/1/0``) or v2 (``1.0``) layout."""
    for p in (store / var / "c" / "1" / "0", store / var / "1.0"):
        if p.is_file():
            return p
    raise FileNotFoundError(f"no second chunk in {store / var}")


def build_fixtures(d: Path) -> None:
    """Make every fixture under ``d`` (run in a subprocess, with the sarpipe under test on the path)."""
    import xarray as xr

    from sarpipe.focus import focus
    from sarpipe.model import save_dataset
    from sarpipe.simulate import load_config, simulate

    d.mkdir(parents=True, exist_ok=True)
    (d / "sim.yaml").write_text(_yaml(SIM))
    (d / "other.yaml").write_text(_yaml(OTHER))
    (d / "pipe.yaml").write_text(PIPE)
    (d / "catalog.yaml").write_text(CATALOG)
    for name, cfg in (("raw", "sim.yaml"), ("other_raw", "other.yaml")):
        ds = simulate(load_config(d / cfg))
        save_dataset(ds, d / f"{name}.zarr", chunks={"azimuth": 128})
        img = focus(xr.open_zarr(d / f"{name}.zarr", consolidated=False).load())  # the store, as a user has it
        save_dataset(img, d / f"{name.replace('raw', 'slc')}.zarr", chunks={"azimuth": 128})
    raw = xr.open_zarr(d / "raw.zarr", consolidated=False).load()
    slc = xr.open_zarr(d / "slc.zarr", consolidated=False).load()
    for name, fn in _variants().items():
        _write_plain(fn(raw.copy()), d / f"raw_{name}.zarr")
    # SLC variants
    import numpy as np

    def slc_sample(ds):
        v = ds["slc"].values.copy()
        v[300, 100] = np.nan
        ds["slc"] = (ds["slc"].dims, v)
        return ds

    s = slc.copy()
    _write_plain(slc_sample(s), d / "slc_nan_sample.zarr")
    s = slc.copy()
    s.attrs.pop("prf")
    _write_plain(s, d / "slc_missing_prf.zarr")
    s = slc.copy()
    s["slc"] = (s["slc"].dims, s["slc"].values.astype(np.complex128))
    _write_plain(s, d / "slc_c128.zarr")
    _write_plain(slc.isel(azimuth=slice(0, 256)), d / "slc_half.zarr")
    # store-level damage
    _write_plain(_echo_only(raw), d / "raw_zarr2.zarr", zarr_format=2)
    _write_plain(slc, d / "slc_zarr2.zarr", zarr_format=2)
    for src, dst in (("raw", "raw_deleted_chunk"), ("slc", "slc_deleted_chunk")):
        shutil.copytree(d / f"{src}.zarr", d / f"{dst}.zarr")
        _chunk_file(d / f"{dst}.zarr", "echo" if src == "raw" else "slc").unlink()
    for src, dst in (("raw", "raw_truncated_chunk"), ("slc", "slc_truncated_chunk")):
        shutil.copytree(d / f"{src}.zarr", d / f"{dst}.zarr")
        c = _chunk_file(d / f"{dst}.zarr", "echo" if src == "raw" else "slc")
        c.write_bytes(c.read_bytes()[: c.stat().st_size // 2])
    shutil.copytree(d / "raw.zarr", d / "raw_binary_metadata.zarr")
    (d / "raw_binary_metadata.zarr" / "zarr.json").write_bytes(os.urandom(512))
    shutil.copytree(d / "raw.zarr", d / "raw_no_metadata.zarr")
    (d / "raw_no_metadata.zarr" / "zarr.json").unlink()
    (d / "raw_empty_dir.zarr").mkdir()
    (d / "raw_plain_file.zarr").write_text("not a store\n")
    # a user folder that happens to hold the user's own stores, for --set output_dir=
    (d / "userstores").mkdir()
    shutil.copytree(d / "raw.zarr", d / "userstores" / "raw.zarr")
    (d / "userstores" / "notes.txt").write_text("my own notes\n")


# --------------------------------------------------------------------------------------------------- cases


@dataclass
class Case:
    """One bad input: the command line, what is wrong, and what the answer must name."""

    id: str
    command: str  # the sarpipe command, e.g. "focus", "rfi clean"
    what: str  # what is wrong, in a few words
    args: list[str]  # after `python -m sarpipe.cli`
    expect: str  # regex (case-insensitive) the error message must match
    needs: tuple[str, ...] = ()  # fixtures copied into the case folder
    files: dict[str, Any] = field(default_factory=dict)  # user files written there (text or bytes)
    setup: tuple[str, ...] = ()  # userdir | userfile | filetxt | readonly | diskfull
    code: int = 2
    timeout: float = 120.0
    memory_gib: float | None = None  # address-space cap for the subprocess
    interrupt_after: float | None = None  # send SIGINT this many seconds after the work has begun ...
    interrupt_when: str = ".*"  # ... that is, after a path matching this glob appears in the folder
    na: str | None = None  # why the case cannot run here
    allowed: tuple[str, ...] = ()  # globs of new paths that are not leftovers (e.g. a run log)


CASES: list[Case] = []


#: A failed pipeline run keeps its log (``sarpipe-run.log`` in the output folder): that is a record, not an output.
RUN_LOG = ("*sarpipe-run.log",)


def case(id: str, command: str, what: str, args: list[str], expect: str, **kw: Any) -> None:
    if any(c.id == id for c in CASES):
        raise ValueError(f"duplicate case id {id}")
    if command == "run":
        kw.setdefault("allowed", RUN_LOG)
    CASES.append(Case(id, command, what, args, expect, **kw))


def _define_cases() -> None:
    # ---------------------------------------------------------------- simulate: the configuration file
    sim = lambda text, **kw: {"files": {"cfg.yaml": text}, **kw}  # noqa: E731
    S = ["simulate", "cfg.yaml", "-o", "out.zarr"]
    GOOD = {"range_index": 256, "azimuth_index": 256}  # keeps an echo in the scene beside a bad target
    case(
        "sim_missing_config",
        "simulate",
        "config file does not exist",
        ["simulate", "nope.yaml", "-o", "out.zarr"],
        r"nope\.yaml",
    )
    case(
        "sim_folder_as_config",
        "simulate",
        "a folder given as the config",
        ["simulate", "cfgdir", "-o", "out.zarr"],
        r"cfgdir.*(folder|directory|not a file)",
        files={"cfgdir/readme.txt": "x\n"},
    )
    case(
        "sim_binary_config",
        "simulate",
        "a binary file given as YAML",
        S,
        r"cfg\.yaml",
        files={"cfg.yaml": bytes(range(256)) * 8},
    )
    case(
        "sim_latin1_config",
        "simulate",
        "YAML not in UTF-8 (latin-1 comment)",
        S,
        r"cfg\.yaml",
        files={"cfg.yaml": ("# caf\xe9 cr\xe8me\n" + _sim()).encode("latin-1")},
    )
    case("sim_empty_config", "simulate", "empty simulator YAML", S, r"cfg\.yaml.*empty|empty.*cfg\.yaml", **sim(""))
    case("sim_list_config", "simulate", "top level is a list", S, r"mapping", **sim("- sensor\n- scene\n"))
    case(
        "sim_syntax_error", "simulate", "YAML syntax error", S, r"cfg\.yaml:\d+", **sim("sensor: [minisar\nscene: {\n")
    )
    case(
        "sim_dup_top_key",
        "simulate",
        "duplicate top-level key 'seed'",
        S,
        r"seed.*(twice|duplicate)|(twice|duplicate).*seed",
        **sim(_sim() + "seed: 99\n"),
    )
    case(
        "sim_dup_nested_key",
        "simulate",
        "duplicate key scene.n_azimuth",
        S,
        r"n_azimuth.*(twice|duplicate)|(twice|duplicate).*n_azimuth",
        **sim(_sim().replace("  n_azimuth: 512\n", "  n_azimuth: 512\n  n_azimuth: 1024\n")),
    )
    case(
        "sim_alias_bomb",
        "simulate",
        "YAML alias bomb (9^9 leaves)",
        S,
        r"alias|too (large|big|many)|expan",
        timeout=60,
        memory_gib=4,
        **sim(_alias_bomb()),
    )
    case(
        "sim_unknown_top_key",
        "simulate",
        "misspelt top-level key 'sensr'",
        S,
        r"sensr",
        **sim(_sim().replace("sensor:", "sensr:")),
    )
    case(
        "sim_unknown_nested_key",
        "simulate",
        "misspelt key scene.n_azimut",
        S,
        r"n_azimut\b",
        **sim(_sim().replace("n_azimuth", "n_azimut")),
    )
    case("sim_bad_preset", "simulate", "unknown sensor preset", S, r"preset", **sim(_sim(sensor__preset="ers2")))
    case(
        "sim_no_preset_incomplete",
        "simulate",
        "no preset and missing sensor parameters",
        S,
        r"required|carrier_frequency",
        **sim(_sim(sensor={"prf": 300.0})),
    )
    case("sim_snr_nan", "simulate", "noise.snr_db: .nan", S, r"snr_db", **sim(_sim(noise__snr_db=float("nan"))))
    case("sim_snr_inf", "simulate", "noise.snr_db: .inf", S, r"snr_db", **sim(_sim(noise__snr_db=float("inf"))))
    case(
        "sim_noise_power_nan", "simulate", "noise.power: .nan", S, r"power", **sim(_sim(noise={"power": float("nan")}))
    )
    case(
        "sim_velocity_inf",
        "simulate",
        "sensor.velocity: .inf",
        S,
        r"velocity",
        **sim(_sim(sensor__velocity=float("inf"))),
    )
    case("sim_prf_negative", "simulate", "sensor.prf negative", S, r"prf", **sim(_sim(sensor__prf=-300.0)))
    case(
        "sim_chirp_rate_zero",
        "simulate",
        "sensor.chirp_rate zero",
        S,
        r"chirp_rate",
        **sim(_sim(sensor__chirp_rate=0.0)),
    )
    case(
        "sim_amplitude_nan",
        "simulate",
        "target amplitude .nan",
        S,
        r"amplitude",
        **sim(_sim(targets=[{"range_index": 256, "azimuth_index": 256, "amplitude": float("nan")}])),
    )
    case(
        "sim_phase_inf",
        "simulate",
        "target phase .inf",
        S,
        r"phase",
        **sim(_sim(targets=[{"range_index": 256, "azimuth_index": 256, "phase": float("inf")}])),
    )
    case(
        "sim_target_index_nan",
        "simulate",
        "target range_index .nan",
        S,
        r"range_index",
        **sim(_sim(targets=[GOOD, {"range_index": float("nan"), "azimuth_index": 256}])),
    )
    case(
        "sim_target_range_outside",
        "simulate",
        "target range_index 5000 in a 512-sample scene",
        S,
        r"range_index|targets\[1\]",
        **sim(_sim(targets=[GOOD, {"range_index": 5000, "azimuth_index": 256}])),
    )
    case(
        "sim_target_azimuth_outside",
        "simulate",
        "target azimuth_index -400",
        S,
        r"azimuth_index|targets\[1\]",
        **sim(_sim(targets=[GOOD, {"range_index": 256, "azimuth_index": -400}])),
    )
    case(
        "sim_target_slant_range_outside",
        "simulate",
        "target slant_range 1e6 m (scene at 2.5 km)",
        S,
        r"slant_range|targets\[1\]",
        **sim(_sim(targets=[GOOD, {"slant_range": 1.0e6, "azimuth_index": 256}])),
    )
    case(
        "sim_target_time_outside",
        "simulate",
        "target azimuth_time 1000 s (scene lasts 1.7 s)",
        S,
        r"azimuth_time|targets\[1\]",
        **sim(_sim(targets=[GOOD, {"range_index": 256, "azimuth_time": 1000.0}])),
    )
    case(
        "sim_rfi_pulses_outside",
        "simulate",
        "rfi.pulses [[600, 700]] in a 512-pulse scene",
        S,
        r"pulses",
        **sim(_sim(rfi__pulses=[[600, 700]])),
    )
    case(
        "sim_rfi_pulses_overhang",
        "simulate",
        "rfi.pulses [[500, 600]] runs past the end",
        S,
        r"pulses",
        **sim(_sim(rfi__pulses=[[500, 600]])),
    )
    case(
        "sim_rfi_pulses_reversed",
        "simulate",
        "rfi.pulses [[230, 200]]",
        S,
        r"pulses",
        **sim(_sim(rfi__pulses=[[230, 200]])),
    )
    case(
        "sim_rfi_bursts_too_long",
        "simulate",
        "rfi.bursts.length 2000 > 512 pulses",
        S,
        r"bursts|length",
        **sim(_sim(rfi={"preset": "minisar", "bursts": {"count": 1, "length": 2000}})),
    )
    case("sim_rfi_bad_preset", "simulate", "rfi.preset unknown", S, r"preset", **sim(_sim(rfi__preset="lband")))
    case("sim_rfi_sir_nan", "simulate", "rfi.sir_db .nan", S, r"sir_db", **sim(_sim(rfi__sir_db=float("nan"))))
    case(
        "sim_rfi_unknown_kind",
        "simulate",
        "rfi source kind 'pulsed'",
        S,
        r"kind",
        **sim(_sim(rfi={"sources": [{"kind": "pulsed"}], "pulses": [[200, 230]]})),
    )
    case(
        "sim_rfi_frequency_inf",
        "simulate",
        "rfi source frequency .inf",
        S,
        r"frequency",
        **sim(_sim(rfi={"sources": [{"kind": "narrowband", "frequency": float("inf")}], "pulses": [[200, 230]]})),
    )
    case("sim_n_azimuth_negative", "simulate", "scene.n_azimuth -5", S, r"n_azimuth", **sim(_sim(scene__n_azimuth=-5)))
    case(
        "sim_near_range_negative",
        "simulate",
        "scene.near_range -5",
        S,
        r"near_range",
        **sim(_sim(scene__near_range=-5.0)),
    )
    case(
        "sim_doppler_huge",
        "simulate",
        "doppler_centroid 1e6 Hz",
        S,
        r"doppler_centroid",
        **sim(_sim(doppler_centroid=1.0e6)),
    )
    case(
        "sim_extended_missing",
        "simulate",
        "extended.file does not exist",
        S,
        r"nope\.npy|extended",
        **sim(_sim(extended={"file": "nope.npy"})),
    )
    case(
        "sim_extended_garbage",
        "simulate",
        "extended.file is not an image or .npy",
        S,
        r"bad\.npy|extended",
        files={"cfg.yaml": _sim(extended={"file": "bad.npy"}), "bad.npy": b"\x00garbage" * 64},
    )
    case(
        "sim_extended_nan",
        "simulate",
        "extended map holds NaN",
        S,
        r"map\.npy|extended|NaN",
        files={"cfg.yaml": _sim(extended={"file": "map.npy"}), "map.npy": _npy_with_nan()},
    )
    case(
        "sim_huge_pulses",
        "simulate",
        "10^9 pulses (memory cap 4 GiB)",
        S,
        r"n_azimuth|GiB|TiB|GB|TB|too large",
        timeout=90,
        memory_gib=4,
        **sim(_sim(scene__n_azimuth=1_000_000_000)),
    )
    case(
        "sim_huge_square",
        "simulate",
        "10^5 x 10^5 scene (memory cap 4 GiB)",
        S,
        r"n_azimuth|n_range|GiB|TiB|GB|TB|too large",
        timeout=90,
        memory_gib=4,
        **sim(_sim(scene__n_azimuth=100_000, scene__n_range=100_000)),
    )
    case(
        "sim_chirp_above_fs",
        "simulate",
        "chirp band 500 MHz above fs 360 MHz",
        S,
        r"chirp|sampling",
        **sim(_sim(sensor__chirp_rate=5.0e14)),
    )
    # outputs
    case(
        "sim_out_eq_config",
        "simulate",
        "-o is the config file itself",
        ["simulate", "sim.yaml", "-o", "sim.yaml"],
        r"--output|sim\.yaml",
        needs=("sim.yaml",),
    )
    case(
        "sim_out_user_folder",
        "simulate",
        "-o an existing user folder holding a file",
        ["simulate", "sim.yaml", "-o", "userdir"],
        r"--output|userdir|overwrite",
        needs=("sim.yaml",),
        setup=("userdir",),
    )
    case(
        "sim_out_user_file",
        "simulate",
        "-o an existing user file",
        ["simulate", "sim.yaml", "-o", "user.txt"],
        r"--output|user\.txt|overwrite",
        needs=("sim.yaml",),
        setup=("userfile",),
    )
    case(
        "sim_out_under_file",
        "simulate",
        "-o file.txt/out.zarr",
        ["simulate", "sim.yaml", "-o", "file.txt/out.zarr"],
        r"file\.txt",
        needs=("sim.yaml",),
        setup=("filetxt",),
    )
    case(
        "sim_out_readonly",
        "simulate",
        "-o in a read-only folder",
        ["simulate", "sim.yaml", "-o", "ro/out.zarr"],
        r"ro.*(read-only|permission|not writable)|(read-only|permission|not writable).*ro",
        needs=("sim.yaml",),
        setup=("readonly",),
    )
    case(
        "sim_out_disk_full",
        "simulate",
        "-o on a full disk (1 MiB tmpfs)",
        ["simulate", "sim.yaml", "-o", "full/out.zarr"],
        r"full.*(space|full)|(space|full).*full",
        needs=("sim.yaml",),
        setup=("diskfull",),
    )
    case(
        "sim_out_inside_config",
        "simulate",
        "-o sim.yaml/out.zarr (under the config file)",
        ["simulate", "sim.yaml", "-o", "sim.yaml/out.zarr"],
        r"sim\.yaml",
        needs=("sim.yaml",),
    )
    case("sim_no_output", "simulate", "no -o", ["simulate", "sim.yaml"], r"--output|-o", needs=("sim.yaml",))

    # ---------------------------------------------------------------- focus: broken raw stores
    F = lambda store: ["focus", store, "-o", "out.zarr"]  # noqa: E731
    for k in RAW_ATTRS:
        case(
            f"focus_missing_{k}",
            "focus",
            f"raw store lacks attribute {k}",
            F(f"raw_missing_{k}.zarr"),
            k,
            needs=(f"raw_missing_{k}.zarr",),
        )
    attr_cases = {
        "prf_negative": ("prf = -300 Hz", r"prf"),
        "prf_text": ("prf = '300 Hz' (text)", r"prf"),
        "prf_inf": ("prf = Infinity", r"prf"),
        "chirp_rate_zero": ("chirp_rate = 0", r"chirp_rate"),
        "pulse_duration_negative": ("pulse_duration < 0", r"pulse_duration"),
        "near_range_negative": ("near_range < 0", r"near_range"),
        "carrier_nan": ("carrier_frequency = NaN", r"carrier_frequency"),
        "doppler_nan": ("doppler_centroid = NaN", r"doppler_centroid"),
        "antenna_negative": ("antenna_length < 0", r"antenna_length"),
        "look_side_up": ("look_side = 'up'", r"look_side"),
        "processing_history_text": ("processing_history is a string", r"processing_history"),
        "echo_c128": ("echo is complex128", r"echo.*(dtype|complex64)"),
        "echo_f32": ("echo is float32 (real)", r"echo.*(dtype|complex64)"),
        "dims_swapped": ("echo dims (range, azimuth)", r"echo.*dims"),
        "no_echo": ("no 'echo' variable", r"echo"),
        "nan_sample": ("a NaN sample in echo", r"echo.*(NaN|Inf|finite)"),
        "inf_sample": ("an Inf sample in echo", r"echo.*(NaN|Inf|finite)"),
        "empty_azimuth": ("0 pulses", r"azimuth.*empty|empty.*azimuth"),
        "empty_range": ("0 range samples", r"range.*empty|empty.*range"),
        "slant_range_shifted": ("slant_range off near_range by 10 m", r"slant_range"),
        "azimuth_time_reversed": ("azimuth_time decreasing", r"azimuth_time"),
        "no_azimuth_time": ("azimuth_time coordinate missing", r"azimuth_time"),
        "chirp_above_fs": ("chirp band 500 MHz above fs 360 MHz", r"chirp|range_sampling_rate|sampling"),
        "azimuth_band_above_prf": ("attribute azimuth_bandwidth 1000 Hz > PRF 300 Hz", r"azimuth_bandwidth"),
        "short_range": ("200 samples, shorter than the 360-sample chirp", r"chirp|pulse_duration|range"),
        "short_azimuth": ("64 pulses, shorter than the ~270-pulse aperture", r"aperture|azimuth|pulses"),
    }
    for v, (what, rx) in attr_cases.items():
        case(f"focus_{v}", "focus", what, F(f"raw_{v}.zarr"), rx, needs=(f"raw_{v}.zarr",))
    store_cases = {
        "deleted_chunk": ("a chunk file of echo deleted", r"chunk|echo"),
        "truncated_chunk": ("a chunk file of echo truncated", r"chunk|echo|raw_truncated_chunk"),
        "zarr2": ("a Zarr v2 store", r"raw_zarr2\.zarr.*(v2|version|format)|(v2|version|format).*raw_zarr2"),
        "binary_metadata": ("zarr.json replaced by binary", r"raw_binary_metadata\.zarr"),
        "no_metadata": ("zarr.json deleted", r"raw_no_metadata\.zarr"),
        "empty_dir": ("an empty folder as the store", r"raw_empty_dir\.zarr"),
        "plain_file": ("a text file as the store", r"raw_plain_file\.zarr"),
    }
    for v, (what, rx) in store_cases.items():
        case(f"focus_{v}", "focus", what, F(f"raw_{v}.zarr"), rx, needs=(f"raw_{v}.zarr",))
    case("focus_missing_store", "focus", "raw store does not exist", F("nope.zarr"), r"nope\.zarr")
    case("focus_slc_as_raw", "focus", "an SLC given as raw", F("slc.zarr"), r"echo", needs=("slc.zarr",))
    # options
    R = ("raw.zarr",)
    case(
        "focus_azbw_above_prf",
        "focus",
        "--azimuth-bandwidth 1000 > PRF 300",
        ["focus", "raw.zarr", "-o", "o.zarr", "--azimuth-bandwidth", "1000"],
        r"--azimuth-bandwidth",
        needs=R,
    )
    case(
        "focus_azbw_negative",
        "focus",
        "--azimuth-bandwidth -5",
        ["focus", "raw.zarr", "-o", "o.zarr", "--azimuth-bandwidth", "-5"],
        r"--azimuth-bandwidth",
        needs=R,
    )
    case(
        "focus_azbw_nan",
        "focus",
        "--azimuth-bandwidth nan",
        ["focus", "raw.zarr", "-o", "o.zarr", "--azimuth-bandwidth", "nan"],
        r"--azimuth-bandwidth",
        needs=R,
    )
    case(
        "focus_fdc_nan",
        "focus",
        "--doppler-centroid nan",
        ["focus", "raw.zarr", "-o", "o.zarr", "--doppler-centroid", "nan"],
        r"--doppler-centroid",
        needs=R,
    )
    case(
        "focus_fdc_huge",
        "focus",
        "--doppler-centroid 1e9 (squint beyond 90 deg)",
        ["focus", "raw.zarr", "-o", "o.zarr", "--doppler-centroid", "1e9"],
        r"--doppler-centroid",
        needs=R,
    )
    windows = {
        "rw_hamming_x": ("--range-window", "hamming:x"),
        "rw_kaiser_negative": ("--range-window", "kaiser:-1"),
        "rw_hamming_above_one": ("--range-window", "hamming:1.5"),
        "rw_unknown": ("--range-window", "gauss:1"),
        "aw_hamming_x": ("--azimuth-window", "hamming:x"),
        "aw_unknown": ("--azimuth-window", "taylor"),
    }
    for v, (opt, val) in windows.items():
        case(
            f"focus_{v}",
            "focus",
            f"{opt} {val!r}",
            ["focus", "raw.zarr", "-o", "o.zarr", opt, val],
            re.escape(opt),
            needs=R,
        )
    case(
        "focus_unknown_option",
        "focus",
        "--bogus",
        ["focus", "raw.zarr", "-o", "o.zarr", "--bogus"],
        r"--bogus",
        needs=R,
    )
    # outputs
    case(
        "focus_out_eq_input",
        "focus",
        "-o equal to the input",
        ["focus", "raw.zarr", "-o", "raw.zarr"],
        r"--output|raw\.zarr",
        needs=R,
    )
    case(
        "focus_out_eq_input_slash",
        "focus",
        "-o the input spelled ./raw.zarr/",
        ["focus", "raw.zarr", "-o", "./raw.zarr/"],
        r"--output|raw\.zarr",
        needs=R,
    )
    case(
        "focus_out_inside_input",
        "focus",
        "-o inside the input store",
        ["focus", "raw.zarr", "-o", "raw.zarr/slc.zarr"],
        r"--output|raw\.zarr",
        needs=R,
    )
    case(
        "focus_out_user_folder",
        "focus",
        "-o an existing user folder holding a file",
        ["focus", "raw.zarr", "-o", "userdir"],
        r"--output|userdir|overwrite",
        needs=R,
        setup=("userdir",),
    )
    case(
        "focus_out_user_file",
        "focus",
        "-o an existing user file",
        ["focus", "raw.zarr", "-o", "user.txt"],
        r"--output|user\.txt|overwrite",
        needs=R,
        setup=("userfile",),
    )
    case(
        "focus_out_under_file",
        "focus",
        "-o file.txt/out.zarr",
        ["focus", "raw.zarr", "-o", "file.txt/out.zarr"],
        r"file\.txt",
        needs=R,
        setup=("filetxt",),
    )
    case(
        "focus_out_readonly",
        "focus",
        "-o in a read-only folder",
        ["focus", "raw.zarr", "-o", "ro/out.zarr"],
        r"(read-only|permission|not writable)",
        needs=R,
        setup=("readonly",),
    )
    case(
        "focus_out_disk_full",
        "focus",
        "-o on a full disk (1 MiB tmpfs)",
        ["focus", "raw.zarr", "-o", "full/out.zarr"],
        r"(space|full)",
        needs=R,
        setup=("diskfull",),
    )
    case(
        "focus_interrupted",
        "focus",
        "Ctrl-C (SIGINT) during the run",
        ["focus", "raw.zarr", "-o", "out.zarr"],
        r"interrupt|abort|cancel",
        needs=R,
        code=130,
        interrupt_after=0.0,  # the 512 x 512 focus may end within half a second
        interrupt_when=".out.zarr*",
    )

    # ---------------------------------------------------------------- defocus
    D = lambda store: ["defocus", store, "-o", "out.zarr"]  # noqa: E731
    case("defocus_missing_store", "defocus", "SLC store does not exist", D("nope.zarr"), r"nope\.zarr")
    case("defocus_raw_as_slc", "defocus", "a raw store given as SLC", D("raw.zarr"), r"slc", needs=R)
    case(
        "defocus_nan_sample",
        "defocus",
        "a NaN sample in slc",
        D("slc_nan_sample.zarr"),
        r"slc.*(NaN|Inf|finite)",
        needs=("slc_nan_sample.zarr",),
    )
    case(
        "defocus_missing_prf",
        "defocus",
        "SLC lacks attribute prf",
        D("slc_missing_prf.zarr"),
        r"prf",
        needs=("slc_missing_prf.zarr",),
    )
    case(
        "defocus_zarr2",
        "defocus",
        "a Zarr v2 SLC store",
        D("slc_zarr2.zarr"),
        r"v2|version|format",
        needs=("slc_zarr2.zarr",),
    )
    case(
        "defocus_deleted_chunk",
        "defocus",
        "a chunk of slc deleted",
        D("slc_deleted_chunk.zarr"),
        r"chunk|slc",
        needs=("slc_deleted_chunk.zarr",),
    )
    case(
        "defocus_truncated_chunk",
        "defocus",
        "a chunk of slc truncated",
        D("slc_truncated_chunk.zarr"),
        r"chunk|slc",
        needs=("slc_truncated_chunk.zarr",),
    )
    S_ = ("slc.zarr",)
    case(
        "defocus_out_eq_input",
        "defocus",
        "-o equal to the input",
        ["defocus", "slc.zarr", "-o", "slc.zarr"],
        r"--output|slc\.zarr",
        needs=S_,
    )
    case(
        "defocus_out_user_folder",
        "defocus",
        "-o an existing user folder holding a file",
        ["defocus", "slc.zarr", "-o", "userdir"],
        r"--output|userdir|overwrite",
        needs=S_,
        setup=("userdir",),
    )
    case(
        "defocus_out_user_file",
        "defocus",
        "-o an existing user file",
        ["defocus", "slc.zarr", "-o", "user.txt"],
        r"--output|user\.txt|overwrite",
        needs=S_,
        setup=("userfile",),
    )
    case(
        "defocus_out_under_file",
        "defocus",
        "-o file.txt/out.zarr",
        ["defocus", "slc.zarr", "-o", "file.txt/out.zarr"],
        r"file\.txt",
        needs=S_,
        setup=("filetxt",),
    )
    case(
        "defocus_out_readonly",
        "defocus",
        "-o in a read-only folder",
        ["defocus", "slc.zarr", "-o", "ro/out.zarr"],
        r"(read-only|permission|not writable)",
        needs=S_,
        setup=("readonly",),
    )

    # ---------------------------------------------------------------- rfi detect
    for v, rx in (
        ("missing_prf", r"prf"),
        ("prf_negative", r"prf"),
        ("nan_sample", r"echo.*(NaN|Inf|finite)"),
        ("echo_c128", r"echo.*(dtype|complex64)"),
        ("zarr2", r"v2|version|format"),
        ("deleted_chunk", r"chunk|echo"),
        ("truncated_chunk", r"chunk|echo"),
        ("empty_azimuth", r"empty"),
        ("short_azimuth", r"aperture|azimuth|pulses"),
        ("no_metadata", r"raw_no_metadata\.zarr"),
    ):
        case(
            f"detect_{v}",
            "rfi detect",
            attr_cases.get(v, store_cases.get(v, (v.replace("_", " "),)))[0] if v != "missing_prf" else "raw lacks prf",
            ["rfi", "detect", f"raw_{v}.zarr"],
            rx,
            needs=(f"raw_{v}.zarr",),
        )
    case(
        "detect_missing_store", "rfi detect", "raw store does not exist", ["rfi", "detect", "nope.zarr"], r"nope\.zarr"
    )
    RS = ("raw.zarr", "slc.zarr")
    case(
        "detect_slc_other_scene",
        "rfi detect",
        "--slc is the image of another scene",
        ["rfi", "detect", "raw.zarr", "--slc", "other_slc.zarr"],
        r"--slc|other_slc\.zarr",
        needs=("raw.zarr", "other_slc.zarr"),
    )
    case(
        "detect_slc_half",
        "rfi detect",
        "--slc with half the lines",
        ["rfi", "detect", "raw.zarr", "--slc", "slc_half.zarr"],
        r"--slc|slc_half\.zarr",
        needs=("raw.zarr", "slc_half.zarr"),
    )
    case(
        "detect_slc_is_raw",
        "rfi detect",
        "--slc given a raw store",
        ["rfi", "detect", "raw.zarr", "--slc", "raw.zarr"],
        r"--slc|slc",
        needs=R,
    )
    case(
        "detect_slc_nan",
        "rfi detect",
        "--slc holds a NaN",
        ["rfi", "detect", "raw.zarr", "--slc", "slc_nan_sample.zarr"],
        r"slc.*(NaN|Inf|finite)",
        needs=("raw.zarr", "slc_nan_sample.zarr"),
    )
    case(
        "detect_slc_deleted_chunk",
        "rfi detect",
        "--slc with a chunk deleted",
        ["rfi", "detect", "raw.zarr", "--slc", "slc_deleted_chunk.zarr"],
        r"chunk|slc",
        needs=("raw.zarr", "slc_deleted_chunk.zarr"),
    )
    case(
        "detect_slc_truncated_chunk",
        "rfi detect",
        "--slc with a truncated chunk",
        ["rfi", "detect", "raw.zarr", "--slc", "slc_truncated_chunk.zarr"],
        r"chunk|slc",
        needs=("raw.zarr", "slc_truncated_chunk.zarr"),
    )
    case(
        "detect_slc_zarr2",
        "rfi detect",
        "--slc a Zarr v2 store",
        ["rfi", "detect", "raw.zarr", "--slc", "slc_zarr2.zarr"],
        r"v2|version|format",
        needs=("raw.zarr", "slc_zarr2.zarr"),
    )
    case(
        "detect_json_eq_input",
        "rfi detect",
        "--json is the raw store",
        ["rfi", "detect", "raw.zarr", "--slc", "slc.zarr", "--json", "raw.zarr"],
        r"--json|raw\.zarr",
        needs=RS,
    )
    case(
        "detect_json_user_file",
        "rfi detect",
        "--json an existing user file",
        ["rfi", "detect", "raw.zarr", "--slc", "slc.zarr", "--json", "user.txt"],
        r"--json|user\.txt|overwrite",
        needs=RS,
        setup=("userfile",),
    )
    case(
        "detect_json_user_folder",
        "rfi detect",
        "--json an existing user folder",
        ["rfi", "detect", "raw.zarr", "--slc", "slc.zarr", "--json", "userdir"],
        r"--json|userdir|overwrite",
        needs=RS,
        setup=("userdir",),
    )
    case(
        "detect_json_under_file",
        "rfi detect",
        "--json file.txt/d.json",
        ["rfi", "detect", "raw.zarr", "--slc", "slc.zarr", "--json", "file.txt/d.json"],
        r"file\.txt",
        needs=RS,
        setup=("filetxt",),
    )
    case(
        "detect_json_readonly",
        "rfi detect",
        "--json in a read-only folder",
        ["rfi", "detect", "raw.zarr", "--slc", "slc.zarr", "--json", "ro/d.json"],
        r"(read-only|permission|not writable)",
        needs=RS,
        setup=("readonly",),
    )

    # ---------------------------------------------------------------- rfi clean
    C = lambda *extra: ["rfi", "clean", "raw.zarr", "--slc", "slc.zarr", "-o", "out.zarr", *extra]  # noqa: E731
    for v, (extra, rx) in {
        "method_unknown": (["--method", "wiener"], r"--method|wiener"),
        "param_pfa_text": (["--param", "pfa=abc"], r"--param|pfa"),
        "param_pfa_two": (["--param", "pfa=2"], r"--param|pfa"),
        "param_pfa_negative": (["--param", "pfa=-1"], r"--param|pfa"),
        "param_unknown_key": (["--param", "wisdom=1"], r"--param|wisdom"),
        "param_no_equals": (["--param", "pfa"], r"--param"),
        "param_window_bins_text": (["--param", "window_bins=wide"], r"--param|window_bins"),
        "param_esf_rank_text": (["--method", "esf", "--param", "max_rank=many"], r"--param|max_rank"),
        "sr_zero": (["--sr", "0"], r"--sr"),
        "sr_negative": (["--sr", "-2"], r"--sr"),
        "sr_fraction": (["--sr", "2.5"], r"--sr"),
        "unknown_option": (["--bogus"], r"--bogus"),
    }.items():
        case(f"clean_{v}", "rfi clean", " ".join(extra), C(*extra), rx, needs=RS)
    for v, rx in (
        ("missing_prf", r"prf"),
        ("nan_sample", r"echo.*(NaN|Inf|finite)"),
        ("zarr2", r"v2|version|format"),
        ("deleted_chunk", r"chunk|echo"),
        ("truncated_chunk", r"chunk|echo"),
    ):
        case(
            f"clean_raw_{v}",
            "rfi clean",
            f"raw {v.replace('_', ' ')}",
            ["rfi", "clean", f"raw_{v}.zarr", "-o", "out.zarr"],
            rx,
            needs=(f"raw_{v}.zarr",),
        )
    case(
        "clean_slc_other_scene",
        "rfi clean",
        "--slc is the image of another scene",
        ["rfi", "clean", "raw.zarr", "--slc", "other_slc.zarr", "-o", "out.zarr"],
        r"--slc|other_slc\.zarr",
        needs=("raw.zarr", "other_slc.zarr"),
    )
    case(
        "clean_slc_half",
        "rfi clean",
        "--slc with half the lines",
        ["rfi", "clean", "raw.zarr", "--slc", "slc_half.zarr", "-o", "out.zarr"],
        r"--slc|slc_half\.zarr",
        needs=("raw.zarr", "slc_half.zarr"),
    )
    case(
        "clean_out_eq_input",
        "rfi clean",
        "-o equal to the input",
        ["rfi", "clean", "raw.zarr", "--slc", "slc.zarr", "-o", "raw.zarr"],
        r"--output|raw\.zarr",
        needs=RS,
    )
    case(
        "clean_out_eq_slc",
        "rfi clean",
        "-o equal to --slc",
        ["rfi", "clean", "raw.zarr", "--slc", "slc.zarr", "-o", "slc.zarr"],
        r"--output|slc\.zarr",
        needs=RS,
    )
    case(
        "clean_image_eq_input",
        "rfi clean",
        "--image equal to the input",
        C("--image", "raw.zarr"),
        r"--image|raw\.zarr",
        needs=RS,
    )
    case(
        "clean_image_eq_output",
        "rfi clean",
        "--image equal to -o",
        C("--image", "out.zarr"),
        r"--image|out\.zarr",
        needs=RS,
    )
    case(
        "clean_image_user_file",
        "rfi clean",
        "--image an existing user file",
        C("--image", "user.txt"),
        r"--image|user\.txt|overwrite",
        needs=RS,
        setup=("userfile",),
    )
    case(
        "clean_out_user_folder",
        "rfi clean",
        "-o an existing user folder holding a file",
        ["rfi", "clean", "raw.zarr", "--slc", "slc.zarr", "-o", "userdir"],
        r"--output|userdir|overwrite",
        needs=RS,
        setup=("userdir",),
    )
    case(
        "clean_out_user_file",
        "rfi clean",
        "-o an existing user file",
        ["rfi", "clean", "raw.zarr", "--slc", "slc.zarr", "-o", "user.txt"],
        r"--output|user\.txt|overwrite",
        needs=RS,
        setup=("userfile",),
    )
    case(
        "clean_out_under_file",
        "rfi clean",
        "-o file.txt/out.zarr",
        ["rfi", "clean", "raw.zarr", "--slc", "slc.zarr", "-o", "file.txt/out.zarr"],
        r"file\.txt",
        needs=RS,
        setup=("filetxt",),
    )
    case(
        "clean_out_readonly",
        "rfi clean",
        "-o in a read-only folder",
        ["rfi", "clean", "raw.zarr", "--slc", "slc.zarr", "-o", "ro/out.zarr"],
        r"(read-only|permission|not writable)",
        needs=RS,
        setup=("readonly",),
    )
    case(
        "clean_out_disk_full",
        "rfi clean",
        "-o on a full disk (1 MiB tmpfs)",
        ["rfi", "clean", "raw.zarr", "--slc", "slc.zarr", "-o", "full/out.zarr"],
        r"(space|full)",
        needs=RS,
        setup=("diskfull",),
    )

    # ---------------------------------------------------------------- run: pipeline files
    P = ["run", "p.yaml", "-q"]
    pipe = lambda text, **kw: {"files": {"p.yaml": text}, "needs": ("sim.yaml",) + tuple(kw.pop("needs", ())), **kw}  # noqa: E731
    case("run_missing_file", "run", "pipeline file does not exist", ["run", "nope.yaml"], r"nope\.yaml")
    case(
        "run_folder_as_pipeline",
        "run",
        "a folder given as the pipeline",
        ["run", "pdir"],
        r"pdir.*(folder|directory|not a file)",
        files={"pdir/x.txt": "x\n"},
    )
    case(
        "run_binary_pipeline",
        "run",
        "a binary file given as the pipeline",
        P,
        r"p\.yaml",
        files={"p.yaml": bytes(range(256)) * 4},
    )
    case("run_empty_pipeline", "run", "empty pipeline file", P, r"p\.yaml.*(empty|steps)", **pipe(""))
    case(
        "run_alias_bomb",
        "run",
        "YAML alias bomb in the pipeline",
        P,
        r"alias|too (large|big|many)|expan",
        timeout=60,
        memory_gib=4,
        **pipe(_alias_bomb(PIPE)),
    )
    case(
        "run_dup_step_key",
        "run",
        "a step gives 'stage' twice",
        P,
        r"stage.*(twice|duplicate)",
        **pipe(PIPE.replace("    stage: focus\n", "    stage: focus\n    stage: simulate\n")),
    )
    case(
        "run_unknown_stage",
        "run",
        "stage 'focuss'",
        P,
        r"focuss",
        **pipe(PIPE.replace("stage: focus", "stage: focuss")),
    )
    case("run_unknown_top_key", "run", "top-level key 'stepz'", P, r"stepz", **pipe(PIPE + "stepz: []\n"))
    case(
        "run_unknown_input_step",
        "run",
        "input refers to a step that does not exist",
        P,
        r"rawx",
        **pipe(PIPE.replace("{raw: raw}", "{raw: rawx}")),
    )
    case(
        "run_input_later_step",
        "run",
        "input refers to a later step",
        P,
        r"slc|later",
        **pipe(
            PIPE.replace("params: {config_file: sim.yaml}", "params: {config_file: sim.yaml}\n    inputs: {scene: slc}")
        ),
    )
    case(
        "run_unknown_param",
        "run",
        "focus step param 'window'",
        P,
        r"window",
        **pipe(PIPE + "    params: {window: hamming}\n"),
    )
    case(
        "run_bad_window_param",
        "run",
        "focus step range_window 'kaiser:-1'",
        P,
        r"range_window",
        **pipe(PIPE + "    params: {range_window: 'kaiser:-1'}\n"),
    )
    case(
        "run_config_file_missing",
        "run",
        "simulate step config_file does not exist",
        P,
        r"nope\.yaml",
        **pipe(PIPE.replace("config_file: sim.yaml", "config_file: nope.yaml")),
    )
    case(
        "run_config_file_nan",
        "run",
        "simulate step config_file with snr_db .nan",
        P,
        r"snr_db",
        files={
            "p.yaml": PIPE.replace("config_file: sim.yaml", "config_file: bad.yaml"),
            "bad.yaml": _sim(noise__snr_db=float("nan")),
        },
    )
    case(
        "run_inline_config_unknown",
        "run",
        "inline simulator config with key 'scen'",
        P,
        r"scen\b",
        **pipe(PIPE.replace("params: {config_file: sim.yaml}", "params: {config: {scen: {n_azimuth: 64}}}")),
    )
    case(
        "run_catalog_entry_missing",
        "run",
        "input catalog:nope",
        P,
        r"nope",
        files={
            "p.yaml": PIPE.replace("params: {config_file: sim.yaml}", "inputs: {scene: catalog:nope}")
            + "catalog: catalog.yaml\n",
            "catalog.yaml": CATALOG,
        },
        needs=("sim.yaml",),
    )
    case(
        "run_file_input_missing",
        "run",
        "focus input path nope.zarr does not exist",
        P,
        r"nope\.zarr",
        **pipe("name: t\noutput_dir: runs/t\nsteps:\n  - name: slc\n    stage: focus\n    inputs: {raw: nope.zarr}\n"),
    )
    case(
        "run_file_input_nan",
        "run",
        "focus input store holds a NaN sample",
        P,
        r"echo.*(NaN|Inf|finite)",
        **pipe(
            "name: t\noutput_dir: runs/t\nsteps:\n  - name: slc\n    stage: focus\n    inputs: {raw: raw_nan_sample.zarr}\n",
            needs=("raw_nan_sample.zarr",),
        ),
    )
    case(
        "run_step_output_eq_input",
        "run",
        "a step's output is its own input",
        P,
        r"output|raw\.zarr",
        **pipe(
            "name: t\noutput_dir: .\nsteps:\n  - name: slc\n    stage: focus\n    inputs: {raw: raw.zarr}\n    output: raw.zarr\n",
            needs=("raw.zarr",),
        ),
    )
    case(
        "run_step_output_user_folder",
        "run",
        "a step's output is an existing user folder",
        P,
        r"output|userdir|overwrite",
        **pipe(
            "name: t\noutput_dir: .\nsteps:\n  - name: slc\n    stage: focus\n    inputs: {raw: raw.zarr}\n    output: userdir\n",
            needs=("raw.zarr",),
            setup=("userdir",),
        ),
    )
    case(
        "run_step_output_user_file",
        "run",
        "a step's output is an existing user file",
        P,
        r"output|user\.txt|overwrite",
        **pipe(
            "name: t\noutput_dir: .\nsteps:\n  - name: slc\n    stage: focus\n    inputs: {raw: raw.zarr}\n    output: user.txt\n",
            needs=("raw.zarr",),
            setup=("userfile",),
        ),
    )
    case(
        "run_step_output_under_file",
        "run",
        "a step's output is under a file",
        P,
        r"file\.txt",
        **pipe(
            "name: t\noutput_dir: .\nsteps:\n  - name: slc\n    stage: focus\n    inputs: {raw: raw.zarr}\n    output: file.txt/slc.zarr\n",
            needs=("raw.zarr",),
            setup=("filetxt",),
        ),
    )
    case(
        "run_two_steps_one_output",
        "run",
        "two steps write the same output",
        P,
        r"output|same",
        **pipe(PIPE.replace("  - name: slc", "    output: x.zarr\n  - name: slc") + "    output: x.zarr\n"),
    )
    case(
        "run_output_dir_user_stores",
        "run",
        "--set output_dir= a folder holding the user's stores",
        ["run", "p.yaml", "-q", "--set", "output_dir=userstores"],
        r"output_dir|userstores|overwrite",
        **pipe(PIPE, needs=("userstores",)),
    )
    case(
        "run_output_dir_readonly",
        "run",
        "output_dir in a read-only folder",
        ["run", "p.yaml", "-q", "--set", "output_dir=ro/run"],
        r"(read-only|permission|not writable)",
        **pipe(PIPE, setup=("readonly",)),
    )
    case(
        "run_output_dir_disk_full",
        "run",
        "output_dir on a full disk (1 MiB tmpfs)",
        ["run", "p.yaml", "-q", "--set", "output_dir=full/run"],
        r"(space|full)",
        **pipe(PIPE, setup=("diskfull",)),
    )
    case(
        "run_output_dir_under_file",
        "run",
        "output_dir under a file",
        ["run", "p.yaml", "-q", "--set", "output_dir=file.txt/run"],
        r"file\.txt",
        **pipe(PIPE, setup=("filetxt",)),
    )
    case(
        "run_summary_json_user_file",
        "run",
        "--summary-json an existing user file",
        ["run", "p.yaml", "-q", "--summary-json", "user.txt"],
        r"--summary-json|user\.txt|overwrite",
        **pipe(PIPE, setup=("userfile",)),
    )
    case(
        "run_summary_json_eq_pipeline",
        "run",
        "--summary-json is the pipeline file",
        ["run", "p.yaml", "-q", "--summary-json", "p.yaml"],
        r"--summary-json|p\.yaml",
        **pipe(PIPE),
    )
    # --set and options
    for v, (s, rx) in {
        "set_unknown_top": ("foo.bar=1", r"--set foo"),  # names the option, not p.yaml:1:1
        "set_unknown_step": ("steps.nope.params.x=1", r"nope"),
        "set_no_equals": ("steps.slc.params.range_window", r"--set"),
        "set_bad_window": ("steps.slc.params.range_window=hamming:x", r"range_window"),
        "set_unknown_param": ("steps.slc.params.windw=rect", r"windw"),
        "set_alias_bomb_value": ("name=" + "[" * 200 + "]" * 200, r"name"),
    }.items():
        case(f"run_{v}", "run", f"--set {s[:40]}", ["run", "p.yaml", "-q", "--set", s], rx, **pipe(PIPE))
    case(
        "run_from_step_unknown",
        "run",
        "--from-step nope",
        ["run", "p.yaml", "-q", "--from-step", "nope"],
        r"--from-step|nope",
        **pipe(PIPE),
    )
    case(
        "run_scheduler_bogus",
        "run",
        "--scheduler bogus",
        ["run", "p.yaml", "-q", "--scheduler", "bogus"],
        r"--scheduler|bogus",
        **pipe(PIPE),
    )
    case(
        "run_catalog_missing",
        "run",
        "--catalog nope.yaml",
        ["run", "p.yaml", "-q", "--catalog", "nope.yaml"],
        r"nope\.yaml",
        **pipe(PIPE),
    )
    case(
        "run_catalog_folder",
        "run",
        "--catalog a folder",
        ["run", "p.yaml", "-q", "--catalog", "cdir"],
        r"cdir.*(folder|directory|not a file)",
        files={"p.yaml": PIPE, "cdir/x.txt": "x\n"},
        needs=("sim.yaml",),
    )
    case(
        "run_plugin_missing",
        "run",
        "plugins: [no_such_module]",
        P,
        r"no_such_module",
        **pipe(PIPE + "plugins: [no_such_module]\n"),
    )
    case(
        "run_batch_no_match",
        "run",
        "batch entries match nothing",
        P,
        r"batch|entries",
        files={"p.yaml": PIPE + "catalog: catalog.yaml\nbatch: {entries: 'zzz_*'}\n", "catalog.yaml": CATALOG},
        needs=("sim.yaml",),
    )

    # ---------------------------------------------------------------- stages, config template, catalog, top level
    case("stages_unknown", "stages", "stages nope", ["stages", "nope"], r"nope")
    case("stages_unknown_option", "stages", "stages --yaml", ["stages", "--yaml"], r"--yaml")
    case("template_unknown_stage", "config template", "config template nope", ["config", "template", "nope"], r"nope")
    case(
        "template_no_stage", "config template", "config template (no stage)", ["config", "template"], r"STAGE|argument"
    )
    case(
        "template_bad_name",
        "config template",
        "--name with a space",
        ["config", "template", "focus", "--name", "my step"],
        r"--name|name",
    )
    case("cli_unknown_command", "sarpipe", "sarpipe bogus", ["bogus"], r"bogus")
    case("cli_unknown_global_option", "sarpipe", "sarpipe --bogus", ["--bogus"], r"--bogus")
    K = lambda *a: ["catalog", *a, "--catalog", "cat.yaml"]  # noqa: E731
    cat = lambda text, **kw: {"files": {"cat.yaml": text}, **kw}  # noqa: E731
    case(
        "catalog_missing_file",
        "catalog list",
        "--catalog nope.yaml",
        ["catalog", "list", "--catalog", "nope.yaml"],
        r"nope\.yaml",
    )
    case(
        "catalog_default_missing", "catalog list", "no ./data_catalog.yaml", ["catalog", "list"], r"data_catalog\.yaml"
    )
    case(
        "catalog_folder",
        "catalog list",
        "--catalog a folder",
        ["catalog", "list", "--catalog", "cdir"],
        r"cdir.*(folder|directory|not a file)",
        files={"cdir/x.txt": "x\n"},
    )
    case(
        "catalog_binary",
        "catalog list",
        "a binary catalog",
        K("list"),
        r"cat\.yaml",
        files={"cat.yaml": bytes(range(256)) * 4},
    )
    case(
        "catalog_dup_entry",
        "catalog list",
        "entry 'tiny' given twice",
        K("list"),
        r"tiny.*(twice|duplicate)|(twice|duplicate).*tiny",
        **cat(CATALOG + "  tiny:\n    kind: raw\n    path: other.zarr\n"),
    )
    case(
        "catalog_dup_key",
        "catalog list",
        "'kind' given twice in one entry",
        K("list"),
        r"kind.*(twice|duplicate)|(twice|duplicate).*kind",
        **cat(CATALOG.replace("    kind: raw\n", "    kind: raw\n    kind: slc\n")),
    )
    case(
        "catalog_alias_bomb",
        "catalog list",
        "YAML alias bomb in the catalog",
        K("list"),
        r"alias|too (large|big|many)|expan",
        timeout=60,
        memory_gib=4,
        **cat(_alias_bomb("version: 1")),
    )
    case(
        "catalog_bad_kind",
        "catalog list",
        "entry kind 'tape'",
        K("list"),
        r"kind",
        **cat(CATALOG.replace("kind: raw", "kind: tape")),
    )
    case(
        "catalog_unknown_key",
        "catalog list",
        "entry key 'pth'",
        K("list"),
        r"pth",
        **cat(CATALOG.replace("path: raw.zarr", "pth: raw.zarr")),
    )
    case(
        "catalog_sim_nan",
        "catalog list",
        "inline simulator config with snr_db .nan",
        K("list"),
        r"snr_db",
        **cat(CATALOG.replace("config_file: sim.yaml", "config: {noise: {snr_db: .nan}}")),
    )
    case(
        "catalog_sim_unknown_key",
        "catalog list",
        "inline simulator config with key 'scen'",
        K("list"),
        r"scen\b",
        **cat(CATALOG.replace("config_file: sim.yaml", "config: {scen: {n_azimuth: 64}}")),
    )
    case(
        "catalog_remote_bbox",
        "catalog list",
        "remote entry with an inverted bbox",
        K("list"),
        r"bbox",
        **cat(CATALOG + "  s1:\n    kind: remote\n    provider: cdse\n    query: {bbox: [10, 50, 11, 40]}\n"),
    )
    case(
        "catalog_stac_typo",
        "catalog list",
        "STAC field 'sar:polarisations'",
        K("list"),
        r"sar:polarisations",
        **cat(
            CATALOG.replace("    path: raw.zarr\n", "    path: raw.zarr\n    properties: {'sar:polarisations': [HH]}\n")
        ),
    )
    case("catalog_show_unknown", "catalog show", "catalog show nope", K("show", "nope"), r"nope", **cat(CATALOG))
    case(
        "catalog_show_bad_catalog",
        "catalog show",
        "catalog show on a broken catalog",
        K("show", "tiny"),
        r"kind",
        **cat(CATALOG.replace("kind: raw", "kind: tape")),
    )

    # ---------------------------------------------------------------- export / report (when they exist as commands)
    case("export_missing_input", "export", "export nope.zarr", ["export", "nope.zarr", "-o", "out"], r"nope\.zarr")
    case(
        "export_nan_input",
        "export",
        "export a store with a NaN sample",
        ["export", "raw_nan_sample.zarr", "-o", "out"],
        r"(NaN|Inf|finite)",
        needs=("raw_nan_sample.zarr",),
    )
    case(
        "export_out_eq_input",
        "export",
        "export -o equal to the input",
        ["export", "slc.zarr", "-o", "slc.zarr"],
        r"--output|slc\.zarr",
        needs=S_,
    )
    case(
        "export_out_user_file",
        "export",
        "export -o an existing user file",
        ["export", "slc.zarr", "-o", "user.txt"],
        r"--output|user\.txt|overwrite",
        needs=S_,
        setup=("userfile",),
    )
    case(
        "export_unknown_option",
        "export",
        "export --bogus",
        ["export", "slc.zarr", "-o", "out", "--bogus"],
        r"--bogus",
        needs=S_,
    )
    case("report_unknown_option", "report", "report --bogus", ["report", "--bogus"], r"--bogus")
    case(
        "report_missing_input",
        "report",
        "report on an image that does not exist",
        ["report", "-o", "out", "--interfered", "nope.zarr"],
        r"nope\.zarr",
    )
    case(
        "report_out_eq_input",
        "report",
        "report -o equal to its --interfered image",
        ["report", "-o", "slc.zarr", "--interfered", "slc.zarr"],
        r"--output|slc\.zarr",
        needs=S_,
    )
    case(
        "report_raw_as_image",
        "report",
        "report --interfered given a raw store",
        ["report", "-o", "out", "--interfered", "raw.zarr"],
        r"--interfered|slc|raw\.zarr",
        needs=R,
    )


def _npy_with_nan() -> bytes:
    import io

    import numpy as np

    a = np.ones((32, 32), dtype=np.float32)
    a[5, 5] = np.nan
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------- running


@dataclass
class Result:
    id: str
    command: str
    what: str
    verdict: str  # PASS | FAIL | n/a
    exit: int | None = None
    seconds: float = 0.0
    traceback: bool = False
    timed_out: bool = False
    accepted: bool = False  # exit 0 on invalid data
    one_line: bool = True
    matches: bool = True
    leftovers: list[str] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)
    message: str = ""
    reasons: list[str] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)


def _snapshot(root: Path) -> dict[str, str]:
    """relative path -> sha256 of the file, or 'dir' (symlinks by target)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for d in dirnames:
            out[os.path.relpath(base / d, root)] = "dir"
        for f in filenames:
            p = base / f
            rel = os.path.relpath(p, root)
            try:
                if p.is_symlink():
                    out[rel] = "link:" + os.readlink(p)
                else:
                    out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            except OSError as exc:
                out[rel] = f"unreadable:{exc.errno}"
    return out


def _top_level(paths: list[str]) -> list[str]:
    """Drop paths under another listed path: a new store is one leftover, not one per chunk."""
    s = set(paths)
    keep = []
    for p in sorted(paths):
        parent = os.path.dirname(p)
        while parent and parent not in s:
            parent = os.path.dirname(parent)
        if not parent:
            keep.append(p)
    return keep


def _unexpected(new: list[str], after: dict[str, str], allowed: tuple[str, ...]) -> list[str]:
    """New paths that count as leftovers: files not matching ``allowed``, and new folders that are empty or hold
    such a file (a folder holding only an allowed file, e.g. a run log, is not a leftover)."""

    def ok(p: str) -> bool:
        return any(fnmatch.fnmatchcase(p, g) for g in allowed)

    bad_files = [p for p in new if after[p] != "dir" and not ok(p)]
    out = list(bad_files)
    for p in new:
        if after[p] != "dir":
            continue
        inside = [q for q in after if q.startswith(p + os.sep)]
        if not inside or any(q in bad_files for q in inside):
            out.append(p)
    return out


def _mount(kind: str, where: Path) -> bool:
    """Mount a read-only bind or a 1 MiB tmpfs at ``where`` (root only); False when that is not possible."""
    where.mkdir(parents=True, exist_ok=True)
    if kind == "readonly":
        cmds = [["mount", "--bind", str(where), str(where)], ["mount", "-o", "remount,bind,ro", str(where)]]
    else:
        cmds = [["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(where)]]
    for i, cmd in enumerate(cmds):
        if subprocess.run(cmd, capture_output=True, check=False).returncode != 0:
            if i:
                subprocess.run(["umount", str(where)], capture_output=True, check=False)
            return False
    return True


def _unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def _setup(c: Case, d: Path, fixtures: Path, mounts: list[Path]) -> str | None:
    """Prepare the case folder; returns a reason when the case cannot run here."""
    for name in c.needs:
        src = fixtures / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, d / name)
    for rel, content in c.files.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
    for s in c.setup:
        if s == "userdir":
            (d / "userdir").mkdir()
            (d / "userdir" / "notes.txt").write_text("the user's own notes: sarpipe must not delete them\n")
        elif s == "userfile":
            (d / "user.txt").write_text("the user's own file: sarpipe must not replace it\n")
        elif s == "filetxt":
            (d / "file.txt").write_text("a plain file, not a folder\n")
        elif s == "readonly":
            if IS_ROOT:
                if not _mount("readonly", d / "ro"):
                    return "cannot bind-mount a read-only folder here (root, but mount failed)"
                mounts.append(d / "ro")
            else:
                (d / "ro").mkdir()
                os.chmod(d / "ro", 0o555)
        elif s == "diskfull":
            if not IS_ROOT:
                return "needs root to mount a 1 MiB tmpfs (no other way to fill a disk safely)"
            if not _mount("diskfull", d / "full"):
                return "mount -t tmpfs failed here"
            mounts.append(d / "full")
        else:  # pragma: no cover - a typo in a case definition
            raise ValueError(f"unknown setup {s!r}")
    return None


#: ``python -m sarpipe.cli`` under an address-space cap: set in the child itself (no preexec_fn, which is unsafe
#: with the worker threads here), then the CLI module runs exactly as ``-m`` would run it.
_CAPPED = (
    "import resource, runpy, sys; cap = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_AS, (cap, cap)); "
    "sys.argv = ['sarpipe', *sys.argv[2:]]; runpy.run_module('sarpipe.cli', run_name='__main__', alter_sys=True)"
)


def _argv(c: Case) -> list[str]:
    if c.memory_gib is None:
        return [sys.executable, "-m", "sarpipe.cli", *c.args]
    return [sys.executable, "-c", _CAPPED, str(int(c.memory_gib * GIB)), *c.args]


_ERROR_LINE = re.compile(r"^(error|Error)\b[: ]")


#: Noise in an answer to bad input: Python warnings (``file:line: SomeWarning: ...`` and the source they echo).
_WARNING_LINE = re.compile(r"\b[A-Z]\w*Warning\b|^\s*warnings\.warn\(")


def _judge_message(stderr: str, interrupted: bool = False) -> tuple[str, bool, str]:
    """(the message block, whether it is one message without noise, its first line).

    The message is the one ``error:`` line and the indented lines under it (a list of configuration problems);
    click's ``Usage:`` block and lines saying what the command was doing are allowed beside it, Python warnings
    and a second error line are not. After an interrupt the message is the last line.
    """
    lines = [ln.rstrip() for ln in stderr.splitlines() if ln.strip()]
    noise = [ln for ln in lines if _WARNING_LINE.search(ln)]
    if interrupted:
        last = lines[-1] if lines else ""
        return last, bool(lines) and not noise, last
    errs = [i for i, ln in enumerate(lines) if _ERROR_LINE.match(ln)]
    if not errs:
        return "\n".join(lines), False, (lines[-1] if lines else "")
    first = errs[0]
    block = [lines[first]] + [ln for ln in lines[first + 1 :] if ln[:1].isspace()]
    return "\n".join(block), len(errs) == 1 and not noise, lines[first]


def run_case(c: Case, fixtures: Path, root: Path, existing: dict[str, bool], keep: bool) -> Result:
    r = Result(c.id, c.command, c.what, "FAIL", argv=list(c.args))
    if c.na:
        r.verdict, r.reasons = "n/a", [c.na]
        return r
    if not existing.get(c.command, True):
        r.verdict, r.reasons = "n/a", [f"no '{c.command}' command (sarpipe {c.command} --help fails)"]
        return r
    d = root / c.id
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    mounts: list[Path] = []
    try:
        reason = _setup(c, d, fixtures, mounts)
        if reason:
            r.verdict, r.reasons = "n/a", [reason]
            return r
        before = _snapshot(d)
        env = dict(os.environ, NO_COLOR="1", TERM="dumb", COLUMNS="200", PYTHONUNBUFFERED="1")
        env.pop("FORCE_COLOR", None)
        t0 = time.monotonic()
        interrupt_missed = False
        proc = subprocess.Popen(
            _argv(c),
            cwd=d,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            if c.interrupt_after is not None:
                # interrupt mid-write, not mid-import: wait for the first temporary output to appear
                while proc.poll() is None and not list(d.glob(c.interrupt_when)):
                    if time.monotonic() - t0 > c.timeout:
                        raise subprocess.TimeoutExpired(proc.args, c.timeout)
                    time.sleep(0.05)
                try:
                    out, err = proc.communicate(timeout=c.interrupt_after)
                    interrupt_missed = True
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGINT)
                    out, err = proc.communicate(timeout=c.timeout)
            else:
                out, err = proc.communicate(timeout=c.timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            r.timed_out = True
        r.seconds = time.monotonic() - t0
        if interrupt_missed:
            r.reasons = ["harness: the command finished before it could be interrupted"]
        r.exit = proc.returncode
        stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
        (d.parent / f"{c.id}.stderr.txt").write_text(stderr)
        (d.parent / f"{c.id}.stdout.txt").write_text(stdout[-20000:])
        after = _snapshot(d)
    finally:
        for m in mounts:
            _unmount(m)
    r.traceback = TRACEBACK in stderr or TRACEBACK in stdout
    block, r.one_line, first = _judge_message(stderr, interrupted=c.interrupt_after is not None)
    r.message = " / ".join(ln.strip() for ln in block.splitlines()) if _ERROR_LINE.match(first) else first.strip()
    r.matches = bool(re.search(c.expect, block, re.IGNORECASE | re.DOTALL))
    r.accepted = r.exit == 0 and c.code != 0
    new = [p for p in after if p not in before]
    r.leftovers = _top_level(_unexpected(new, after, c.allowed))
    r.destroyed = sorted(p for p, h in before.items() if after.get(p) != h)
    reasons = list(r.reasons)
    if r.timed_out:
        reasons.append(f"timed out after {c.timeout:.0f} s (killed)")
    if r.exit != c.code:
        reasons.append(f"exit {r.exit}, expected {c.code}" + (" (accepted invalid input)" if r.accepted else ""))
    if r.traceback:
        reasons.append("traceback")
    if not r.matches:
        reasons.append(f"message does not match /{c.expect}/")
    if not r.one_line:
        reasons.append("not one error message (none, several, or Python warnings beside it)")
    if r.leftovers:
        hidden = [p for p in r.leftovers if re.search(r"(^|/)\.[^/]*\.(tmp|old)-", p)]
        reasons.append(
            f"left behind: {', '.join(r.leftovers[:4])}" + (f" ({len(hidden)} hidden temporaries)" if hidden else "")
        )
    if r.destroyed:
        reasons.append(f"user input changed or deleted: {', '.join(r.destroyed[:4])}")
    r.reasons = reasons
    r.verdict = "PASS" if not reasons else "FAIL"
    if not keep and r.verdict == "PASS":
        _make_writable(d)
        shutil.rmtree(d, ignore_errors=True)
    return r


def _make_writable(d: Path) -> None:
    for dirpath, _, _ in os.walk(d):
        with contextlib.suppress(OSError):
            os.chmod(dirpath, 0o755)


def _command_exists(cmd: str) -> bool:
    if cmd == "sarpipe":
        return True
    p = subprocess.run(
        [sys.executable, "-m", "sarpipe.cli", *cmd.split(), "--help"],
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return p.returncode == 0


# --------------------------------------------------------------------------------------------------- report


def _cell(text: str, n: int = 100) -> str:
    text = " ".join(text.split())
    text = text[:n] + ("..." if len(text) > n else "")
    return text.replace("|", "\\|")


def markdown(results: list[Result], seconds: float, command: str) -> str:
    ran = [r for r in results if r.verdict != "n/a"]
    lines = [
        f"Command: `{command}`; {len(results)} cases, {len(ran)} run, {seconds:.0f} s.",
        "",
        "| case | command | what is wrong | exit | verdict | message (first 100 chars) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        verdict = r.verdict if r.verdict != "FAIL" else "FAIL: " + "; ".join(r.reasons)
        if r.verdict == "n/a":
            verdict = "n/a: " + "; ".join(r.reasons)
        lines.append(
            f"| {r.id} | {r.command} | {_cell(r.what, 60)} | {'' if r.exit is None else r.exit} | {_cell(verdict, 120)} "
            f"| {_cell(r.message)} |"
        )
    lines += ["", *totals(results)]
    return "\n".join(lines) + "\n"


def totals(results: list[Result]) -> list[str]:
    ran = [r for r in results if r.verdict != "n/a"]
    return [
        "| total | count |",
        "|---|---|",
        f"| cases | {len(results)} |",
        f"| run | {len(ran)} |",
        f"| n/a | {len(results) - len(ran)} |",
        f"| pass | {sum(r.verdict == 'PASS' for r in ran)} |",
        f"| fail | {sum(r.verdict == 'FAIL' for r in ran)} |",
        f"| tracebacks | {sum(r.traceback for r in ran)} |",
        f"| exit-0 acceptances | {sum(r.accepted for r in ran)} |",
        f"| leftovers (any new path) | {sum(bool(r.leftovers) for r in ran)} |",
        f"| leftovers after a refusal (exit != 0) | {sum(bool(r.leftovers) and r.exit not in (0, None) for r in ran)} |",
        f"| destroyed inputs | {sum(bool(r.destroyed) for r in ran)} |",
        f"| timeouts | {sum(r.timed_out for r in ran)} |",
        f"| wrong or unclear message | {sum((not r.matches or not r.one_line) for r in ran)} |",
    ]


def select(cases: list[Case], only: str | None) -> list[Case]:
    if not only:
        return cases
    pats = [p.strip() for p in only.split(",") if p.strip()]
    chosen = [c for c in cases if any(c.id == p or fnmatch.fnmatchcase(c.id, p) for p in pats)]
    unknown = [p for p in pats if not any(c.id == p or fnmatch.fnmatchcase(c.id, p) for c in cases)]
    if unknown:
        raise SystemExit(f"--only: no case matches {', '.join(unknown)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--out",
        type=Path,
        help="folder for fixtures, case folders and results.json (default: a temporary one, removed)",
    )
    ap.add_argument("--jobs", type=int, default=2, help="cases at once (default 2)")
    ap.add_argument("--only", help="comma-separated case ids or globs, e.g. 'focus_*,sim_alias_bomb'")
    ap.add_argument("--markdown", type=Path, help="also write the table here")
    ap.add_argument("--keep", action="store_true", help="keep the folders of passing cases too")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--build-fixtures", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.build_fixtures:
        build_fixtures(args.build_fixtures)
        return 0
    _define_cases()
    cases = select(CASES, args.only)
    if args.list:
        for c in cases:
            print(f"{c.id:40s} {c.command:16s} {c.what}")
        print(f"{len(cases)} cases")
        return 0
    tmp = None
    out = args.out
    if out is None:
        tmp = tempfile.mkdtemp(prefix="sarpipe-sweep-")
        out = Path(tmp)
    out = out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    fixtures = out / "fixtures"
    needed = {n for c in cases for n in c.needs}
    if needed and not (fixtures / ".complete").exists():
        if fixtures.exists():
            shutil.rmtree(fixtures)
        p = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--build-fixtures", str(fixtures)],
            capture_output=True,
            text=True,
            check=False,
        )
        if p.returncode != 0:
            sys.stderr.write(p.stdout + p.stderr)
            sys.stderr.write("sweep: building the fixtures failed (a harness problem, not a finding)\n")
            return 3
        (fixtures / ".complete").write_text("")
    t_fix = time.monotonic() - t0
    commands = sorted({c.command for c in cases})
    with futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        existing = dict(zip(commands, pool.map(_command_exists, commands)))
        runs = out / "cases"
        runs.mkdir(exist_ok=True)
        jobs = {pool.submit(run_case, c, fixtures, runs, existing, args.keep): c for c in cases}
        done: dict[str, Result] = {}
        for fut in futures.as_completed(jobs):
            c = jobs[fut]
            try:
                r = fut.result()
            except Exception as exc:  # noqa: BLE001 - a harness error is reported, never hidden
                r = Result(c.id, c.command, c.what, "FAIL", reasons=[f"harness error: {type(exc).__name__}: {exc}"])
            done[c.id] = r
            sys.stderr.write(f"[{len(done):3d}/{len(cases)}] {r.verdict:4s} {c.id} ({r.seconds:.1f} s)\n")
    results = [done[c.id] for c in cases]
    seconds = time.monotonic() - t0
    command = (
        "PYTHONPATH=. python benchmarks/reliability_sweep.py"
        + (f" --only '{args.only}'" if args.only else "")
        + f" --jobs {args.jobs}"
    )
    table = markdown(results, seconds, command)
    sys.stdout.write(table)
    sys.stdout.write(f"\nfixtures: {t_fix:.0f} s; total {seconds:.0f} s\n")
    (out / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    if args.markdown:
        args.markdown.write_text(table)
    if tmp is not None:
        _make_writable(Path(tmp))
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        sys.stderr.write(f"results in {out / 'results.json'}; failing cases keep their folders in {out / 'cases'}\n")
    return 1 if any(r.verdict == "FAIL" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
