"""Hermite coefficients: exact recursion vs mpmath, quadrature and samples within their errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import bimodal_1d, random_mixture

import hermite_limit as hl
from hermite_limit.hermite import _gaussian
from hermite_limit.reference import coefficients_1d_mp, coefficients_mp

MIXTURES_1D = {
    "bimodal": ([0.3, 0.7], [-2.0, 1.5], [0.25, 0.5]),
    "wide": ([0.5, 0.5], [0.4, -1.0], [1.8, 3.0]),  # sigma^2 > 1: coefficients grow
    "points": ([0.2, 0.5, 0.3], [-3.1, 0.2, 4.0], [0.0, 0.0, 0.0]),  # point masses: a_n = mean h_n
    "far": ([1.0], [6.0], [0.3]),
}


def _close(got, ref, scale, rtol):
    """Norm: |a_n - ref_n| <= rtol * sum_k w_k |a_n^(k)| (mpmath), the cancellation-free scale.
    It equals |ref_n| for one component or same-sign components."""
    got = np.asarray(got)
    ref = np.array([float(v) for v in ref])
    scale = np.array([float(v) for v in scale])
    err = np.abs(got - ref) / np.maximum(scale, 1e-300)
    assert np.all(err <= rtol), f"max relative error {err.max():.3g} at n={int(err.argmax())}"


@pytest.mark.parametrize("name", list(MIXTURES_1D))
def test_exact_1d_matches_mpmath_order_60(name):
    w, m, v = MIXTURES_1D[name]
    c = hl.hermite_coefficients(hl.GaussianMixture(w, m, v), 60)
    assert c.method == "exact" and c.values.dtype == np.float64
    np.testing.assert_array_equal(c.indices[:, 0], np.arange(61))
    ref, scale = coefficients_1d_mp(w, m, v, 60, abs_scale=True)
    _close(c.values, ref, scale, 1e-12)
    # the reported rounding bound is honest
    assert np.all(np.abs(np.asarray(c.values) - np.array([float(x) for x in ref])) <= np.asarray(c.errors) + 1e-300)


@pytest.mark.parametrize("cov_type", ["iso", "diag", "full"])
def test_exact_3d_matches_mpmath_order_6(cov_type):
    gm = random_mixture(np.random.default_rng(3), 3, 3, cov_type, spread=1.5)
    c = hl.hermite_coefficients(gm, 6)
    assert c.indices.shape == (math.comb(9, 3), 3)
    ref, scale = coefficients_mp(gm.weights, gm.means, gm.full_covs(), c.indices, abs_scale=True)
    _close(c.values, ref, scale, 1e-12)


def test_exact_known_values_and_empirical():
    # N(mu, 1): a_n = mu^n / sqrt(n!) ; N(0, s2): a_{2k} = (s2-1)^k sqrt((2k)!) / (2^k k!)
    c = hl.hermite_coefficients(hl.GaussianMixture([1.0], [[0.8]], [1.0]), 10)
    ref = [0.8**n / math.sqrt(math.factorial(n)) for n in range(11)]
    np.testing.assert_allclose(np.asarray(c.values), ref, rtol=1e-14)
    s2 = 0.3
    c = hl.hermite_coefficients(hl.GaussianMixture([1.0], [[0.0]], [s2]), 10)
    ref = [0.0 if n % 2 else (s2 - 1) ** (n // 2) * math.sqrt(math.factorial(n)) / (2 ** (n // 2) * math.factorial(n // 2)) for n in range(11)]
    np.testing.assert_allclose(np.asarray(c.values), ref, rtol=1e-14, atol=1e-300)
    # samples as an empirical law: exact mean of h_n over the points
    x = np.random.default_rng(0).normal(size=(50, 2))
    c = hl.hermite_coefficients(x, 5, method="exact")
    ref = np.asarray(hl.hermite_products(x, c.indices)).mean(0)
    np.testing.assert_allclose(np.asarray(c.values), ref, rtol=1e-13, atol=1e-15)
    c2 = hl.hermite_coefficients(hl.empirical(x), 5)
    np.testing.assert_allclose(np.asarray(c2.values), ref, rtol=1e-13, atol=1e-15)


def test_result_methods():
    gm = bimodal_1d()
    c = hl.hermite_coefficients(gm, 40)
    v = np.asarray(c.values)
    np.testing.assert_allclose(np.asarray(c.energies()), v**2, rtol=1e-15)
    assert float(c.chi2()) == pytest.approx(np.sum(v[1:] ** 2), rel=1e-14)
    # density ratio reconstruction: p/gamma at a point (converged series for this law? check order
    # 40 against the direct ratio where the series converges fast: the smoothed law P_1 p)
    pt = hl.ou_push(gm, 1.0)
    cp = hl.hermite_coefficients(pt, 60)
    x = np.array([-1.0, 0.0, 0.7])
    ratio = np.exp(np.asarray(pt.logpdf(x)) + 0.5 * x**2 + 0.5 * math.log(2 * math.pi))
    np.testing.assert_allclose(np.asarray(cp.density_ratio(x)), ratio, rtol=1e-8)
    # Mehler on coefficients == coefficients of the pushed law
    np.testing.assert_allclose(np.asarray(c.ou_push(1.0).values), np.asarray(hl.hermite_coefficients(pt, 40).values), rtol=1e-11, atol=1e-14)
    g2 = random_mixture(np.random.default_rng(1), 2, 2, "full")
    c2 = hl.hermite_coefficients(g2, 4)
    assert float(c2.coefficient((1, 2))) == float(c2.values[np.flatnonzero((c2.indices == [1, 2]).all(1))[0]])
    np.testing.assert_array_equal(c2.order_of_index, c2.indices.sum(1))


def test_float64_without_global_x64():
    assert not jax.config.read("jax_enable_x64")
    c = hl.hermite_coefficients(bimodal_1d(), 5)
    q = hl.hermite_coefficients(bimodal_1d(), 5, method="quadrature")
    for arr in (c.values, c.errors, q.values, q.errors, c.energies(), c.chi2()):
        assert arr.dtype == np.float64
    assert jnp.ones(1).dtype == jnp.float32  # caller's setting untouched


def test_vmap_over_batch_of_mixtures_and_no_recompile():
    rng = np.random.default_rng(7)
    means = rng.normal(size=(4, 3, 2))
    covs = rng.uniform(0.3, 1.5, (4, 3, 2))
    w = np.full((4, 3), 1 / 3)

    @jax.jit
    def coeffs(w, m, c):
        return hl.hermite_coefficients(hl.GaussianMixture(w, m, c), 5).values

    with jax.enable_x64(True):
        batched = jax.vmap(coeffs)(jnp.asarray(w), jnp.asarray(means), jnp.asarray(covs))
    for b in range(4):
        one = hl.hermite_coefficients(hl.GaussianMixture(w[b], means[b], covs[b]), 5).values
        np.testing.assert_allclose(np.asarray(batched[b]), np.asarray(one), rtol=1e-13, atol=1e-15)
    # traced parameters: a sweep over means/covs with the same shapes does not recompile
    hl.hermite_coefficients(hl.GaussianMixture(w[0], means[0], covs[0]), 5)
    before = _gaussian._exact._cache_size()
    for b in range(1, 4):
        hl.hermite_coefficients(hl.GaussianMixture(w[b], means[b], covs[b]), 5)
    assert _gaussian._exact._cache_size() == before


def test_too_large_order_refused_before_work():
    gm = random_mixture(np.random.default_rng(0), 2, 10, "full")
    with pytest.raises(ValueError, match="order=40"):
        hl.hermite_coefficients(gm, 40)
    with pytest.raises(ValueError, match="order"):
        hl.hermite_coefficients(bimodal_1d(), 10**9)
    with pytest.raises(ValueError, match="order"):
        hl.hermite_coefficients(np.zeros((10, 50)), 6, method="samples")


def test_bad_inputs_name_the_argument():
    gm = bimodal_1d()
    with pytest.raises(ValueError, match="order"):
        hl.hermite_coefficients(gm, -1)
    with pytest.raises(ValueError, match="order"):
        hl.hermite_coefficients(gm, 2.5)
    with pytest.raises(ValueError, match="method"):
        hl.hermite_coefficients(gm, 3, method="magic")
    with pytest.raises(ValueError, match="dist"):
        hl.hermite_coefficients(np.array([[np.nan, 1.0]]), 3)
    with pytest.raises(ValueError, match="dim"):
        hl.hermite_coefficients(lambda x: -x @ x, 3)
    with pytest.raises(ValueError, match="key"):
        hl.hermite_coefficients(gm, 3, method="samples")
    with pytest.raises(ValueError, match="scale"):
        hl.hermite_coefficients(gm, 3, method="quadrature", scale=-1.0)
    with pytest.raises(ValueError, match="dist"):
        hl.hermite_coefficients(hl.empirical([[0.0], [1.0]]), 3, method="quadrature")
    with pytest.raises(ValueError, match="mean"):
        hl.hermite_coefficients(gm, 3, method="quadrature", mean=[0.0, 1.0])
    with pytest.raises(ValueError, match="n_nodes"):
        hl.hermite_coefficients(gm, 3, method="quadrature", n_nodes=0)


def test_accurate_relative_to_each_coefficient_where_hermegauss_fails():
    """Order 60, random 4-component mixtures: on every coefficient where numpy's 61-node ``hermegauss``
    (exact to degree 121 in exact arithmetic) is worse than 1e-8 relative to the coefficient itself, the
    exact recursion is within 1e-11 of mpmath relative to that coefficient."""
    from numpy.polynomial import hermite_e

    rng = np.random.default_rng(11)
    z, omega = hermite_e.hermegauss(61)
    omega = omega / math.sqrt(2 * math.pi)
    norms = np.sqrt([float(math.factorial(n)) for n in range(61)])
    own_ours, own_hg = [], []
    for _ in range(20):
        w, m, v = rng.dirichlet(np.ones(4)), rng.uniform(-2.0, 2.0, 4), rng.uniform(0.2, 1.5, 4)
        ref = np.array([float(x) for x in coefficients_1d_mp(w, m, v, 60)])
        ours = np.asarray(hl.hermite_coefficients(hl.GaussianMixture(w, m[:, None], v), 60).values)
        x = m[:, None] + np.sqrt(v)[:, None] * z  # (K, nodes)
        hg = np.einsum("k,i,kin->n", w, omega, hermite_e.hermevander(x, 60) / norms)
        own_ours.append(np.abs(ours - ref) / np.abs(ref))
        own_hg.append(np.abs(hg - ref) / np.abs(ref))
    own_ours, own_hg = np.concatenate(own_ours), np.concatenate(own_hg)
    hard = own_hg > 1e-8
    assert hard.sum() >= 20, hard.sum()  # the comparison is not vacuous
    assert own_ours[hard].max() <= 1e-11, own_ours[hard].max()


def _general_1d(gm, order):
    """The general multi-index level body on a one-dimensional law (the fast path bypasses it)."""
    B = jnp.reshape(gm.covs, (-1, 1)) - 1.0
    return _gaussian._exact(gm.weights, gm.means, B, order=order, dim=1, full=False)


@settings(max_examples=12)  # each new (K, order) compiles both bodies
@given(
    K=st.sampled_from([1, 4, 17]),  # both sides of the unrolled / dot weighted sum (16 components)
    order=st.sampled_from([0, 1, 2, 25, 60]),
    cov_type=st.sampled_from(["iso", "diag", "full"]),
    seed=st.integers(0, 2**31 - 1),
    points=st.booleans(),
)
def test_one_dimensional_fast_path_equals_general_body(K, order, cov_type, seed, points):
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(K))
    m = rng.uniform(-4.0, 4.0, K)
    v = np.where(rng.random(K) < 0.3, 0.0, rng.uniform(0.05, 3.0, K)) if points else rng.uniform(0.05, 3.0, K)
    covs = {"iso": v, "diag": v[:, None], "full": v[:, None, None]}[cov_type]
    gm = hl.GaussianMixture(w, m[:, None], covs)
    with jax.enable_x64(True):
        fast_vals, fast_err = _gaussian.mixture_coefficients(gm, order)
        ref_vals, ref_err = _general_1d(gm, order)
    ref_err = np.asarray(ref_err)
    scale = ref_err / (4.0 * _gaussian.EPS * (np.arange(order + 1) + 2.0))  # sum_k w_k (|lead| + |back|) / div
    assert np.all(np.abs(np.asarray(fast_vals) - np.asarray(ref_vals)) <= 1e-13 * scale)
    np.testing.assert_allclose(np.asarray(fast_err), ref_err, rtol=1e-13, atol=0.0)


def test_one_dimensional_fast_path_under_jit_vmap_grad():
    rng = np.random.default_rng(11)
    w = rng.dirichlet(np.ones(3), size=5)
    m = rng.uniform(-2, 2, (5, 3, 1))
    v = rng.uniform(0.2, 1.5, (5, 3))
    with jax.enable_x64(True):
        stacked = hl.GaussianMixture.tree_unflatten(True, tuple(map(jnp.asarray, (w, m, v))))
        fast = jax.jit(jax.vmap(lambda g: _gaussian.mixture_coefficients(g, 40)))(stacked)
        general = jax.vmap(lambda g: _general_1d(g, 40))(stacked)
        np.testing.assert_allclose(np.asarray(fast[0]), np.asarray(general[0]), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(np.asarray(fast[1]), np.asarray(general[1]), rtol=1e-13)

        # derivative of a coefficient in the means and variances: both bodies' autodiff, and a finite difference
        def coeff(path, mv):
            g = hl.GaussianMixture(jnp.asarray(w[0]), mv[0][:, None], mv[1])
            return path(g, 12)[0][9]

        mv = (jnp.asarray(m[0, :, 0]), jnp.asarray(v[0]))
        g_fast = jax.grad(lambda p: coeff(_gaussian.mixture_coefficients, p))(mv)
        g_gen = jax.grad(lambda p: coeff(_general_1d, p))(mv)
        for a, b in zip(g_fast, g_gen):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12)
        h = 1e-6
        bump = jnp.zeros(3).at[1].set(h)
        fd = (coeff(_gaussian.mixture_coefficients, (mv[0] + bump, mv[1]))
              - coeff(_gaussian.mixture_coefficients, (mv[0] - bump, mv[1]))) / (2 * h)
        np.testing.assert_allclose(float(g_fast[0][1]), float(fd), rtol=1e-7)
    # a sweep over parameters of the same shapes does not recompile the one-dimensional body
    hl.hermite_coefficients(hl.GaussianMixture(w[0], m[0], v[0]), 30)
    before = _gaussian._exact_1d._cache_size()
    for b in range(1, 5):
        hl.hermite_coefficients(hl.GaussianMixture(w[b], m[b], v[b]), 30)
    assert _gaussian._exact_1d._cache_size() == before
