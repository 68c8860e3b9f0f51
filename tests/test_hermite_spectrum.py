"""Energy spectra without enumeration vs enumerated sums; U-statistic within its error."""

import numpy as np
import pytest
from helpers import random_mixture

import hermite_limit as hl


@pytest.mark.parametrize("cov_type", ["iso", "diag", "full"])
@pytest.mark.parametrize("d", [2, 3])
def test_exact_spectrum_equals_enumerated_sum(cov_type, d):
    gm = random_mixture(np.random.default_rng(10 * d), 3, d, cov_type, spread=1.2)
    enum = np.asarray(hl.hermite_coefficients(gm, 6).energies())
    s = hl.energy_spectrum(gm, 6)
    assert s.method == "exact" and s.energies.dtype == np.float64
    np.testing.assert_allclose(np.asarray(s.energies), enum, rtol=1e-11)
    assert np.all(np.abs(np.asarray(s.energies) - enum) <= np.asarray(s.errors) + 1e-15 * enum)
    assert float(s.chi2()) == pytest.approx(enum[1:].sum(), rel=1e-11)


def test_spectrum_of_point_masses_is_v_statistic():
    x = np.random.default_rng(1).normal(size=(30, 3)) + 0.4
    enum = np.asarray(hl.hermite_coefficients(x, 6, method="exact").energies())
    np.testing.assert_allclose(np.asarray(hl.energy_spectrum(hl.empirical(x), 6).energies), enum, rtol=1e-11)
    np.testing.assert_allclose(np.asarray(hl.energy_spectrum(x, 6, method="exact").energies), enum, rtol=1e-11)


def test_spectrum_closed_forms_high_dimension():
    # N(mu, s I) in d = 2000: product law, sum_m E_m r^m = prod_j g_j(r), checked on closed forms.
    d, s2 = 2000, 0.8
    mu = np.zeros(d)
    mu[:3] = [0.5, -0.2, 0.1]
    gm = hl.GaussianMixture([1.0], mu[None], [s2])
    e = np.asarray(hl.energy_spectrum(gm, 4).energies)
    b = s2 - 1
    q = mu @ mu
    # E_1 = |mu|^2; E_2 = |mu|^4/2 + d b^2/2 + b |mu|^2 ... from log G = r q + r^2 (d b^2/2 + b q) + ...
    l1, l2 = q, d * b * b / 2 + b * q
    np.testing.assert_allclose(e[:3], [1.0, l1, l1**2 / 2 + l2], rtol=1e-12)
    # diagonal covariances agree with the isotropic path
    e_diag = np.asarray(hl.energy_spectrum(gm.as_cov_type("diag"), 4).energies)
    np.testing.assert_allclose(e_diag, e, rtol=1e-12)


def test_ustatistic_within_standard_error(getkey):
    gm = random_mixture(np.random.default_rng(2), 2, 20, "iso", spread=0.3)
    exact = np.asarray(hl.energy_spectrum(gm, 4).energies)
    x = gm.sample(getkey(), 2000)
    u = hl.energy_spectrum(x, 4)
    assert u.method == "samples"
    err = np.asarray(u.errors)
    assert np.all(np.abs(np.asarray(u.energies) - exact) <= 4 * err + 1e-12)
    assert np.all(err[1:] > 0)


def test_ustatistic_in_two_dimensions_matches_enumerated_u_statistic():
    x = np.random.default_rng(4).normal(size=(40, 2))
    idx = hl.graded_indices(5, 2)
    H = np.asarray(hl.hermite_products(x, idx))  # (N, M)
    orders = idx.sum(1)
    N = x.shape[0]
    ref = []
    for m in range(6):
        Hm = H[:, orders == m]
        Km = Hm @ Hm.T
        ref.append((Km.sum() - np.trace(Km)) / (N * (N - 1)))
    np.testing.assert_allclose(np.asarray(hl.energy_spectrum(x, 5).energies), ref, rtol=1e-10, atol=1e-13)


def test_bad_inputs():
    gm = random_mixture(np.random.default_rng(0), 2, 2, "iso")
    with pytest.raises(ValueError, match="order"):
        hl.energy_spectrum(gm, -1)
    with pytest.raises(ValueError, match="order"):
        hl.energy_spectrum(gm, 10_000)
    with pytest.raises(ValueError, match="method"):
        hl.energy_spectrum(gm, 3, method="fft")
    with pytest.raises(ValueError, match="dist"):
        hl.energy_spectrum(np.array([[np.inf, 0.0]] * 4), 3)
    with pytest.raises(ValueError, match="dist"):
        hl.energy_spectrum(gm, 3, method="samples")
    with pytest.raises(ValueError, match="order"):
        K, d = 20, 600  # built unchecked (validating 20 600x600 covariances is slow)
        big = hl.GaussianMixture.tree_unflatten(None, (np.full(K, 1 / K), np.zeros((K, d)), np.broadcast_to(np.eye(d), (K, d, d))))
        hl.energy_spectrum(big, 20)
