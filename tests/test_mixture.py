"""GaussianMixture: densities, scores, moments and sampling against independent references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import hermite_limit as hl
from helpers import random_mixture


def scipy_logpdf(gm, x):
    """Reference log-density with scipy, component by component."""
    w, m, S = np.asarray(gm.weights), np.asarray(gm.means), np.asarray(gm.full_covs())
    comps = [np.log(w[k]) + stats.multivariate_normal(m[k], S[k]).logpdf(x) for k in range(len(w))]
    return logsumexp(np.stack(comps, axis=-1), axis=-1)


@pytest.mark.parametrize("cov_type", ["iso", "diag", "full"])
@pytest.mark.parametrize("d", [1, 3])
def test_logpdf_matches_scipy(cov_type, d):
    rng = np.random.default_rng(d)
    gm = random_mixture(rng, 4, d, cov_type)
    x = 3.0 * rng.standard_normal((50, d))
    np.testing.assert_allclose(gm.logpdf(x), scipy_logpdf(gm, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cov_type", ["iso", "diag", "full"])
def test_score_is_gradient_of_logpdf(cov_type):
    rng = np.random.default_rng(7)
    gm = random_mixture(rng, 5, 4, cov_type)
    x = 2.0 * rng.standard_normal((20, 4))
    with jax.enable_x64(True):
        auto = jax.vmap(jax.grad(lambda y: gm.logpdf(y[None])[0]))(jnp.asarray(x))
    np.testing.assert_allclose(gm.score(x), auto, rtol=1e-10, atol=1e-10)
    # and against central finite differences of the scipy reference
    h = 1e-5
    fd = np.stack([(scipy_logpdf(gm, x + h * e) - scipy_logpdf(gm, x - h * e)) / (2 * h) for e in np.eye(4)], -1)
    np.testing.assert_allclose(gm.score(x), fd, rtol=1e-6, atol=1e-6)


def test_far_away_points_are_stable():
    rng = np.random.default_rng(1)
    gm = random_mixture(rng, 6, 3, "full")
    x = np.array([[1e3, -2e3, 5e2], [-1e4, 0.0, 0.0]])
    lp = np.asarray(gm.logpdf(x))
    assert np.all(np.isfinite(lp))
    np.testing.assert_allclose(lp, scipy_logpdf(gm, x), rtol=1e-10)
    assert np.all(np.isfinite(np.asarray(gm.score(x))))


def test_large_mixture_is_finite_and_matches_reference():
    rng = np.random.default_rng(3)
    K, d = 2000, 100
    gm = hl.GaussianMixture(np.full(K, 1.0 / K), rng.standard_normal((K, d)), rng.uniform(0.5, 1.5, K))
    x = rng.standard_normal((8, d)) * 3
    lp = np.asarray(gm.logpdf(x))
    w, m, v = np.asarray(gm.weights), np.asarray(gm.means), np.asarray(gm.covs)
    sq = ((x[:, None, :] - m[None]) ** 2).sum(-1)
    ref = logsumexp(np.log(w) - 0.5 * sq / v - 0.5 * d * np.log(2 * np.pi * v), axis=1)
    np.testing.assert_allclose(lp, ref, rtol=1e-11)


@pytest.mark.parametrize("cov_type", ["iso", "diag", "full"])
def test_moments_and_sampling(cov_type, getkey):
    rng = np.random.default_rng(11)
    gm = random_mixture(rng, 3, 2, cov_type)
    w, m, S = np.asarray(gm.weights), np.asarray(gm.means), np.asarray(gm.full_covs())
    mu = w @ m
    cov = np.einsum("k,kij->ij", w, S + np.einsum("ki,kj->kij", m - mu, m - mu))
    np.testing.assert_allclose(gm.mean(), mu, rtol=1e-13)
    np.testing.assert_allclose(gm.cov(), cov, rtol=1e-12)
    key = getkey()
    n = 200_000
    x = np.asarray(gm.sample(key, n))
    se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(x.mean(0) - mu) < 5 * se)
    # sample variance: standard error sqrt((m4 - s^4)/n) estimated from the sample
    centred = x - x.mean(0)
    se_var = np.sqrt(((centred**4).mean(0) - centred.var(0) ** 2) / n)
    assert np.all(np.abs(centred.var(0) - np.diag(cov)) < 5 * se_var)
    np.testing.assert_array_equal(x, np.asarray(gm.sample(key, n)))  # same key, same draws


@pytest.mark.parametrize("cov_type", ["iso", "full"])
def test_component_draws_follow_the_weights_and_ignore_zero_weight_padding(cov_type, getkey):
    """Components are drawn by inverse CDF of one uniform per draw: their frequencies follow the weights (chi-square
    against the multinomial), zero-weight components are never drawn, and appending zero-weight components changes
    no draw (the random numbers do not depend on the component count)."""
    from scipy.stats import chi2

    from hermite_limit.sampling._score import pad_mixture

    w = np.array([0.5, 0.0, 0.2, 0.3, 0.0])
    m = np.arange(5.0)[:, None] * np.array([[100.0, -50.0]])  # components far apart: a draw names its component
    covs = np.full(5, 1e-4) if cov_type == "iso" else np.broadcast_to(1e-4 * np.eye(2), (5, 2, 2)).copy()
    gm = hl.GaussianMixture(w, m, covs)
    key = getkey()
    n = 40_000
    x = np.asarray(gm.sample(key, n))
    comp = np.rint(x[:, 0] / 100.0).astype(int)
    np.testing.assert_array_equal(np.abs(x - m[comp]) < 0.1, True)
    counts = np.bincount(comp, minlength=5)
    assert counts[1] == 0 and counts[4] == 0
    live = w > 0
    stat = np.sum((counts[live] - n * w[live]) ** 2 / (n * w[live]))
    assert stat < chi2.ppf(1 - 1e-4, live.sum() - 1)
    padded = pad_mixture(gm, 37)
    np.testing.assert_array_equal(np.asarray(padded.sample(key, n)), x)


def test_point_masses_sample_exactly_and_have_no_density(getkey):
    pts = np.array([[0.0, 1.0], [2.0, -1.0]])
    gm = hl.empirical(pts)
    x = np.asarray(gm.sample(getkey(), 100))
    assert all(any(np.array_equal(row, p) for p in pts) for row in x)
    with pytest.raises(ValueError, match="no density"):
        gm.logpdf([0.0, 1.0])
    assert not gm.has_density()
    assert hl.ou_push(gm, 0.1).has_density()


def test_float64_without_global_x64():
    assert not jax.config.jax_enable_x64
    gm = hl.GaussianMixture([1.0], [[0.0]], [1.0])
    assert gm.means.dtype == jnp.float64
    assert gm.logpdf([0.5]).dtype == jnp.float64
    assert jnp.ones(1).dtype == jnp.float32  # the caller's setting is untouched


def test_jit_and_vmap_agree_with_eager():
    rng = np.random.default_rng(5)
    gm = random_mixture(rng, 3, 2, "full")
    x = rng.standard_normal((10, 2))
    with jax.enable_x64(True):
        jitted = jax.jit(lambda g, y: g.logpdf(y))(gm, jnp.asarray(x))  # the law traced: coefficients computed in the program
        pushed = jax.vmap(lambda t: hl.ou_push(gm, t).means)(jnp.array([0.1, 0.2]))
    np.testing.assert_allclose(jitted, gm.logpdf(x), rtol=1e-14)
    np.testing.assert_allclose(pushed[1], hl.ou_push(gm, 0.2).means, rtol=1e-14)


def test_marginal_and_projection():
    rng = np.random.default_rng(2)
    gm = random_mixture(rng, 3, 3, "full")
    u = rng.standard_normal(3)
    proj = gm.project(u)
    np.testing.assert_allclose(proj.mean(), [u @ np.asarray(gm.mean())], rtol=1e-13)
    np.testing.assert_allclose(proj.cov(), [[u @ np.asarray(gm.cov()) @ u]], rtol=1e-12)
    marg = gm.marginal([0, 2])
    np.testing.assert_allclose(marg.cov(), np.asarray(gm.cov())[np.ix_([0, 2], [0, 2])], rtol=1e-13)


@pytest.mark.parametrize(
    "args, match",
    [
        (([0.5, 0.6], [[0.0], [1.0]], [1.0, 1.0]), "weights must sum to 1"),
        (([1.5, -0.5], [[0.0], [1.0]], [1.0, 1.0]), "weights must be non-negative"),
        (([0.5, 0.5], [[np.nan], [1.0]], [1.0, 1.0]), "means contains 1 non-finite"),
        (([0.5, 0.5], [[0.0], [1.0]], [1.0, -1.0]), "covs must be non-negative"),
        (([0.5, 0.5], [[0.0], [1.0]], [1.0, np.inf]), "covs contains 1 non-finite"),
        (([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.0, 1.0]]]), "covs must be symmetric"),
        (([1.0], [[0.0, 0.0]], [[[1.0, 2.0], [2.0, 1.0]]]), "positive semi-definite"),
        (([1.0], [[0.0, 0.0]], [[1.0, 1.0, 1.0]]), "covs must have shape"),
        (([0.5, 0.5], [[0.0, 0.0]], [1.0]), "weights must have shape"),
    ],
)
def test_bad_input_names_the_argument(args, match):
    with pytest.raises(ValueError, match=match):
        hl.GaussianMixture(*args)


def test_bad_points_and_keys():
    gm = hl.GaussianMixture([1.0], [[0.0, 0.0]], [1.0])
    with pytest.raises(ValueError, match="x must have trailing dimension d=2"):
        gm.logpdf(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="x contains"):
        gm.score([np.nan, 0.0])
    with pytest.raises(ValueError, match="key must be a JAX PRNG key"):
        gm.sample(np.zeros(3), 5)
    with pytest.raises(ValueError, match="n must be"):
        gm.sample(jax.random.key(0), -1)
    with pytest.raises(ValueError, match="samples contains"):
        hl.empirical([[0.0], [np.inf]])


def _is_tracer(a):
    return isinstance(a, jax.core.Tracer)


def test_density_coefficients_cached_concrete_and_per_law():
    rng = np.random.default_rng(21)
    gm = random_mixture(rng, 5, 3, "full")
    x = 2.0 * rng.standard_normal((30, 3))
    # first use inside the caller's trace (the law closed over): the cache is computed eagerly, no tracer kept
    with jax.enable_x64(True):
        jitted = np.asarray(jax.jit(lambda y: gm.logpdf(y))(jnp.asarray(x)))
        grads = np.asarray(jax.jit(jax.vmap(jax.grad(lambda y: gm.logpdf(y))))(jnp.asarray(x)))
    coef = gm._density_coefficients()
    assert coef is gm._density_coefficients()  # computed once per law
    assert not any(_is_tracer(a) for a in coef)
    ref = scipy_logpdf(gm, x)
    np.testing.assert_allclose(jitted, ref, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(gm.logpdf(x)), ref, rtol=1e-12)
    np.testing.assert_allclose(grads, np.asarray(gm.score(x)), rtol=1e-10, atol=1e-12)
    with pytest.raises(AttributeError):
        gm._coef = None  # the law (and so its cache) is immutable
    # derived laws are new objects with their own coefficients, never the parent's
    w, m, S = (np.asarray(a) for a in (gm.weights, gm.means, gm.covs))
    with jax.enable_x64(True):
        unflattened = hl.GaussianMixture.tree_unflatten(True, (gm.weights, gm.means + 1.0, gm.covs * 2.0))
    derived = {
        "ou_push": hl.ou_push(gm, 0.4),
        "marginal": gm.marginal([0, 2]),
        "unflatten": unflattened,
        "rebuilt": hl.GaussianMixture(w, m - 0.5, S),
    }
    for name, law in derived.items():
        assert law.__dict__.get("_coef") is None, name
        pts = x[:, : law.dim]
        np.testing.assert_allclose(np.asarray(law.logpdf(pts)), scipy_logpdf(law, pts), rtol=1e-12, err_msg=name)
    # the parent's values are unchanged by its children's evaluations
    np.testing.assert_allclose(np.asarray(gm.logpdf(x)), ref, rtol=1e-12)


def test_traced_law_recomputes_its_coefficients():
    rng = np.random.default_rng(22)
    gm = random_mixture(rng, 4, 2, "diag")
    x = rng.standard_normal((10, 2))
    with jax.enable_x64(True):
        shifted = jax.jit(lambda g, y: hl.GaussianMixture.tree_unflatten(True, (g.weights, g.means + 0.7, g.covs)).logpdf(y))
        out = np.asarray(shifted(gm, jnp.asarray(x)))
    ref = hl.GaussianMixture(np.asarray(gm.weights), np.asarray(gm.means) + 0.7, np.asarray(gm.covs))
    np.testing.assert_allclose(out, scipy_logpdf(ref, x), rtol=1e-12)
    assert gm.__dict__.get("_coef") is None  # passing the law as an argument leaves its cache alone


@pytest.mark.parametrize("cov_type", ["iso", "full"])
def test_logpdf_single_pass_shift_and_far_fallback(cov_type):
    """Points near the law use the bound ``top`` as the shift; a block holding a point beyond the floor
    (row sum of exp(terms - top) < 1e-280) switches to the row maxima: both agree with scipy."""
    from hermite_limit import _mixture

    rng = np.random.default_rng(23)
    gm = random_mixture(rng, 7, 3, cov_type)
    near = 2.0 * rng.standard_normal((40, 3))
    far = near.copy()
    far[5] = [60.0, -45.0, 30.0]  # log-terms about -1e3 below top: exp underflows without the row maximum
    mu, _, _, W, top, W_shifted = gm._density_coefficients()
    np.testing.assert_allclose(np.asarray(W_shifted[:-1]), np.asarray(W[:-1]), rtol=0, atol=0)
    np.testing.assert_allclose(np.asarray(W_shifted[-1]), np.asarray(W[-1]) - float(top), rtol=1e-15)
    with jax.enable_x64(True):
        terms = np.asarray(_mixture._features(jnp.asarray(far) - mu, cov_type == "full") @ W)
    sums = np.exp(terms - float(top)).sum(axis=1)
    assert sums[5] < _mixture._SHIFT_FLOOR and np.delete(sums, 5).min() >= _mixture._SHIFT_FLOOR
    for pts in (near, far):
        np.testing.assert_allclose(np.asarray(gm.logpdf(pts)), scipy_logpdf(gm, pts), rtol=1e-12)
    # the bound really bounds every log-term
    assert terms.max() <= float(top) + 1e-12 * abs(float(top))
