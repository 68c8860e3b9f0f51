"""The exact generation map and the closed-form limit."""

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import hermite_limit as hl
from helpers import bimodal_1d, random_mixture


def stepwise(data, alpha, times, init=None):
    """Independent reference in plain numpy: p <- P_t(alpha p_data + (1 - alpha) p), one step at a time."""
    init = data if init is None else init
    dw, dm, dS = (np.asarray(a) for a in (data.weights, data.means, data.full_covs()))
    w, m, S = (np.asarray(a) for a in (init.weights, init.means, init.full_covs()))
    eye = np.eye(dm.shape[1])
    for t in times:
        w = np.concatenate([alpha * dw, (1 - alpha) * w])
        m, S = np.concatenate([dm, m]), np.concatenate([dS, S])
        rho = np.exp(-t)
        m, S = rho * m, rho**2 * S + (1 - rho**2) * eye
    return hl.GaussianMixture(w / w.sum(), m, S)


def closed_form_constant(data, alpha, t0, n, init):
    """sum_{k=1..n} alpha (1-alpha)^{k-1} P_{k t0} p_data + (1-alpha)^n P_{n t0} p_0, built term by term."""
    parts = [hl.ou_push(data, k * t0) for k in range(1, n + 1)] + [hl.ou_push(init, n * t0)]
    scales = [alpha * (1 - alpha) ** (k - 1) for k in range(1, n + 1)] + [(1 - alpha) ** n]
    return hl._mixture.concatenate(parts, np.asarray(scales))


def assert_same_density(p, q, x, rtol=1e-10):
    lp, lq = np.asarray(p.logpdf(x)), np.asarray(q.logpdf(x))
    np.testing.assert_allclose(np.exp(lp), np.exp(lq), rtol=rtol, atol=1e-300)


@given(
    d=st.sampled_from([1, 2, 5]),
    alpha=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    varying=st.booleans(),
    n=st.sampled_from([1, 3, 17, 60, 200]),
    seed=st.integers(0, 10_000),
)
def test_generation_matches_stepwise_recursion(d, alpha, varying, n, seed):
    rng = np.random.default_rng(seed)
    data = random_mixture(rng, 2, d, "full")
    init = random_mixture(rng, 2, d, "diag")
    times = rng.uniform(0.01, 0.2, n) if varying else 0.05
    ref = stepwise(data, alpha, np.broadcast_to(times, (n,)), init)
    got = hl.generation(data, alpha, times, n, init=init)
    x = rng.standard_normal((20, d))
    assert_same_density(got, ref, x)
    np.testing.assert_allclose(got.mean(), ref.mean(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.cov(), ref.cov(), rtol=1e-10, atol=1e-12)


def test_generation_matches_closed_form_and_default_init():
    rng = np.random.default_rng(0)
    data = random_mixture(rng, 3, 2, "full")
    x = rng.standard_normal((30, 2))
    for alpha in (0.1, 0.5):
        assert_same_density(hl.generation(data, alpha, 0.1, 25), closed_form_constant(data, alpha, 0.1, 25, data), x)


def test_limit_is_fixed_point_of_generation_map():
    data = bimodal_1d()
    tol = 1e-12
    for alpha, t0 in ((0.1, 0.05), (0.5, 0.1), (0.9, 0.5)):
        lim = hl.limit_distribution(data, alpha, t0, tol)
        assert lim.tail_mass <= tol and (1 - alpha) ** (lim.n_terms - 1) > tol
        nxt = hl.generation(data, alpha, t0, 1, init=lim.mixture)
        x = np.linspace(-8, 8, 401)
        dens = np.exp(np.asarray(lim.logpdf(x)))
        # G(p_trunc) - p_trunc = alpha (1-alpha)^J (P_{(J+1)t0} p_data - gamma): bounded by tol * max density
        bound = tol * (dens.max() + 1 / math.sqrt(2 * math.pi))
        assert np.max(np.abs(np.exp(np.asarray(nxt.logpdf(x))) - dens)) <= bound
        w2 = hl.w2_1d(nxt, lim)
        assert w2.value <= tol + w2.error


def test_limit_truncation_bounds_are_honest():
    data = bimodal_1d()
    alpha, t0 = 0.3, 0.2
    coarse = hl.limit_distribution(data, alpha, t0, tol=1e-3)
    fine = hl.limit_distribution(data, alpha, t0, tol=1e-14)
    w2 = hl.w2_1d(coarse, fine)
    assert w2.value <= coarse.w2_error_bound + fine.w2_error_bound + w2.error
    tv = hl.tv_distance(coarse, fine)
    assert tv.value <= coarse.tail_mass + fine.tail_mass + tv.error


def test_limit_of_samples_and_merging():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((50, 2)) + 3
    lim = hl.limit_distribution(hl.empirical(x), 0.2, 0.5, tol=1e-10)
    rho = math.exp(-0.5)
    k = np.arange(1, 4)
    # the first terms are N(rho^k x_j, (1 - rho^{2k}) I), weights alpha (1-alpha)^{k-1} / N
    np.testing.assert_allclose(np.asarray(lim.mixture.means)[:150].reshape(3, 50, 2), rho ** k[:, None, None] * x)
    np.testing.assert_allclose(np.asarray(lim.mixture.covs)[:150].reshape(3, 50), np.broadcast_to(1 - rho ** (2 * k[:, None]), (3, 50)))
    # terms equal to N(0, I) in float64 are merged into one component
    far = hl.limit_distribution(bimodal_1d(), 0.01, 2.0, tol=1e-12)
    assert far.merged_components > 0
    # 2 components per term plus the tail's N(0, I), less the merged duplicates
    assert far.mixture.n_components == 2 * far.n_terms + 1 - far.merged_components
    np.testing.assert_allclose(np.sum(np.asarray(far.mixture.weights)), 1.0, rtol=1e-14)
    # merging is exact in float64: densities agree with the unmerged sum to rounding
    rho_far = math.exp(-2.0)
    x_far = np.linspace(-4, 4, 9)
    kk = np.arange(1, far.n_terms + 1)
    ref = sum(
        0.01 * 0.99 ** (k - 1) * np.exp(np.asarray(hl.ou_push(bimodal_1d(), 2.0 * k).logpdf(x_far))) for k in kk
    ) + far.tail_mass * np.exp(-x_far**2 / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(np.exp(np.asarray(far.logpdf(x_far))), ref, rtol=1e-12)
    assert rho_far ** far.n_terms < 1e-18


@pytest.mark.parametrize("alpha, t0", [(0.1, 0.1), (0.5, 0.2), (0.9, 0.05)])
def test_geometric_convergence_rates(alpha, t0):
    data = bimodal_1d()
    lim = hl.limit_distribution(data, alpha, t0, tol=1e-15)
    kappa = math.sqrt(1 - alpha) * math.exp(-t0)
    w2 = [hl.w2_1d(hl.generation(data, alpha, t0, n), lim) for n in range(0, 8)]
    tv = [hl.tv_distance(hl.generation(data, alpha, t0, n), lim) for n in range(0, 8)]
    for a, b in zip(w2, w2[1:]):
        if b.value > 1e3 * (b.error + lim.w2_error_bound):  # ratios are meaningful above the noise
            assert b.value / a.value <= kappa * (1 + 1e-6)
    for a, b in zip(tv, tv[1:]):
        if b.value > 1e3 * (b.error + lim.tail_mass):
            assert b.value / a.value <= (1 - alpha) * (1 + 1e-3)


def test_limit_does_not_depend_on_init():
    data = bimodal_1d()
    alpha, t0 = 0.5, 0.2
    lim = hl.limit_distribution(data, alpha, t0, tol=1e-14)
    kappa = math.sqrt(1 - alpha) * math.exp(-t0)
    for init in (hl.GaussianMixture([1.0], [[5.0]], [0.1]), hl.standard_normal(1), data):
        start = hl.w2_1d(init, lim).value
        p = hl.generation(data, alpha, t0, 60, init=init)
        assert hl.w2_1d(p, lim).value <= kappa**60 * start + 1e-12


def test_alpha_zero_tends_to_standard_normal():
    data = bimodal_1d()
    p = hl.generation(data, 0.0, 0.1, 200)
    start = hl.w2_1d(data, hl.standard_normal(1)).value
    assert hl.w2_1d(p, hl.standard_normal(1)).value <= math.exp(-20.0) * start + 1e-13
    assert hl.limit_distribution(data, 0.0, 0.1).mixture.n_components == 1
    d3 = hl.generation(random_mixture(np.random.default_rng(1), 2, 3), 0.0, 0.5, 100)
    np.testing.assert_allclose(d3.cov(), np.eye(3), atol=1e-15)


def test_accumulate_and_synthetic_fraction():
    data = bimodal_1d()
    # accumulate: p_2 = P_t((p_data + p_1) / 2), p_1 = P_t p_data
    p1 = hl.ou_push(data, 0.1)
    ref = hl.ou_push(hl.mix(0.5, data, p1), 0.1)
    x = np.linspace(-5, 5, 21)
    assert_same_density(hl.generation(data, None, 0.1, 2, scheme="accumulate"), ref, x)
    assert_same_density(
        hl.generation(data, schedule=0.1, n=7, synthetic_fraction=0.7), hl.generation(data, 0.3, 0.1, 7), x
    )


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda d: hl.limit_distribution(d, 2.0, 0.1), "alpha must lie in"),
        (lambda d: hl.limit_distribution(d, 0.5, -0.1), "t0 must be > 0"),
        (lambda d: hl.limit_distribution(d, 0.5, 0.0), "t0 must be > 0"),
        (lambda d: hl.limit_distribution(d, 0.5, 0.1, tol=0.0), "tol must lie in"),
        (lambda d: hl.limit_distribution(d, np.nan, 0.1), "alpha must be finite"),
        (lambda d: hl.limit_distribution("data", 0.5, 0.1), "data must be a GaussianMixture"),
        (lambda d: hl.limit_distribution(d, 1e-12, 0.1, tol=1e-12), "components"),
        (lambda d: hl.generation(d, 0.5, 0.1, -1), "n must be >= 0"),
        (lambda d: hl.generation(d, 0.5, 0.1, 2.5), "n must be an integer"),
        (lambda d: hl.generation(d, 0.5, None, 2), "schedule is required"),
        (lambda d: hl.generation(d, -0.5, 0.1, 2), "alpha must lie in"),
        (lambda d: hl.generation(d, 0.5, 0.1, 2, init=hl.standard_normal(2)), "init has dimension 2"),
        (lambda d: hl.generation(d, 0.5, 0.1, 2, scheme="mix"), "scheme must be one of"),
        (lambda d: hl.generation(d, 0.5, 0.1, 2, synthetic_fraction=0.5), "not both"),
        (lambda d: hl.ou_push(d, -1.0), "t must be >= 0"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call(bimodal_1d())
