"""Every notebook executes top to bottom (nbclient), each in about 10 s, in the default suite."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _execute(path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


def test_all_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == ["01_quickstart", "02_spectral_attenuation", "03_verifying_theorems",
                                          "04_annealed_schedules", "05_real_images", "07_diagnose"]


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in NOTEBOOKS])
def test_notebook_executes(path):
    _execute(path)
