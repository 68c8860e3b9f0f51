"""Structured laws of empirical data (PushedCopies) against their explicit mixtures and independent references."""

import math

import jax
import numpy as np
import pytest
from scipy import integrate, optimize, stats
from scipy.special import logsumexp

import hermite_limit as hl
from hermite_limit._pushed import PushedCopies
from helpers import random_mixture


def _laws(rng, d, N=30):
    """A limit, a generation and a KDE-learner generation of the same samples (all PushedCopies)."""
    data = hl.empirical(rng.standard_normal((N, d)) * 1.5 + 0.5)
    return data, [
        hl.limit_distribution(data, 0.4, 0.15, tol=1e-10),
        hl.generation(data, 0.3, [0.1, 0.3, 0.2, 0.05, 0.1], 5),
        hl.generation(data, 0.5, 0.2, 4, kde_bandwidth=0.4),
    ]


def _assert_log_close(a, b, tol=1e-13):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_array_less(np.abs(a - b), tol * np.maximum(1.0, np.abs(b)))


@pytest.mark.parametrize("d", [2])
def test_density_score_moments_match_explicit_mixture(d):
    rng = np.random.default_rng(d)
    data, laws = _laws(rng, d)
    y = rng.standard_normal((200, d)) * 3
    for law in laws:
        pc = getattr(law, "law", law)
        assert isinstance(pc, PushedCopies)
        gm = law.mixture
        assert pc.n_components == gm.n_components  # counted without building
        # independent reference in plain numpy over the explicit components (no JAX compilation)
        w, m, c = np.asarray(gm.weights), np.asarray(gm.means), np.asarray(gm.covs)
        diff = y[:, None, :] - m[None]  # (n, K, d)
        logt = np.log(w) - 0.5 * np.sum(diff**2, -1) / c - 0.5 * d * np.log(2 * np.pi * c)
        ref_lp = logsumexp(logt, axis=1)
        r = np.exp(logt - ref_lp[:, None])
        ref_sc = -np.einsum("nk,nkd->nd", r / c[None], diff)
        _assert_log_close(law.logpdf(y), ref_lp)
        s = np.asarray(law.score(y))
        np.testing.assert_array_less(np.abs(s - ref_sc), 1e-12 * np.maximum(1.0, np.abs(ref_sc)))
        ref_mean = w @ m
        ref_cov = (m - ref_mean).T @ ((m - ref_mean) * w[:, None]) + (w @ c) * np.eye(d)
        np.testing.assert_allclose(np.asarray(law.mean()), ref_mean, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(np.asarray(law.cov()), ref_cov, rtol=1e-13, atol=1e-14)


def test_far_points_and_many_point_blocks(monkeypatch):
    # many point blocks (running log-sum-exp across them) and points far from the data stay exact
    import hermite_limit._pushed as P

    monkeypatch.setattr(P, "_BLOCK_ELEMENTS", 2**12)
    rng = np.random.default_rng(3)
    lim = hl.limit_distribution(hl.empirical(rng.standard_normal((700, 2))), 0.5, 0.1, tol=1e-6)
    y = np.array([[40.0, -35.0], [0.1, 0.2], [-80.0, 5.0]])
    _assert_log_close(lim.logpdf(y), lim.mixture.logpdf(y))
    np.testing.assert_allclose(np.asarray(lim.score(y)), np.asarray(lim.mixture.score(y)), rtol=1e-12)


@pytest.mark.parametrize("d, order", [(1, 30), (2, 8)])
def test_hermite_coefficients_match_explicit(d, order):
    rng = np.random.default_rng(10 + d)
    _, laws = _laws(rng, d, N=12)
    for law in laws:
        fast = hl.hermite_coefficients(law, order)
        ref = hl.hermite_coefficients(law.mixture, order)
        assert fast.method == "exact" and fast.values.shape == ref.values.shape
        diff = np.abs(np.asarray(fast.values) - np.asarray(ref.values))
        assert np.all(diff <= np.asarray(fast.errors) + np.asarray(ref.errors) + 1e-15)
        assert np.max(diff) < 1e-12
    # OU pushes of the points: energies are the points' energies times (sum_k w_k rho_k^m)^2
    e_fast, e_ref = hl.energy_spectrum(laws[0], 6), hl.energy_spectrum(laws[0].mixture, 6)
    np.testing.assert_allclose(np.asarray(e_fast.energies), np.asarray(e_ref.energies), rtol=1e-12, atol=1e-15)


def test_sampling_moments_and_term_choice(getkey):
    rng = np.random.default_rng(5)
    lim = hl.limit_distribution(hl.empirical(rng.standard_normal((40, 2)) * 2 + 1), 0.3, 0.2, tol=1e-8)
    n = 200_000
    x = np.asarray(lim.sample(getkey(), n))
    assert x.shape == (n, 2) and x.dtype == np.float64
    mean, cov = np.asarray(lim.mean()), np.asarray(lim.cov())
    se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(x.mean(0) - mean) <= 5 * se)
    # covariance entries within 5 standard errors (fourth moments from the draws)
    xc = x - mean
    for i in range(2):
        for j in range(2):
            prod = xc[:, i] * xc[:, j]
            assert abs(prod.mean() - cov[i, j]) <= 5 * prod.std() / math.sqrt(n)
    # the law of |X - E X|^2 agrees with the explicit mixture's own sampler (two-sample KS)
    y = np.asarray(lim.mixture.sample(getkey(), 20_000))
    assert stats.ks_2samp(np.sum(xc[:20_000] ** 2, 1), np.sum((y - mean) ** 2, 1)).pvalue > 1e-3


def test_marginal_and_project_match_explicit():
    rng = np.random.default_rng(6)
    u = np.array([0.6, -0.8, 0.0])
    y1 = rng.standard_normal(50) * 2
    y2 = rng.standard_normal((50, 2)) * 2
    gm_data = random_mixture(rng, 3, 3, "full")
    for data in (hl.empirical(rng.standard_normal((25, 3))), gm_data):
        lim = hl.limit_distribution(data, 0.5, 0.2, tol=1e-10)
        _assert_log_close(lim.marginal([0, 2]).logpdf(y2), lim.mixture.marginal([0, 2]).logpdf(y2))
        _assert_log_close(lim.project(u).logpdf(y1), lim.mixture.project(u).logpdf(y1))
        # and against the definition: the projection of the limit is the limit of the projection
        _assert_log_close(lim.project(u).logpdf(y1), hl.limit_distribution(data.project(u), 0.5, 0.2, tol=1e-10).logpdf(y1))
    with pytest.raises(ValueError, match="dims must lie in"):
        lim.marginal([3])
    with pytest.raises(ValueError, match="direction must have shape"):
        lim.project([1.0, 0.0])


def test_closures_under_jit_and_explicit_conversion_limit():
    rng = np.random.default_rng(7)
    lim = hl.limit_distribution(hl.empirical(rng.standard_normal((20, 2))), 0.5, 0.3)
    y = rng.standard_normal((7, 2))
    with jax.enable_x64(True):
        traced = jax.jit(lambda z: lim.law.logpdf(z))(y)
        grad = jax.grad(lambda z: lim.law.logpdf(z).sum())(y)
    np.testing.assert_allclose(np.asarray(traced), np.asarray(lim.logpdf(y)), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(grad), np.asarray(lim.score(y)), rtol=1e-10)
    # the explicit form is refused, with the limit stated, when it would exceed memory; the law still works
    big = PushedCopies(np.linspace(-1, 1, 200_001), np.exp(-0.1 * np.arange(1, 101)), 1 - np.exp(-0.2 * np.arange(1, 101)), np.full(100, 0.01))
    with pytest.raises(ValueError, match="explicit mixture of this law needs 20,000,100 components"):
        big.mixture
    assert np.isfinite(float(big.logpdf(0.3)))


def test_bad_pushed_copies_arguments():
    with pytest.raises(ValueError, match="term_weights must sum to 1"):
        PushedCopies([[0.0]], [0.5], [0.5], [0.5])
    with pytest.raises(ValueError, match="var must be >= 0"):
        PushedCopies([[0.0]], [0.5], [-0.5], [1.0])
    with pytest.raises(ValueError, match="var must have shape"):
        PushedCopies([[0.0]], [0.5, 0.2], [0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="no density"):
        PushedCopies([[0.0]], [1.0], [0.0], [1.0]).logpdf(0.0)


# -- W2 and the quadrature divergences on structured laws ------------------------------------------


def _cdf(gm):
    w, m, s = np.asarray(gm.weights), np.asarray(gm.means)[:, 0], np.sqrt(np.asarray(gm.covs))
    return lambda x: float(np.sum(w * stats.norm.cdf(x, m, s)))


def _quantile(F, u):
    return optimize.brentq(lambda x: F(x) - u, -40, 40, xtol=1e-14, rtol=1e-15)


def test_w2_structured_against_scipy_references():
    rng = np.random.default_rng(8)
    x = rng.standard_normal(4) * 2
    data = hl.empirical(x)
    lim = hl.limit_distribution(data, 0.5, 0.3, tol=1e-5)
    g2 = hl.generation(data, 0.5, 0.3, 2)
    # continuous pair: brentq quantiles and adaptive quadrature in u
    F, G = _cdf(g2.mixture), _cdf(lim.mixture)
    ref, _ = integrate.quad(lambda u: (_quantile(F, u) - _quantile(G, u)) ** 2, 0, 1, limit=200, epsabs=1e-14)
    est = hl.w2_1d(g2, lim)
    assert abs(est.value - math.sqrt(ref)) <= max(est.error, 1e-9)
    assert est.value == pytest.approx(math.sqrt(ref), rel=1e-7)
    # limit vs its data (atoms): sum_j int over [F^-1(c_{j-1}), F^-1(c_j)] of (x - y_j)^2 dF
    ys = np.sort(x)
    edges = [-40.0] + [_quantile(G, c) for c in np.arange(1, 4) / 4] + [40.0]
    dens = lambda z: float(np.exp(lim.mixture.logpdf(z)))  # noqa: E731
    ref = sum(integrate.quad(lambda z: (z - ys[j]) ** 2 * dens(z), edges[j], edges[j + 1], epsabs=1e-14, limit=200)[0] for j in range(4))
    est = hl.w2_1d(lim, data)
    assert est.value == pytest.approx(math.sqrt(ref), rel=1e-9)
    assert abs(est.value - math.sqrt(ref)) <= est.error + 1e-10


def test_w2_structured_equals_explicit_for_many_points():
    # the cluster series (200 points, many per cluster) against the exact explicit mixtures
    rng = np.random.default_rng(9)
    data = hl.empirical(np.concatenate([rng.normal(-2, 0.5, 100), rng.normal(1.5, 0.7, 100)]))
    lim = hl.limit_distribution(data, 0.5, 0.1, tol=1e-8)
    g = hl.generation(data, 0.5, 0.1, 6)
    for p, q in ((g, lim), (lim, data), (data, g), (lim, hl.standard_normal(1))):
        fast = hl.w2_1d(p, q)
        slow = hl.w2_1d(getattr(p, "mixture", p), getattr(q, "mixture", q))
        assert abs(fast.value - slow.value) <= 1e-12 * max(slow.value, 1e-3) + fast.error
        assert fast.error < 1e-9 * max(fast.value, 1e-3)


@pytest.mark.parametrize("kind", ["tv", "kl", "chi2"])
def test_quadrature_divergences_on_structured_laws(kind):
    rng = np.random.default_rng(11)
    data = hl.empirical(rng.standard_normal(60))
    lim, g = hl.limit_distribution(data, 0.5, 0.2), hl.generation(data, 0.5, 0.2, 3)
    f = {"tv": hl.tv_distance, "kl": hl.kl_divergence, "chi2": hl.chi2_divergence}[kind]
    fast, slow = f(g, lim), f(g.mixture, lim.mixture)  # the explicit path is checked against scipy elsewhere
    assert abs(fast.value - slow.value) <= 1e-12 * slow.value + 1e-15
    assert fast.error < 1e-3 * fast.value


def test_one_dimensional_series_density_and_score():
    # 1500 points x 41 terms >= 10,000 pairs: logpdf and score go through the cluster series
    rng = np.random.default_rng(12)
    lim = hl.limit_distribution(hl.empirical(np.concatenate([rng.normal(-2, 0.5, 750), rng.normal(1.5, 0.7, 750)])), 0.5, 0.1)
    assert lim.law.n_points * lim.law.n_terms >= 10_000
    y = np.concatenate([np.linspace(-7, 7, 61), [35.0, -50.0]])  # the last two are evaluated directly
    gm = lim.mixture
    _assert_log_close(lim.logpdf(y), gm.logpdf(y), 1e-13)
    s, ref = np.asarray(lim.score(y)), np.asarray(gm.score(y))
    np.testing.assert_array_less(np.abs(s - ref), 1e-12 * np.maximum(1.0, np.abs(ref)))


def test_w2_many_atoms_interpolated_edges_equal_solved_edges(monkeypatch):
    import hermite_limit.divergences._wasserstein_1d as W

    rng = np.random.default_rng(13)
    data = hl.empirical(rng.standard_normal(3000) * 1.3)
    lim = hl.limit_distribution(data, 0.5, 0.1)
    mix = hl.GaussianMixture([0.4, 0.6], [[-1.0], [2.0]], [0.3, 1.2])
    fast = [hl.w2_1d(lim, data), hl.w2_1d(data, mix)]
    monkeypatch.setattr(W, "_MANY_ATOMS", 10**9)  # the per-edge Newton solve (tested against scipy above)
    slow = [hl.w2_1d(lim, data), hl.w2_1d(data, mix)]
    for a, b in zip(fast, slow):
        assert abs(a.value - b.value) <= 1e-12 * b.value
        assert abs(a.value - b.value) <= a.error + b.error


def test_record_statistics_on_structured_laws_equal_explicit_mixture():
    """The retraining records' exact statistics (marginal Hermite coefficients, projected W2) take a PushedCopies
    law directly; they equal the same statistics of its explicit mixture (computed by an independent code path),
    including laws with non-OU terms (KDE) and zero-weight padding terms."""
    from hermite_limit.sampling._retrain import _pad_exact
    from hermite_limit.sampling._stats import mixture_hermite_marginals, projected_w2, random_directions

    with jax.enable_x64(True):
        rng = np.random.default_rng(7)
        data, laws = _laws(rng, 3, N=25)
        x = jax.numpy.asarray(rng.standard_normal((300, 3)) * 1.3)
        U = random_directions(jax.random.key(1), 5, 3)
        for law in laws:
            pc = getattr(law, "law", law)
            gm = pc.mixture
            for lw in (pc, _pad_exact(pc)):
                np.testing.assert_allclose(np.asarray(mixture_hermite_marginals(lw, 6)),
                                           np.asarray(mixture_hermite_marginals(gm, 6)), rtol=1e-12, atol=1e-13)
                np.testing.assert_allclose(np.asarray(projected_w2(x, lw, U)), np.asarray(projected_w2(x, gm, U)),
                                           rtol=1e-10, atol=1e-12)
        assert _pad_exact(laws[1]).n_terms >= laws[1].n_terms


def test_retrain_on_empirical_data_records_against_structured_generation(getkey):
    """hl.retrain on an empirical law: the closed-form generation stays structured (PushedCopies) and the exact
    Hermite record equals the explicit mixture's coefficients; sliced W2 stays within the theorem's bound."""
    from hermite_limit.sampling._stats import mixture_hermite_marginals

    rng = np.random.default_rng(3)
    data = hl.empirical(rng.standard_normal((40, 2)) * [1.0, 2.0])
    res = hl.retrain(getkey(), data, 0.5, 0.1, 2, 200, learner=hl.ParticleScore(), n_steps=10, progress=False, order=3)
    r = res.records
    for i in range(2):
        gm = hl.generation(data, 0.5, 0.1, i + 1).mixture
        with jax.enable_x64(True):
            a = np.asarray(mixture_hermite_marginals(gm, 3))
        np.testing.assert_allclose(r.hermite_exact[i], a, rtol=1e-12, atol=1e-13)
        # theorem (W2 ball) with the sampling floor as slack
        assert r.sliced_w2[i] <= r.w2_bound[i] + 3 * r.sliced_w2_floor[i]
