"""The samplers' Box-Muller noise: trigonometry to rounding, the N(0, 1) law within sampling error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from hermite_limit.sampling._noise import sincos_turns, standard_normal, uniform_open


@given(st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=50))
def test_sincos_turns_equals_numpy(us):
    u = np.asarray(us, dtype=np.float64)
    with jax.enable_x64(True):
        s, c = sincos_turns(jnp.asarray(u))
    # numpy's sin(2 pi u) carries the rounding of 2 pi u (<= 2 pi eps); ours is within a few eps of it
    np.testing.assert_allclose(np.asarray(s), np.sin(2 * np.pi * u), rtol=0, atol=4e-15)
    np.testing.assert_allclose(np.asarray(c), np.cos(2 * np.pi * u), rtol=0, atol=4e-15)


def test_uniform_grid_endpoints():
    bits = np.array([0, 2**64 - 1, 2**63], dtype=np.uint64)
    with jax.enable_x64(True):
        u = np.asarray(uniform_open(jnp.asarray(bits)))
    np.testing.assert_array_equal(u, [2.0**-54, 1 - 2.0**-54, 0.5 + 2.0**-54])


@pytest.mark.parametrize("shape", [(7,), (400_000, 5)])
def test_same_key_same_draws_and_shape(shape, getkey):
    key = getkey()
    a, b = standard_normal(key, shape), standard_normal(key, shape)
    assert a.shape == shape and a.dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(standard_normal(getkey(), shape)))


def test_normal_law_within_sampling_error(getkey):
    n = 2_000_000
    z = np.asarray(standard_normal(getkey(), (n // 10, 10))).ravel()
    # moments 1..4 against their standard errors (Var z^k = E z^2k - (E z^k)^2)
    exact = {1: 0.0, 2: 1.0, 3: 0.0, 4: 3.0}
    var = {1: 1.0, 2: 2.0, 3: 15.0, 4: 96.0}
    for k in exact:
        se = np.sqrt(var[k] / n)
        assert abs(np.mean(z**k) - exact[k]) < 5 * se, k
    # binned counts (including both tails beyond 3 sigma) against the normal CDF: chi-square test
    edges = np.concatenate([[-np.inf], np.linspace(-3.5, 3.5, 57), [np.inf]])
    counts = np.histogram(z, edges)[0]
    expected = n * np.diff(scipy.stats.norm.cdf(edges))
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert scipy.stats.chi2.sf(chi2, len(counts) - 1) > 1e-4
    # each Box-Muller pair (r cos, r sin) sits at (i, i + n/2) of the flat draw: uncorrelated, also in squares
    a, b = z[: n // 2], z[n // 2 :]
    assert abs(np.mean(a * b)) < 5 * np.sqrt(1.0 / (n // 2))
    assert abs(np.mean(a * a * b * b) - 1.0) < 5 * np.sqrt((9.0 - 1.0) / (n // 2))
    # Kolmogorov-Smirnov against Phi
    assert scipy.stats.kstest(z[:200_000], "norm").pvalue > 1e-4
