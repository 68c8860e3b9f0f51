"""The samplers' Box-Muller noise: trigonometry to rounding, the N(0, 1) law within sampling error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from hermite_limit._noise import (
    log_unit,
    noise_bits,
    noise_layout,
    normals_from_bits,
    sincos_turns,
    standard_normal,
    threefry_bits,
    uniform_open,
)
from hermite_limit.sampling._solvers import scan_loop


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
    # each Box-Muller pair (r cos, r sin) sits at (m, M + m) of each block: uncorrelated, also in squares
    blocks, pairs = noise_layout((n // 10, 10))
    zb = z.reshape(blocks, 2, pairs)
    a, b = zb[:, 0].ravel(), zb[:, 1].ravel()
    assert abs(np.mean(a * b)) < 5 * np.sqrt(1.0 / (n // 2))
    assert abs(np.mean(a * a * b * b) - 1.0) < 5 * np.sqrt((9.0 - 1.0) / (n // 2))
    # Kolmogorov-Smirnov against Phi
    assert scipy.stats.kstest(z[:200_000], "norm").pvalue > 1e-4


@given(st.lists(st.floats(2.0**-60, 1.0), min_size=1, max_size=50))
def test_log_unit_equals_numpy(us):
    u = np.asarray(us + [2.0**-54, 1 - 2.0**-54, 0.5, 1.0, np.sqrt(2) / 2, np.nextafter(np.sqrt(2) / 2, 1)])
    with jax.enable_x64(True):
        got = np.asarray(log_unit(jnp.asarray(u)))
    np.testing.assert_allclose(got, np.log(u), rtol=4e-16, atol=1e-300)


@pytest.mark.parametrize("size", [1, 7, 4096, 300_001])
def test_threefry_bits_equal_jax_random_bits(size):
    # the unrolled hash is a re-implementation: JAX's own generator is the reference, bit for bit
    for key in (jax.random.key(0), jax.random.key(2**31 + 12345), jax.random.PRNGKey(99)):
        with jax.enable_x64(True):
            ours = np.asarray(jax.jit(threefry_bits, static_argnums=1)(key, size))
            ref = np.asarray(jax.random.bits(key, (size,), dtype=jnp.uint64))
        np.testing.assert_array_equal(ours, ref)


def test_other_generators_fall_back_to_jax_random_bits():
    key = jax.random.key(3, impl="rbg")
    with jax.enable_x64(True):
        np.testing.assert_array_equal(np.asarray(threefry_bits(key, 10)),
                                      np.asarray(jax.random.bits(key, (10,), dtype=jnp.uint64)))


@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5), (96, 3), (100_000, 10), (2**7 * 3, 2)])
def test_layout_blocks_divide_rows_and_cover_the_shape(shape):
    blocks, pairs = noise_layout(shape)
    rows = shape[0] if shape else 1
    size = int(np.prod(shape))
    assert rows % blocks == 0 and blocks <= 64 and blocks & (blocks - 1) == 0
    assert 2 * pairs * blocks >= size > 2 * (pairs - 1) * blocks
    assert blocks == min(64, rows & -rows) or rows % (2 * blocks) != 0
    z = standard_normal(jax.random.key(5), shape)
    assert z.shape == shape and np.all(np.isfinite(np.asarray(z)))
    with jax.enable_x64(True):
        bits = noise_bits(jax.random.key(5), shape)
        fast = noise_bits(jax.random.key(5), shape, fast=True)
        np.testing.assert_array_equal(np.asarray(bits), np.asarray(fast))
        np.testing.assert_array_equal(np.asarray(normals_from_bits(bits, shape)), np.asarray(z))


def test_box_muller_pairs_are_the_documented_elements():
    shape = (96, 3)  # 96 rows = 32 blocks of 3 rows: 9 elements, 5 pairs per block (one sine dropped)
    blocks, pairs = noise_layout(shape)
    with jax.enable_x64(True):
        bits = np.asarray(noise_bits(jax.random.key(8), shape))
        u1, u2 = (bits >> 11).astype(np.float64) + 0.5, (bits[1] >> 11).astype(np.float64) + 0.5
        r = np.sqrt(-2 * np.log(u1[0] * 2.0**-53))
        phi = 2 * np.pi * u2 * 2.0**-53
        z = np.asarray(standard_normal(jax.random.key(8), shape)).reshape(blocks, -1)
    per_block = z.shape[1]
    np.testing.assert_allclose(z[:, :pairs], r * np.cos(phi), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(z[:, pairs:], (r * np.sin(phi))[:, : per_block - pairs], rtol=1e-13, atol=1e-14)


def test_sampler_loop_draws_standard_normal_of_fold_in(getkey):
    # with s(x, t) = -x / 2 the Euler-Maruyama drift vanishes: Y_N - Y_0 = sum_k sqrt(2 h_k) Z_k, and the
    # carried noise must be Z_k = standard_normal(fold_in(key, k), (n, d)) step by step
    key, n, d = getkey(), 40, 3
    times = jnp.asarray([1.0, 0.7, 0.45, 0.3, 0.2])
    with jax.enable_x64(True):
        y0 = jnp.zeros((n, d))
        y, _, _ = jax.jit(lambda y: scan_loop(key, y, times, lambda x, t: -0.5 * x, "em"))(y0)
        h = -np.diff(np.asarray(times))
        ref = sum(np.sqrt(2 * h[k]) * np.asarray(standard_normal(jax.random.fold_in(key, k), (n, d)))
                  for k in range(len(h)))
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-13, atol=1e-13)
