"""Every gallery function renders a non-blank PNG (pixel standard deviation > 0) and saves atomically."""

import numpy as np
import pytest
from PIL import Image

import hermite_limit as hl
from hermite_limit import plots


def _check_png(path):
    assert path.exists() and path.stat().st_size > 2000
    px = np.asarray(Image.open(path).convert("L"), dtype=float)
    assert px.std() > 0
    assert not list(path.parent.glob(".*"))  # no temporary file left behind


@pytest.fixture(scope="module")
def bimodal():
    return hl.datasets.preset("bimodal-1d")


def test_attenuation_plot(tmp_path):
    fig = plots.attenuation_plot([0.1, 0.5], [0.05, 0.2], max_order=40, path=tmp_path / "a.png")
    _check_png(tmp_path / "a.png")
    assert fig.axes[0].get_yscale() == "log"


def test_energy_spectra_plot_small_and_large_d(tmp_path, bimodal):
    lim = hl.limit_distribution(bimodal, 0.5, 0.1)
    plots.energy_spectra_plot(bimodal, lim, 10, path=tmp_path / "e1.png")
    _check_png(tmp_path / "e1.png")
    gm = hl.datasets.preset("seed-gmm10")
    plots.energy_spectra_plot(gm, [("limit", hl.limit_distribution(gm, 0.5, 0.3, tol=1e-6))], 6, path=tmp_path / "e2.png")
    _check_png(tmp_path / "e2.png")


def test_energies_of_matches_both_engines(bimodal):
    e = plots.energies_of(bimodal, 8)
    np.testing.assert_allclose(e, np.asarray(hl.energy_spectrum(bimodal, 8).energies), rtol=1e-10, atol=1e-12)


def test_mode_error_plot(tmp_path, bimodal):
    alpha, t0, n = 0.5, 0.1, 12
    lim = np.asarray(hl.hermite_coefficients(hl.limit_distribution(bimodal, alpha, t0), 6).values)
    modes = [1, 3, 6]
    err = np.array([np.abs(np.asarray(hl.hermite_coefficients(hl.generation(bimodal, alpha, t0, k), 6).values) - lim)[modes]
                    for k in range(n + 1)])
    rates = np.asarray(hl.contraction_rate(np.array(modes, float), alpha, t0))
    plots.mode_error_plot(err, rates, modes=modes, path=tmp_path / "m.png")
    _check_png(tmp_path / "m.png")
    with pytest.raises(ValueError, match="rates must have one entry per mode"):
        plots.mode_error_plot(err, rates[:2])


def test_densities_1d(tmp_path, bimodal):
    gens = {k: hl.generation(bimodal, 0.5, 0.1, k) for k in (1, 5)}
    plots.densities_1d(bimodal, gens, hl.limit_distribution(bimodal, 0.5, 0.1), path=tmp_path / "d.png")
    _check_png(tmp_path / "d.png")


@pytest.mark.parametrize("kind", ["contour", "samples"])
def test_panel_2d(tmp_path, kind):
    ring = hl.datasets.preset("ring-2d")
    plots.panel_2d([(ring, "data"), (hl.limit_distribution(ring, 0.5, 0.1), "limit")], kind=kind, path=tmp_path / "p.png")
    _check_png(tmp_path / "p.png")
    with pytest.raises(ValueError, match="dimension >= 2"):
        plots.panel_2d([(hl.datasets.preset("bimodal-1d"), "x")])


def test_pc_panels(tmp_path, getkey):
    gm = hl.datasets.preset("seed-gmm10")
    x = np.asarray(gm.sample(getkey(), 500))
    samples = {a: {g: np.asarray(hl.generation(gm, a, 0.1, g).sample(getkey(), 300)) for g in (0, 10, 20)} for a in (0.1, 0.9)}
    fig = plots.pc_panels(samples, x, path=tmp_path / "pc.png")
    _check_png(tmp_path / "pc.png")
    assert len(fig.axes) == 6


def test_contribution_heatmap(tmp_path):
    M = plots.discounted_contributions([0.1, 0.5, 0.9], 20)
    assert M[1, -1] == 1.0 and M[1, -2] == pytest.approx(0.25)
    plots.contribution_heatmap(M, [0.1, 0.5, 0.9], path=tmp_path / "h.png")
    _check_png(tmp_path / "h.png")


def test_schedule_comparison(tmp_path, bimodal):
    sch = {"constant": hl.constant(0.2), "harmonic": hl.harmonic(0.2), "geometric 0.8": hl.geometric(0.2, 0.8)}
    plots.schedule_comparison(bimodal, 0.3, sch, 15, [1, 4], path=tmp_path / "s.png")
    _check_png(tmp_path / "s.png")


@pytest.mark.parametrize("shape", [(8, 8), (3, 32, 32)])
def test_image_grid(tmp_path, shape):
    rng = np.random.default_rng(0)
    size = int(np.prod(shape))
    rows = {"data": rng.uniform(-1, 1, (6, size)), "generation 5": rng.uniform(-1, 1, (6, size))}
    plots.image_grid(rows, shape, path=tmp_path / "g.png")
    _check_png(tmp_path / "g.png")
    plots.image_grid(rng.uniform(-1, 1, (8, size)), shape, rows=["a", "b"], n_cols=4, path=tmp_path / "g2.png")
    _check_png(tmp_path / "g2.png")
    with pytest.raises(ValueError, match="must have shape"):
        plots.image_grid({"x": np.zeros((2, 5))}, shape)


def test_forecast_figure(tmp_path, bimodal):
    from hermite_limit.forecast import forecast

    forecast(bimodal, 0.5, 0.1, 5, 0.05, order=6).figure(path=tmp_path / "f.png")
    _check_png(tmp_path / "f.png")
