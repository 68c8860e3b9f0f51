"""Every gallery function renders a non-blank PNG (pixel standard deviation > 0) and saves atomically."""

from pathlib import Path

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


# -- conventions every figure keeps: integer ticks on counting axes, legends off the data naming every
# dashed or dotted line ------------------------------------------------------------------------------

INTEGER_AXIS = ("generation", "order m", "principal component")
SOLID = ("-", "solid", "None", "none", "", " ")


def _legend_texts(fig, ax):
    legends = [ax.get_legend()] + list(fig.legends)
    return {t.get_text() for leg in legends if leg is not None for t in leg.get_texts()}


def _check_conventions(fig, n_integer_axes):
    """Integer tick locations on every counting x axis (``n_integer_axes`` of them), every non-solid line
    labelled in its legend, and every legend clear of its axes (so of the data)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    integer_axes = 0
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        if any(word in ax.get_xlabel() for word in INTEGER_AXIS):
            integer_axes += 1
            lo, hi = sorted(ax.get_xlim())
            ticks = np.asarray([t for t in ax.get_xticks() if lo <= t <= hi])
            assert ticks.size >= 2, (ax.get_xlabel(), ticks)
            np.testing.assert_array_equal(ticks, np.round(ticks), err_msg=ax.get_xlabel())
        texts = _legend_texts(fig, ax)
        for line in ax.get_lines():
            if line.get_linestyle() not in SOLID:
                label = line.get_label()
                assert not label.startswith("_") and label in texts, (ax.get_title(), line.get_linestyle(), label)
        leg = ax.get_legend()
        if leg is not None:
            assert not leg.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer)), ax.get_title()
    assert integer_axes == n_integer_axes


def test_rate_and_density_figures_keep_the_conventions(bimodal):
    from hermite_limit.checks._figures import density_figure, rate_figure

    _check_conventions(rate_figure(np.array([1.0, 0.4, 0.17, 0.06]), 0.4, "rate", "W2"), 1)
    lim = hl.limit_distribution(bimodal, 0.5, 0.1)
    _check_conventions(density_figure([(bimodal, "data"), (lim, "limit")], "densities"), 0)


def test_gallery_keeps_the_conventions(bimodal):
    from hermite_limit.trajectory import trajectory

    alpha, t0 = 0.5, 0.1
    lim = hl.limit_distribution(bimodal, alpha, t0)
    _check_conventions(plots.attenuation_plot([0.1, 0.5], [0.05, 0.2], max_order=3), 1)
    _check_conventions(plots.energy_spectra_plot(bimodal, lim, 3), 1)
    err = np.abs(np.random.default_rng(0).normal(size=(4, 2))) + 0.1
    _check_conventions(plots.mode_error_plot(err, [0.5, 0.2], modes=[1, 3]), 1)
    _check_conventions(plots.densities_1d(bimodal, {2: hl.generation(bimodal, alpha, t0, 2)}, lim), 0)
    _check_conventions(plots.law_panel([(bimodal, "data"), (lim, "limit")]), 0)
    _check_conventions(plots.schedule_comparison(bimodal, 0.3, {"constant": 0.2, "harmonic": hl.harmonic(0.2)}, 3, [1, 4]), 1)
    _check_conventions(plots.contribution_heatmap(plots.discounted_contributions([0.1, 0.5], 4), [0.1, 0.5]), 1)
    _check_conventions(trajectory(bimodal, alpha, t0, 3).figure(), 1)


@pytest.mark.parametrize("dim", [1, 2])
def test_forecast_figure_keeps_the_conventions_and_drops_the_pc_panel_in_1d(dim):
    from hermite_limit.forecast import forecast

    data = hl.datasets.preset("bimodal-1d" if dim == 1 else "ring-2d")
    fig = forecast(data, 0.5, 0.1, 3, 0.05, order=4).figure()
    titles = [ax.get_title() for ax in fig.axes]
    pc_panels = [t for t in titles if "directions" in t]
    assert len(pc_panels) == (dim > 1) and len(fig.axes) == 3 + (dim > 1)
    assert [t[:3] for t in titles] == ["(a)", "(b)", "(c)", "(d)"][: len(titles)]
    # counting axes: orders (a), generations (b), (d); principal components (c) when drawn
    _check_conventions(fig, 3 + (dim > 1))


def test_generations_png_title_names_data_alpha_and_t0(monkeypatch, tmp_path, run_cli):
    from hermite_limit import _io

    saved = {}
    real = _io.save_figure_atomic
    monkeypatch.setattr(_io, "save_figure_atomic", lambda fig, path, **kw: (saved.__setitem__(Path(path).name, fig), real(fig, path, **kw))[1])
    code, out, err = run_cli("generations", "--preset", "bimodal-1d", "--alpha", "0.3", "--t0", "0.05", "--generations", "3",
                             "--out", str(tmp_path / "g"))
    assert code == 0, err
    title = saved["generations.png"].axes[0].get_title()
    assert "bimodal-1d" in title and "alpha=0.3" in title and "t0=0.05" in title


def test_drawing_keeps_the_callers_matplotlib_backend(tmp_path):
    """A caller's backend (here the vector ``pdf`` backend, as a notebook's ``inline`` would be) survives
    every figure path: the gallery and the checks' figures never choose a backend."""
    import os
    import subprocess
    import sys

    code = (
        "import matplotlib\n"
        "import numpy as np, hermite_limit as hl\n"
        "from hermite_limit import plots\n"
        "from hermite_limit.checks._figures import rate_figure\n"
        "plots.attenuation_plot([0.5], [0.1], max_order=5, path='a.png')\n"
        "rate_figure(np.array([1.0, 0.5]), 0.5, 't', 'y')\n"
        "print(matplotlib.get_backend())\n"
    )
    env = {**os.environ, "MPLBACKEND": "pdf"}  # the caller's choice of backend
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "pdf"
    assert (tmp_path / "a.png").stat().st_size > 2000


def test_check_figures_keep_the_conventions(bimodal):
    """The figures the verify checks draw follow the gallery's conventions (cheap checks drawn here)."""
    from hermite_limit.checks import check_annealed_schedules, check_mode_rates

    _check_conventions(check_mode_rates(bimodal, 0.5, 0.1).figure, 1)
    _check_conventions(check_annealed_schedules(bimodal, 0.5, 0.1, n_asymptotic=2000).figure, 1)  # log axis: decades
