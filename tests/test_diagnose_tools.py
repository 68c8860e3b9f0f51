"""Forecast, inverse filter and schedule design of hl.diagnose, against the library's exact laws."""

import math

import jax
import numpy as np
import pytest

import hermite_limit as hl
from hermite_limit._diagnose._forecast import forecast_from_fit
from hermite_limit._diagnose._schedule_design import schedule_cost
from hermite_limit.forecast import _factors, relative_spectral_error

from helpers import bimodal_1d


def test_forecast_points_match_exact_laws():
    data = bimodal_1d()
    alpha, t0, order = 0.3, 0.2, 6
    b = np.asarray(hl.hermite_coefficients(data, order).values)[1:]
    mo = np.arange(1, order + 1)
    fc = forecast_from_fit(alpha, t0, np.diag([1e-6, 1e-8]), b, np.eye(order) * 1e-12, mo, order, horizon=40,
                           within=0.01, n_observed=3, key=jax.random.key(0), n_draws=200)
    lim = hl.limit_distribution(data, alpha, t0, tol=1e-14)
    a_lim = np.asarray(hl.hermite_coefficients(lim, order).values)
    np.testing.assert_allclose(fc.limit_energies[1:], a_lim[1:] ** 2, rtol=1e-8)
    np.testing.assert_allclose(fc.loss, 1 - np.asarray(hl.attenuation(np.arange(order + 1), alpha, t0)), atol=1e-14)
    for k in (1, 4, 9):
        a_k = np.asarray(hl.hermite_coefficients(hl.generation(data, alpha, t0, k), order).values)
        D = np.linalg.norm(a_k[1:] - a_lim[1:]) / np.linalg.norm(b - a_lim[1:])
        assert fc.distance[k] == pytest.approx(D, rel=1e-8)
    k = fc.generations_to_within
    assert fc.distance[k] <= 0.01 < fc.distance[k - 1]
    assert fc.remaining_after_observed == k - 3
    lo, hi = fc.generations_to_within_interval
    assert lo <= k <= hi
    assert np.all(fc.limit_energies_interval[0] <= fc.limit_energies + 1e-12)
    assert np.all(fc.limit_energies <= fc.limit_energies_interval[1] + 1e-12)


def test_forecast_interval_widens_with_parameter_uncertainty():
    b = np.array([0.5, 1.2, -0.3, 0.2])
    mo = np.arange(1, 5)
    widths = []
    for s in (1e-4, 1e-2):
        fc = forecast_from_fit(0.4, 0.1, np.diag([s**2, (s / 4) ** 2]), b, np.eye(4) * 1e-10, mo, 4, horizon=30,
                               within=0.05, n_observed=5, key=jax.random.key(1), n_draws=1000)
        widths.append(np.diff(fc.loss_interval, axis=0)[0, 1:])
        # delta-method check of the loss interval half-width for order m: 1.96 * |dlambda/dtheta| sd
    assert np.all(widths[1] > 20 * widths[0])
    lam = lambda a, t: np.asarray(hl.attenuation(np.arange(5), a, t))
    h = 1e-6
    g = np.stack([(lam(0.4 + h, 0.1) - lam(0.4 - h, 0.1)) / (2 * h), (lam(0.4, 0.1 + h) - lam(0.4, 0.1 - h)) / (2 * h)], 1)
    sd = np.sqrt(g[:, 0] ** 2 * 1e-4 + g[:, 1] ** 2 * (1e-2 / 4) ** 2)
    np.testing.assert_allclose(widths[1], 2 * 1.96 * sd[1:], rtol=0.12)


def test_inverse_filter_recovers_the_data_from_the_limit():
    data = bimodal_1d()
    alpha, t0, order = 0.5, 0.1, 12
    lim = hl.limit_distribution(data, alpha, t0, tol=1e-12)
    x = np.asarray(lim.sample(jax.random.key(3), 200_000))
    inv = hl.invert_filter(x, alpha, t0, order=order)
    exact = np.asarray(hl.hermite_coefficients(data, order).values)[1:]
    top = inv.highest_informative_order
    assert 3 <= top < order  # it recovers something and says where it stops
    z = (inv.values - exact) / inv.errors
    assert np.all(np.abs(z[:top]) < 3.5), z[:top]
    # errors are the sample standard errors amplified by 1 / lambda_m
    lam = np.asarray(hl.attenuation(np.arange(order + 1), alpha, t0))
    se = np.asarray(hl.hermite_coefficients(x, order, method="samples").errors)[1:]
    np.testing.assert_allclose(inv.errors, se / lam[1:], rtol=1e-6)
    # beyond the informative order the recovered energy is within the noise
    assert not inv.informative[order - 1]


def _check_design(ds, t_min, T):
    assert np.all(ds.times >= t_min * (1 - 1e-12)) and np.all(ds.times <= T * (1 + 1e-12))
    assert ds.cost <= ds.budget + 1e-9
    assert schedule_cost(ds.times, T) == pytest.approx(ds.cost)
    for fam in ds.families.values():
        assert fam["cost"] == pytest.approx(ds.budget, rel=1e-10)
        assert ds.error < fam["error"]


@pytest.mark.parametrize("case", ["bimodal", "gmm10"])
def test_designed_schedule_beats_every_family_at_equal_cost(case):
    if case == "bimodal":
        data, alpha, N, order, t0 = bimodal_1d(), 0.3, 20, 12, 0.1
    else:
        data, alpha, N, order, t0 = hl.datasets.preset("seed-gmm10"), 0.5, 20, 4, 0.05
    ds = hl.design_schedule(data, alpha, N, t0=t0, t_min=2e-3, order=order)
    _check_design(ds, 2e-3, 1.0)
    assert ds.improvement > 1.05, ds.improvement
    # the reported error is the forecast module's numpy measure of the designed times
    from hermite_limit._diagnose._schedule_design import _energies

    E = _energies(data, order)
    assert ds.error == pytest.approx(relative_spectral_error(_factors(alpha, ds.times, order)[-1], E), rel=1e-10)
    # a tighter budget is respected too
    tight = hl.design_schedule(data, alpha, N, budget=0.5 * ds.budget, t_min=2e-3, order=order)
    _check_design(tight, 2e-3, 1.0)
    assert tight.error >= ds.error


def test_design_bad_input():
    with pytest.raises(ValueError, match="budget"):
        hl.design_schedule(bimodal_1d(), 0.3, 5)
    with pytest.raises(ValueError, match="budget"):
        hl.design_schedule(bimodal_1d(), 0.3, 5, budget=1e6, t_min=1e-3)
    with pytest.raises(ValueError, match="alpha"):
        hl.design_schedule(bimodal_1d(), 0.0, 5, t0=0.1)
    with pytest.raises(ValueError, match="t_min"):
        hl.design_schedule(bimodal_1d(), 0.3, 5, t0=0.1, t_min=-1.0)
