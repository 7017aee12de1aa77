"""Batch mode: one pipeline over 4 simulated scenes from the catalog, one of them corrupt. The other 3 finish, the
summary names the failed scene and step, a rerun skips the finished scenes, and the batch outputs equal single runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "plugins"))
from pipeline_testing import BATCH, assert_same_store, make_scenes, run_here, write  # noqa: E402


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("batch")
    make_scenes(d, 4, corrupt=2)
    return d


def test_batch_with_one_corrupt_scene(scenes, capsys, monkeypatch):
    write(scenes / "p.yaml", BATCH)
    code, out, err = run_here(capsys, monkeypatch, scenes, "run", "p.yaml", "--summary-json", "summary.json")
    assert code == 2, out + err  # the only failure is bad input: a truncated chunk, named with its store
    assert "scene_2.zarr/echo/c/" in out and "truncated" in out, out
    assert "batch: 3 of 4 entries finished, 1 failed" in out, out
    assert "FAILED scene_2 at step slc:" in out and "error in scene_2/slc (inputs raw=catalog:scene_2)" in out, out
    summary = json.loads((scenes / "summary.json").read_text())
    status = {r["key"]: r["status"] for r in summary["records"]}
    assert status == {
        "scene_1/slc": "done",
        "scene_1/quicklook": "done",
        "scene_2/slc": "failed",
        "scene_2/quicklook": "not run",
        "scene_3/slc": "done",
        "scene_3/quicklook": "done",
        "scene_4/slc": "done",
        "scene_4/quicklook": "done",
    }
    o = scenes / "out"
    for k in (1, 3, 4):
        assert (o / f"scene_{k}" / "slc.zarr.sarpipe.json").exists()
        assert (o / f"scene_{k}" / "quicklook" / "quicklook.png").exists()
    assert not (o / "scene_2" / "slc.zarr").exists() and not (o / "scene_2" / "quicklook").exists()

    # a rerun redoes only the failed scene (which fails again), the others are complete
    code, out, err = run_here(capsys, monkeypatch, scenes, "run", "p.yaml")
    assert code == 2 and "0 ran, 6 skipped, 1 failed, 1 not run" in out, out

    # the batch product of a scene equals a single run over that scene
    write(
        scenes / "single.yaml",
        """
        output_dir: single
        steps:
          - name: slc
            stage: focus
            inputs: {raw: catalog:scene_3}
        """,
    )
    code, out, err = run_here(capsys, monkeypatch, scenes, "run", "single.yaml")
    assert code == 0, out + err
    assert_same_store(scenes / "single" / "slc.zarr", o / "scene_3" / "slc.zarr")


def test_batch_plan_lists_every_entry(scenes, capsys, monkeypatch):
    write(
        scenes / "p2.yaml",
        BATCH.replace("entries: scene_*", "entries: [scene_1, scene_4]").replace("output_dir: out", "output_dir: out2"),
    )
    code, out, err = run_here(capsys, monkeypatch, scenes, "run", "p2.yaml", "--dry-run")
    assert code == 0, err
    keys = [line.split()[0] for line in out.splitlines()[2:-1]]
    assert keys == ["scene_1/slc", "scene_1/quicklook", "scene_4/slc", "scene_4/quicklook"]
    assert not (scenes / "out2").exists()
    write(
        scenes / "p3.yaml",
        BATCH.replace("entries: scene_*", "entries: lake_*").replace("output_dir: out", "output_dir: out3"),
    )
    code, out, err = run_here(capsys, monkeypatch, scenes, "run", "p3.yaml")
    assert code == 2 and "batch.entries: matches no catalog entry" in err
