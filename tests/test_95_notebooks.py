"""The notebooks in notebooks/ run top to bottom (nbclient, a fresh kernel each) and are committed without outputs.

Each notebook asserts its own results in its cells (every method improves the image; the pipeline has no failed
step), so an execution failure here is a failed check, not only a crash. Notebooks that read the shared real data
skip with the reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHARED = Path(os.environ.get("SARPIPE_SHARED_DATA", ROOT.parent / "shared" / "data"))
#: notebooks that need ../shared/data (the real Sentinel-1 crop)
NEEDS_SHARED = {"01_explore_sentinel1.ipynb"}

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


def test_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    assert {"02_rfi_methods.ipynb", "03_pipeline_on_a_cluster.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    if path.name in NEEDS_SHARED and not SHARED.is_dir():
        pytest.skip(f"{path.name} reads the real data in {SHARED}, which is absent")
    monkeypatch.setenv("SARPIPE_SHARED_DATA", str(SHARED))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == "error"]
    assert not errors
