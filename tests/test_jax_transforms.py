"""jax.jit / grad / vmap over laws: closures and laws passed as arguments.

References: the eager call (same float64 arithmetic), the analytic score (grad of logpdf must equal
it) and central finite differences of the eager log-density.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hermite_limit as hl
from helpers import random_mixture


def _law(kind):
    rng = np.random.default_rng({"full": 1, "diag": 2, "iso": 3}.get(kind, 4))
    if kind in ("full", "diag", "iso"):
        return random_mixture(rng, 3, 2, kind)
    if kind == "pushed-empirical":
        return hl.ou_push(hl.empirical(rng.standard_normal((20, 2))), 0.2)
    data = hl.GaussianMixture([0.3, 0.7], [[-2.0, 0.5], [1.5, -1.0]], [0.25, 0.5])
    return hl.limit_distribution(data, alpha=0.5, t0=0.3, tol=1e-10)


KINDS = ["full", "diag", "iso", "pushed-empirical", "limit"]


@pytest.fixture(scope="module")
def points():
    return np.random.default_rng(7).standard_normal((6, 2)) * 1.5


@pytest.mark.parametrize("kind", KINDS)
def test_jit_closure_equals_eager(kind, points):
    law = _law(kind)
    with jax.enable_x64(True):
        x = jnp.asarray(points)
        for method in ("logpdf", "score"):
            eager = np.asarray(getattr(law, method)(points))
            jitted = jax.jit(lambda x: getattr(law, method)(x))(x)
            assert jitted.dtype == jnp.float64
            np.testing.assert_allclose(np.asarray(jitted), eager, rtol=1e-12, atol=1e-12)
            mapped = jax.vmap(lambda x: getattr(law, method)(x))(x)
            np.testing.assert_allclose(np.asarray(mapped), eager, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_grad_of_logpdf_is_score_and_matches_finite_differences(kind, points):
    law = _law(kind)
    with jax.enable_x64(True):
        grad = jax.jit(jax.vmap(jax.grad(lambda x: law.logpdf(x))))(jnp.asarray(points))
    score = np.asarray(law.score(points))
    np.testing.assert_allclose(np.asarray(grad), score, rtol=1e-10, atol=1e-10)
    h = 1e-5
    fd = np.stack(
        [(np.asarray(law.logpdf(points + h * e)) - np.asarray(law.logpdf(points - h * e))) / (2 * h) for e in np.eye(2)],
        axis=1,
    )
    np.testing.assert_allclose(score, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", ["full", "diag", "iso", "pushed-empirical"])
def test_law_as_jit_argument(kind, points):
    gm = _law(kind)
    with jax.enable_x64(True):
        f = jax.jit(lambda g, x: (g.logpdf(x), g.score(x)))
        lp, sc = f(gm, jnp.asarray(points))
    np.testing.assert_allclose(np.asarray(lp), np.asarray(gm.logpdf(points)), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(sc), np.asarray(gm.score(points)), rtol=1e-12, atol=1e-12)
    # gradient with respect to the law's parameters: d/dmeans of sum logpdf, against finite differences
    with jax.enable_x64(True):
        g_means = jax.grad(lambda g: g.logpdf(jnp.asarray(points)).sum())(gm).means
    h, k, i = 1e-6, 0, 1
    bump = np.zeros(gm.means.shape)
    bump[k, i] = h
    shifted = [
        np.asarray(hl.GaussianMixture(np.asarray(gm.weights), np.asarray(gm.means) + s * bump, np.asarray(gm.covs)).logpdf(points)
        ).sum()
        for s in (1, -1)
    ]
    np.testing.assert_allclose(float(g_means[k, i]), float(shifted[0] - shifted[1]) / (2 * h), rtol=1e-6, atol=2e-8)


def test_vmap_over_a_batch_of_laws(points):
    laws = [random_mixture(np.random.default_rng(s), 3, 2, "diag") for s in range(4)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *laws)
    with jax.enable_x64(True):
        out = jax.vmap(lambda g: g.logpdf(jnp.asarray(points)))(stacked)
    for row, law in zip(np.asarray(out), laws):
        np.testing.assert_allclose(row, np.asarray(law.logpdf(points)), rtol=1e-12)


def test_push_inside_jit_keeps_the_density(points):
    data = hl.empirical(np.random.default_rng(0).standard_normal((10, 2)))
    eager = np.asarray(hl.ou_push(data, 0.3).logpdf(points))
    with jax.enable_x64(True):
        jitted = jax.jit(lambda x: hl.ou_push(data, 0.3).logpdf(x))(jnp.asarray(points))
        traced_t = jax.jit(lambda t, x: hl.ou_push(hl.ou_push(data, 0.1), t).logpdf(x))(0.2, jnp.asarray(points))
    np.testing.assert_allclose(np.asarray(jitted), eager, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(traced_t), eager, rtol=1e-11)


def test_point_masses_have_no_density_under_jit():
    data = hl.empirical(np.zeros((3, 1)))
    assert data.has_density() is False
    with jax.enable_x64(True), pytest.raises(ValueError, match="no density"):
        jax.jit(lambda x: data.logpdf(x))(jnp.zeros(2))
    with jax.enable_x64(True), pytest.raises(ValueError, match="no density"):
        jax.jit(lambda g, x: g.score(x))(data, jnp.zeros(2))


@pytest.mark.parametrize("kind", ["full", "limit"])
def test_sample_under_jit_with_traced_key(kind):
    law = _law(kind)
    key = jax.random.key(3)
    eager = np.asarray(law.sample(key, 64))
    with jax.enable_x64(True):
        jitted = jax.jit(lambda k: law.sample(k, 64))(key)
    assert jitted.dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(jitted), eager)
    if kind == "full":
        keys = jax.random.split(key, 2)
        with jax.enable_x64(True):
            batched = jax.vmap(lambda k: law.sample(k, 64))(keys)
        np.testing.assert_array_equal(np.asarray(batched[1]), np.asarray(law.sample(keys[1], 64)))


def test_without_x64_in_the_caller_the_error_says_what_to_do(points):
    """A caller's 32-bit trace cannot host float64 code: a clear error naming the argument and the fix
    (eager calls need nothing: they run in float64 whatever the global flag)."""
    gm = _law("full")
    x32 = jnp.asarray(points, dtype=jnp.float32)
    for call in (lambda x: gm.logpdf(x), lambda x: gm.score(x), jax.grad(lambda x: gm.logpdf(x).sum())):
        with pytest.raises(ValueError, match="x is traced in a 32-bit JAX program.*enable_x64"):
            jax.jit(call)(x32)
    with pytest.raises(ValueError, match="key is traced in a 32-bit JAX program"):
        jax.jit(lambda k: gm.sample(k, 4))(jax.random.key(0))
    assert gm.logpdf(x32).dtype == jnp.float64


def test_limit_distribution_as_jit_argument(points):
    lim = _law("limit")
    with jax.enable_x64(True):
        lp, sc = jax.jit(lambda L, x: (L.logpdf(x), L.score(x)))(lim, jnp.asarray(points))
    np.testing.assert_allclose(np.asarray(lp), np.asarray(lim.logpdf(points)), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(sc), np.asarray(lim.score(points)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_laws_unflatten_from_placeholder_leaves_and_round_trip(kind, points):
    # JAX rebuilds pytrees from placeholder leaves (object(), None) in its own machinery, e.g. when it explains
    # a cache miss; the real leaves give back the same law (same log-density)
    law = _law(kind)
    leaves, treedef = jax.tree_util.tree_flatten(law)
    for placeholder in (object(), None):
        jax.tree_util.tree_unflatten(treedef, [placeholder] * len(leaves))
    again = jax.tree_util.tree_unflatten(treedef, leaves)
    np.testing.assert_array_equal(np.asarray(again.logpdf(points)), np.asarray(law.logpdf(points)))
