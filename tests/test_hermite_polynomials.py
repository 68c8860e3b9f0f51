"""Normalised Hermite polynomials, multi-index products and the Gauss-Hermite rule."""

import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import hermite_limit as hl
from hermite_limit.reference import hermite_polynomials_mp


@pytest.mark.parametrize("x", [-7.3, -2.0, -0.31, 0.0, 0.5, 1.0, 3.7, 9.0, 15.0])
def test_polynomials_match_mpmath_order_150(x):
    got = np.asarray(hl.hermite_polynomials(x, 150))
    ref = np.array([float(v) for v in hermite_polynomials_mp(x, 150)])
    # Scale: the local envelope sqrt(h_n^2 + h_{n-1}^2) (values pass through zero).
    env = np.sqrt(ref**2 + np.concatenate([[0.0], ref[:-1] ** 2]))
    assert got.dtype == np.float64
    assert np.all(np.abs(got - ref) <= 1e-12 * env)


def test_polynomials_low_degree_closed_forms():
    x = np.linspace(-3, 3, 13)
    H = np.asarray(hl.hermite_polynomials(x, 4))
    assert H.shape == (13, 5)
    np.testing.assert_allclose(H[:, 2], (x**2 - 1) / math.sqrt(2), rtol=0, atol=1e-14)
    np.testing.assert_allclose(H[:, 3], (x**3 - 3 * x) / math.sqrt(6), rtol=0, atol=1e-13)
    np.testing.assert_allclose(H[:, 4], (x**4 - 6 * x**2 + 3) / math.sqrt(24), rtol=0, atol=1e-13)


def test_polynomials_jit_and_vmap():
    f = jax.jit(lambda x: hl.hermite_polynomials(x, 20))
    x = jnp.linspace(-2, 2, 5)
    np.testing.assert_allclose(np.asarray(f(x)), np.asarray(hl.hermite_polynomials(np.linspace(-2, 2, 5), 20)), atol=1e-14)


@pytest.mark.parametrize("n", [1, 2, 5, 20, 64, 150])
def test_gauss_hermite_matches_numpy_hermegauss(n):
    x, w = hl.gauss_hermite(n)
    xn, wn = np.polynomial.hermite_e.hermegauss(n)
    assert x.dtype == np.float64 and w.dtype == np.float64
    np.testing.assert_allclose(np.asarray(x), xn, rtol=0, atol=1e-12 * max(1.0, np.abs(xn).max()))
    # Convention: probability weights; numpy's sum to sqrt(2 pi).
    np.testing.assert_allclose(np.asarray(w), wn / math.sqrt(2 * math.pi), rtol=1e-11)
    assert abs(float(np.sum(np.asarray(w))) - 1.0) < 1e-14


def test_gauss_hermite_tiny_weights_vs_mpmath():
    x, w = hl.gauss_hermite(60)
    # Christoffel: w_i = 1 / sum_{k<n} h_k(x_i)^2, evaluated at 50 digits at the computed node.
    with mp.workdps(50):
        for i in (0, 1, 30):
            hk = hermite_polynomials_mp(float(x[i]), 59)
            ref = 1 / mp.fsum(v * v for v in hk)
            assert abs(float(w[i]) - float(ref)) <= 1e-11 * float(ref)


def test_gauss_hermite_gram_matrix_degree_100():
    x, w = hl.gauss_hermite(101)
    V = np.asarray(hl.hermite_polynomials(x, 100))
    G = (V.T * np.asarray(w)) @ V
    assert np.max(np.abs(G - np.eye(101))) < 1e-12


def test_products_multi_index():
    x = np.array([[0.3, -1.2, 2.0], [1.0, 0.0, -0.5]])
    idx = hl.graded_indices(4, 3)
    P = np.asarray(hl.hermite_products(x, idx))
    H = np.asarray(hl.hermite_polynomials(x, 4))  # (2, 3, 5)
    ref = H[:, 0, idx[:, 0]] * H[:, 1, idx[:, 1]] * H[:, 2, idx[:, 2]]
    np.testing.assert_allclose(P, ref, rtol=1e-14, atol=1e-15)


def test_graded_indices():
    idx = hl.graded_indices(3, 2)
    assert idx.shape == (math.comb(5, 2), 2)
    assert np.all(np.diff(idx.sum(1)) >= 0) and tuple(idx[0]) == (0, 0)
    assert len({tuple(r) for r in idx}) == idx.shape[0]
    np.testing.assert_array_equal(hl.graded_indices(7, 1)[:, 0], np.arange(8))


def test_bad_inputs():
    with pytest.raises(ValueError, match="order"):
        hl.hermite_polynomials(1.0, -1)
    with pytest.raises(ValueError, match="x"):
        hl.hermite_polynomials([1.0, np.nan], 3)
    with pytest.raises(ValueError, match="n_nodes"):
        hl.gauss_hermite(0)
    with pytest.raises(ValueError, match="n_nodes"):
        hl.gauss_hermite(10**6)
    with pytest.raises(ValueError, match="indices"):
        hl.hermite_products(np.zeros((2, 2)), np.array([[1, -1]]))
    with pytest.raises(ValueError, match="x"):
        hl.hermite_products(np.zeros((2, 3)), np.array([[1, 1]]))
