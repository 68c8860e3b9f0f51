"""Exact scores of P_t q: against hl.ou_push(q, t).score, padding, chunking, many components."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hermite_limit as hl
from hermite_limit.sampling import _score
from hermite_limit.sampling._score import pad_mixture

from helpers import random_mixture


@pytest.mark.parametrize("cov_type", ["iso", "diag", "full"])
@pytest.mark.parametrize("d", [1, 3])
@pytest.mark.parametrize("K", [1, 3, 5, 9])  # iso K <= 6 and diag K <= 4 take the unrolled component sum
def test_matches_pushed_mixture_score(cov_type, d, K):
    rng = np.random.default_rng(d + 10 * K)
    q = random_mixture(rng, K, d, cov_type)
    s = hl.mixture_score(q)
    x = 3.0 * rng.standard_normal((11, d))
    for t in [1e-3, 0.1, 1.0, 5.0]:
        ref = np.asarray(hl.ou_push(q, t).score(x))
        got = s(x, t)
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-10, atol=1e-10 * (1 + np.abs(ref).max()))


def test_traced_time_under_jit_and_vmap():
    rng = np.random.default_rng(0)
    q = random_mixture(rng, 4, 2, "full")
    s = hl.mixture_score(q)
    x = rng.standard_normal((5, 2))
    ts = np.array([0.05, 0.5, 2.0])
    with jax.enable_x64(True):
        got = jax.jit(jax.vmap(lambda t: s(x, t)))(jnp.asarray(ts))
    for t, g in zip(ts, np.asarray(got)):
        np.testing.assert_allclose(g, np.asarray(hl.ou_push(q, t).score(x)), rtol=1e-10, atol=1e-12)


def test_empirical_point_masses_and_many_components():
    """K = 3000 point masses: finite scores far away and near points (log-sum-exp), equal to ou_push."""
    rng = np.random.default_rng(1)
    pts = rng.standard_normal((3000, 2))
    q = hl.empirical(pts)
    s = hl.mixture_score(q)
    x = np.concatenate([pts[:3] + 1e-3, 50.0 * rng.standard_normal((3, 2))])
    t = 0.01
    got = np.asarray(s(x, t))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, np.asarray(hl.ou_push(q, t).score(x)), rtol=1e-9, atol=1e-9)


def test_padding_and_chunking_do_not_change_the_score(monkeypatch):
    rng = np.random.default_rng(2)
    q = random_mixture(rng, 3, 2, "diag")
    x = rng.standard_normal((37, 2))
    ref = np.asarray(hl.mixture_score(q)(x, 0.3))
    padded = hl.mixture_score(pad_mixture(q, 8))
    np.testing.assert_allclose(np.asarray(padded(x, 0.3)), ref, rtol=1e-13, atol=1e-14)
    monkeypatch.setattr(_score, "_MAX_ELEMENTS", 40)  # chunks of 5 rows, with padding of the last chunk
    np.testing.assert_allclose(np.asarray(hl.mixture_score(q)(x, 0.3)), ref, rtol=1e-13, atol=1e-14)
