"""data_catalog.yaml: sarpipe's own pydantic model (kinds, STAC-style metadata names checked in the sar:/sat:
namespaces), paths relative to the catalog file, globs for batches, fingerprints that follow the data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from sarpipe.catalog import NOT_YET, load_catalog, path_fingerprint
from sarpipe.yamlconf import ConfigError

sys.path.insert(0, str(Path(__file__).parent / "plugins"))
from pipeline_testing import REPO, line_of, write  # noqa: E402


def test_repository_catalog_is_valid():
    cat = load_catalog(REPO / "data_catalog.yaml")
    kinds = {name: e.kind for name, e in cat.entries.items()}
    assert kinds["quickstart_minisar"] == "simulated" and kinds["s1_stripmap_level0"] == "remote"
    props = cat.get("quickstart_minisar").properties.stac()
    assert (
        props["sar:instrument_mode"] == "SM"
        and props["sar:polarizations"] == ["HH"]
        and props["sar:frequency_band"] == "X"
    )
    assert cat.get("s1_stripmap_level0").query.stac()["sar:polarizations"] == ["VV", "VH"]
    assert cat.entry_path("quickstart_raw") == REPO / "runs" / "quickstart" / "raw.zarr"
    assert "remote" not in NOT_YET and "Sentinel-1 issue" in NOT_YET["safe"]


def test_problems_with_lines(tmp_path):
    path = write(
        tmp_path / "cat.yaml",
        """
        entries:
          a:
            kind: raw
            path: a.zarr
            properties: {"sar:polarisations": [HH], "sar:frequency_band": Y, "myorg:tile": 7}
          b:
            kind: remote
            provider: scihub
            query: {bbox: [10, 50, 11]}
          c:
            kind: simulated
          d:
            kind: tape
        """,
    )
    with pytest.raises(ConfigError) as exc:
        load_catalog(path)
    text = "\n".join(exc.value.problems)
    assert (
        f"cat.yaml:{line_of(path, 'polarisations')}:" in text
        and "unknown STAC field (did you mean 'sar:polarizations'?)" in text
    )
    assert "entries.a.properties.sar:frequency_band" in text
    assert "myorg:tile" not in text, "fields of other namespaces are kept"
    assert f"cat.yaml:{line_of(path, 'scihub')}:" in text and "entries.b.provider" in text
    assert "bbox needs 4 numbers" in text
    assert "exactly one of 'config'" in text
    assert f"cat.yaml:{line_of(path, 'tape')}:" in text


def test_paths_globs_and_fingerprints(tmp_path):
    sub = tmp_path / "cat"
    write(
        sub / "data_catalog.yaml",
        """
        entries:
          scene_1: {kind: raw, path: data/one.zarr}
          scene_2: {kind: raw, path: data/two.zarr}
          other: {kind: slc, path: /elsewhere/x.zarr}
          sim: {kind: simulated, config_file: sim.yaml}
        """,
    )
    (sub / "data" / "one.zarr").mkdir(parents=True)
    f = sub / "data" / "one.zarr" / "chunk"
    f.write_bytes(b"1234")
    write(sub / "sim.yaml", "sensor: {preset: minisar}\nseed: 3\n")
    cat = load_catalog(sub / "data_catalog.yaml")
    assert cat.entry_path("scene_1") == sub / "data" / "one.zarr"
    assert cat.entry_path("other") == Path("/elsewhere/x.zarr")
    assert cat.match("scene_*") == ["scene_1", "scene_2"]
    assert cat.match(["other", "scene_2", "scene_*"]) == ["scene_1", "scene_2", "other"]
    assert cat.simulation_config("sim") == {"sensor": {"preset": "minisar"}, "seed": 3}

    fp = cat.fingerprint("scene_1")
    assert fp == cat.fingerprint("scene_1") == path_fingerprint(sub / "data" / "one.zarr")
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert cat.fingerprint("scene_1") != fp, "a rewritten file changes the fingerprint"
    assert cat.fingerprint("scene_2") == "missing"
    sim_fp = cat.fingerprint("sim")
    write(sub / "sim.yaml", "sensor: {preset: minisar}\nseed: 4\n")
    assert cat.fingerprint("sim") != sim_fp, "the simulated scene follows its configuration file"
