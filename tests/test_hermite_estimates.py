"""Quadrature (tensor Gauss-Hermite, RQMC) and sample estimates agree with exact coefficients
within their own stated errors."""

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import bimodal_1d, random_mixture

import hermite_limit as hl


@pytest.mark.parametrize("d", [1, 2, 3])
def test_quadrature_within_stated_error(d):
    gm = bimodal_1d() if d == 1 else random_mixture(np.random.default_rng(d), 2, d, "full", spread=1.0)
    order = {1: 30, 2: 10, 3: 6}[d]
    ex = hl.hermite_coefficients(gm, order)
    q = hl.hermite_coefficients(gm, order, method="quadrature")
    assert q.method == "quadrature"
    diff = np.abs(np.asarray(q.values) - np.asarray(ex.values))
    assert np.all(diff <= 4 * np.asarray(q.errors) + 1e-13)
    assert np.max(diff) < {1: 1e-9, 2: 1e-8, 3: 1e-5}[d]


def test_quadrature_of_a_function_and_pdf():
    gm = bimodal_1d()
    ex = np.asarray(hl.hermite_coefficients(gm, 20).values)
    f = hl.hermite_coefficients(lambda x: gm.logpdf(x), 20, dim=1)  # pilot finds mean/cov
    assert np.all(np.abs(np.asarray(f.values) - ex) <= 4 * np.asarray(f.errors) + 1e-13)
    g = hl.hermite_coefficients(lambda x: jnp.exp(gm.logpdf(x)), 20, dim=1, log_density=False,
                                mean=[0.0], cov=[[3.0]], scale=1.2)
    assert np.all(np.abs(np.asarray(g.values) - ex) <= 4 * np.asarray(g.errors) + 1e-13)


def test_rqmc_beyond_three_dimensions():
    gm = random_mixture(np.random.default_rng(11), 2, 5, "diag", spread=0.6)
    ex = np.asarray(hl.hermite_coefficients(gm, 2).values)
    q = hl.hermite_coefficients(gm, 2, method="quadrature", log2_points=10, n_random=24, seed=3)
    err = np.asarray(q.errors)
    assert np.all(np.abs(np.asarray(q.values) - ex) <= 4 * err + 1e-12)
    assert err[1:].max() < 0.05


def test_samples_within_standard_error(getkey):
    gm = random_mixture(np.random.default_rng(5), 2, 2, "diag", spread=1.0)
    ex = np.asarray(hl.hermite_coefficients(gm, 4).values)
    s = hl.hermite_coefficients(gm, 4, method="samples", key=getkey(), n_samples=20_000)
    err = np.asarray(s.errors)
    assert s.method == "samples" and err[0] < 1e-7  # sqrt of a rounding-level variance
    z = np.abs(np.asarray(s.values) - ex)[1:] / err[1:]
    assert np.all(z <= 4.5)  # 14 coefficients; 4.5 standard errors
    x = np.asarray(gm.sample(getkey(), 1000))
    s2 = hl.hermite_coefficients(x, 3)  # array -> samples
    assert s2.method == "samples"
    np.testing.assert_allclose(np.asarray(s2.values), np.asarray(hl.hermite_products(x, s2.indices)).mean(0), rtol=1e-12, atol=1e-14)
