"""Divergences against independent references (scipy quadrature, root finding, closed forms)."""

import math

import numpy as np
import pytest
from scipy import integrate, optimize, stats

import hermite_limit as hl
from helpers import bimodal_1d, random_mixture


def scipy_pdf(gm):
    w, m, S = np.asarray(gm.weights), np.asarray(gm.means), np.asarray(gm.full_covs())
    comps = [stats.multivariate_normal(m[k], S[k]) for k in range(len(w))]
    return lambda *x: sum(wk * c.pdf(np.array(x)) for wk, c in zip(w, comps))


def scipy_w2_1d(p, q):
    """Reference W2 by brentq quantiles and adaptive quadrature in u."""
    def cdf(gm):
        w, m, s = np.asarray(gm.weights), np.asarray(gm.means)[:, 0], np.sqrt(np.asarray(gm.full_covs())[:, 0, 0])
        return lambda x: float(np.sum(w * stats.norm.cdf(x, m, s)))

    F, G = cdf(p), cdf(q)
    quantile = lambda C, u: optimize.brentq(lambda x: C(x) - u, -60, 60, xtol=1e-14, rtol=1e-15)
    val, err = integrate.quad(lambda u: (quantile(F, u) - quantile(G, u)) ** 2, 0, 1, limit=200, epsabs=1e-13)
    return math.sqrt(val)


def test_gaussian_closed_forms_1d_against_quadrature():
    m0, s0, m1, s1 = 0.3, 0.8, -0.5, 1.3
    p, q = stats.norm(m0, s0), stats.norm(m1, s1)
    kl_ref = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), -30, 30, epsabs=1e-14)[0]
    chi_ref = integrate.quad(lambda x: (p.pdf(x) - q.pdf(x)) ** 2 / q.pdf(x), -30, 30, epsabs=1e-14)[0]
    assert hl.gaussian_kl([m0], [[s0**2]], [m1], [[s1**2]]) == pytest.approx(kl_ref, rel=1e-10)
    assert hl.gaussian_chi2([m0], [[s0**2]], [m1], [[s1**2]]) == pytest.approx(chi_ref, rel=1e-9)
    assert hl.gaussian_w2([m0], [[s0**2]], [m1], [[s1**2]]) == pytest.approx(math.hypot(m0 - m1, s0 - s1), rel=1e-13)
    # chi2 is infinite when the tails of q are too light: 2/s0^2 - 1/s1^2 <= 0
    assert hl.gaussian_chi2([0.0], [[4.0]], [0.0], [[1.0]]) == math.inf


def test_gaussian_closed_forms_2d():
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((2, 2, 2))
    S0, S1 = A @ A.T + np.eye(2), B @ B.T + 2 * np.eye(2)
    m0, m1 = rng.standard_normal((2, 2))
    p, q = stats.multivariate_normal(m0, S0), stats.multivariate_normal(m1, S1)
    box = [[-15, 15], [-15, 15]]
    kl_ref = integrate.nquad(lambda x, y: p.pdf([x, y]) * (p.logpdf([x, y]) - q.logpdf([x, y])), box, opts={"epsabs": 1e-11})[0]
    chi_ref = integrate.nquad(lambda x, y: (p.pdf([x, y]) - q.pdf([x, y])) ** 2 / q.pdf([x, y]), box, opts={"epsabs": 1e-11})[0]
    assert hl.gaussian_kl(m0, S0, m1, S1) == pytest.approx(kl_ref, rel=1e-8)
    assert hl.gaussian_chi2(m0, S0, m1, S1) == pytest.approx(chi_ref, rel=1e-8)
    # W2 for commuting covariances: sqrt(|dm|^2 + sum (sqrt(l0) - sqrt(l1))^2)
    D0, D1 = np.diag([1.0, 4.0]), np.diag([9.0, 0.25])
    assert hl.gaussian_w2(m0, D0, m1, D1) == pytest.approx(math.sqrt(np.sum((m0 - m1) ** 2) + 4 + 2.25), rel=1e-13)


def test_w2_1d_against_scipy_reference():
    p = bimodal_1d()
    q = hl.GaussianMixture([0.5, 0.2, 0.3], [[0.0], [3.0], [-1.0]], [1.0, 0.3, 2.0])
    est = hl.w2_1d(p, q)
    ref = scipy_w2_1d(p, q)
    assert abs(est.value - ref) <= max(est.error, 1e-9)
    assert est.value == pytest.approx(ref, rel=1e-7)
    # tiny distances keep their precision: a shift by 1e-7 has W2 exactly 1e-7
    shifted = hl.GaussianMixture(p.weights, np.asarray(p.means) + 1e-7, p.covs)
    small = hl.w2_1d(p, shifted)
    assert abs(small.value - 1e-7) <= small.error + 1e-15


def test_w2_1d_discrete_and_mixed():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal(40), rng.standard_normal(40) + 0.3
    ref = math.sqrt(np.mean((np.sort(x) - np.sort(y)) ** 2))
    assert hl.w2_1d(hl.empirical(x), hl.empirical(y)).value == pytest.approx(ref, rel=1e-13)
    # point mass vs Gaussian: W2^2 = (x0 - m)^2 + s^2
    est = hl.w2_1d(hl.empirical([0.5]), hl.GaussianMixture([1.0], [[2.0]], [0.49]))
    assert est.value == pytest.approx(math.sqrt(1.5**2 + 0.49), rel=1e-10)


@pytest.mark.parametrize("kind", ["tv", "kl", "chi2"])
def test_quadrature_divergences_1d(kind):
    p, q = bimodal_1d(), hl.ou_push(bimodal_1d(), 0.3)
    fp, fq = scipy_pdf(p), scipy_pdf(q)
    integrand = {
        "tv": lambda x: 0.5 * abs(fp(x) - fq(x)),
        "kl": lambda x: fp(x) * math.log(fp(x) / fq(x)),
        "chi2": lambda x: (fp(x) - fq(x)) ** 2 / fq(x),
    }[kind]
    ref, ref_err = integrate.quad(integrand, -12, 12, limit=500, epsabs=1e-13, epsrel=1e-12)
    est = {"tv": hl.tv_distance, "kl": hl.kl_divergence, "chi2": hl.chi2_divergence}[kind](p, q)
    assert abs(est.value - ref) <= est.error + ref_err + 1e-12
    assert est.error < 1e-3 * est.value  # and the error estimate is useful, not vacuous


def test_quadrature_divergences_2d():
    rng = np.random.default_rng(5)
    p = random_mixture(rng, 2, 2, "full", spread=1.0)
    q = hl.ou_push(p, 0.2)
    fp, fq = scipy_pdf(p), scipy_pdf(q)
    lo, hi = -9, 9
    kl_ref, kl_err = integrate.nquad(lambda x, y: fp(x, y) * math.log(fp(x, y) / fq(x, y)), [[lo, hi]] * 2, opts={"epsabs": 1e-10})
    est = hl.kl_divergence(p, q)
    assert abs(est.value - kl_ref) <= est.error + kl_err + 1e-9
    # a Gaussian pair: quadrature agrees with the closed form
    g0 = hl.GaussianMixture([1.0], [[0.2, -0.1]], [[[1.0, 0.3], [0.3, 0.8]]])
    g1 = hl.ou_push(g0, 0.4)
    exact = hl.gaussian_chi2(g0.means[0], g0.covs[0], g1.means[0], g1.covs[0])
    est = hl.chi2_divergence(g0, g1)
    assert abs(est.value - exact) <= est.error + 1e-12


def test_bad_divergence_inputs():
    p = bimodal_1d()
    with pytest.raises(ValueError, match="one-dimensional"):
        hl.w2_1d(hl.standard_normal(2), p)
    with pytest.raises(ValueError, match="d <= 2"):
        hl.tv_distance(hl.standard_normal(3), hl.standard_normal(3))
    with pytest.raises(ValueError, match="same dimension"):
        hl.kl_divergence(hl.standard_normal(2), p)
    with pytest.raises(ValueError, match="no density"):
        hl.chi2_divergence(hl.empirical([0.0, 1.0]), p)
    with pytest.raises(ValueError, match="S1 must be positive definite"):
        hl.gaussian_kl([0.0], [[1.0]], [0.0], [[0.0]])
    with pytest.raises(ValueError, match="m1 has dimension"):
        hl.gaussian_w2([0.0], [[1.0]], [0.0, 1.0], np.eye(2))


def test_w2_1d_refuses_panel_counts_beyond_its_limit_before_any_work():
    import time

    from hermite_limit.divergences._wasserstein_1d import MAX_PANELS

    gm = hl.GaussianMixture([0.5, 0.5], [[-1.0], [1.0]], [0.3, 0.5])
    lim = hl.limit_distribution(gm, 0.5, 0.1)
    start = time.perf_counter()
    for bad in (10**9, MAX_PANELS + 1):
        with pytest.raises(ValueError, match="n_panels"):
            hl.w2_1d(gm, lim, n_panels=bad)
    assert time.perf_counter() - start < 5.0  # a hang guard: refused before any quadrature


def test_oversized_limit_states_its_size_and_the_limit_in_short_figures():
    gm = hl.GaussianMixture([0.5, 0.5], [[-1.0], [1.0]], [0.3, 0.5])
    with pytest.raises(ValueError, match="components") as info:
        hl.limit_distribution(gm, alpha=1e-300, t0=0.1)
    message = str(info.value)
    assert len(message) < 300 and "limit" in message and "e+" in message
