"""Every notebook executes top to bottom (nbclient), each in about 10 s, in the default suite, and every
cell that plots shows its figure: as stored in the repository and again after re-execution.

The figure test guards the rule that the library never chooses a matplotlib backend: a library calling
choosing the Agg backend overrides ``%matplotlib inline`` and every later figure of the session vanishes.
"""

import inspect
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from hermite_limit import plots

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# functions of hermite_limit.plots that compute numbers instead of drawing
NOT_DRAWING = {"energies_of", "discounted_contributions"}
DRAWING = sorted(name for name, f in vars(plots).items() if inspect.isfunction(f) and f.__module__ == plots.__name__
                 and not name.startswith("_") and name not in NOT_DRAWING)
PLOTTING_CALL = re.compile(r"\bplots\.(?:" + "|".join(DRAWING) + r")\s*\(|\bplt\.\w+\s*\(|\bhl\.plots\.\w+\s*\(|\.figure\b")


def _plotting_cells(nb):
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code" and PLOTTING_CALL.search(c.source)]


def _cells_without_image(nb):
    return [(i, c.source.splitlines()[0]) for i, c in _plotting_cells(nb)
            if not any("image/png" in o.get("data", {}) for o in c.get("outputs", []))]


def _execute(path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    return nb


def test_all_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == ["01_quickstart", "02_spectral_attenuation", "03_verifying_theorems",
                                          "04_annealed_schedules", "05_real_images", "06_learned_models", "07_diagnose"]


def test_plotting_cells_are_recognised():
    assert {"attenuation_plot", "densities_1d", "forecast_figure", "image_grid", "pc_panels"} <= set(DRAWING)
    assert PLOTTING_CALL.search("plots.densities_1d(data, gens, lim);")
    assert PLOTTING_CALL.search("fc.figure();") and PLOTTING_CALL.search("records[1].figure")
    assert not PLOTTING_CALL.search("M = plots.discounted_contributions([0.1], 20)")
    assert not PLOTTING_CALL.search("print(hl.attenuation(3, 0.5, 0.1))")


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in NOTEBOOKS])
def test_stored_notebook_shows_every_figure(path):
    nb = nbformat.read(path, as_version=4)
    assert _plotting_cells(nb), f"{path.name} draws nothing"
    assert _cells_without_image(nb) == [], f"{path.name}: plotting cells stored without an image"


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in NOTEBOOKS])
def test_notebook_executes_and_shows_every_figure(path, monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel starts as a user's would
    nb = _execute(path)
    assert _plotting_cells(nb)
    assert _cells_without_image(nb) == [], f"{path.name}: plotting cells without an image after execution"
