"""Normalised probabilists' Hermite polynomials and the Gauss-Hermite rule.

Conventions (fixed; docs/conventions.md, "Hermite basis"): ``He_n`` are the probabilists' polynomials, orthogonal
for the weight ``exp(-x^2/2)``; ``h_n = He_n / sqrt(n!)`` are orthonormal in ``L2(gamma)``,
``gamma = N(0, 1)``. In ``d`` dimensions ``h_n(x) = prod_j h_{n_j}(x_j)``.

Values are computed by the normalised three-term recurrence

    h_0 = 1,  h_1(x) = x,  h_{n+1}(x) = (x h_n(x) - sqrt(n) h_{n-1}(x)) / sqrt(n + 1),

which never forms ``n!`` and is accurate to a few ulps times ``n`` for the orders tested
(up to 150 in one dimension, against mpmath at 50 digits).
"""

from __future__ import annotations

import functools
import numbers
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy.linalg import eigvalsh_tridiagonal
from scipy.special import logsumexp

from .._precision import x64
from .._validation import FLOAT_BYTES, as_float_array, check_memory, check_positive_int, fmt, is_concrete
from ._indices import check_order

# Gauss-Hermite rules larger than this are refused (the Jacobi matrix is dense n x n).
MAX_NODES = 4096


@x64
def hermite_polynomials(x: Any, order: int) -> jax.Array:
    """Values ``h_0(x), ..., h_order(x)`` of the normalised Hermite polynomials.

    Parameters
    ----------
    x : array_like, any shape
        Evaluation points (JAX tracers allowed; then ``x`` is not checked).
    order : int >= 0
        Highest degree (static: changing it recompiles).

    Returns
    -------
    jax.Array, shape ``x.shape + (order + 1,)``, float64
        ``out[..., n] = h_n(x) = He_n(x) / sqrt(n!)``.

    Notes
    -----
    ``h_{n+1}(x) = (x h_n(x) - sqrt(n) h_{n-1}(x)) / sqrt(n+1)``; ``E_gamma[h_m h_n] = delta_mn``.
    The values grow like ``exp(x^2/4)`` in ``n``; float64 overflows only for ``|x|`` beyond about
    ``2 sqrt(order) + 35``.

    Examples
    --------
    >>> import hermite_limit as hl
    >>> [round(float(v), 12) for v in hl.hermite_polynomials(2.0, 3)]  # 1, x, (x^2-1)/sqrt2, (x^3-3x)/sqrt6
    [1.0, 2.0, 2.12132034356, 0.816496580928]
    """
    order = check_order(order, 1)
    if is_concrete(x):
        x = as_float_array("x", x)
    check_memory("order", FLOAT_BYTES * float(np.size(x)) * (order + 1), detail=f"{np.size(x)} points x {order + 1} degrees")
    return _polynomials(jnp.asarray(x, dtype=jnp.float64), order)


@functools.partial(jax.jit, static_argnames="order")
def _polynomials(x: jax.Array, order: int) -> jax.Array:
    """Unchecked ``h_0..h_order`` at ``x`` (any shape), last axis the degree."""
    ones = jnp.ones_like(x)
    if order == 0:
        return ones[..., None]

    def step(carry, n):
        prev, cur = carry
        nxt = (x * cur - jnp.sqrt(n) * prev) / jnp.sqrt(n + 1.0)
        return (cur, nxt), nxt

    _, rest = jax.lax.scan(step, (ones, x), jnp.arange(1, order, dtype=x.dtype))
    out = jnp.concatenate([ones[None], x[None], rest], axis=0)
    return jnp.moveaxis(out, 0, -1)


@x64
def hermite_products(x: Any, indices: Any) -> jax.Array:
    """Multivariate ``h_n(x) = prod_j h_{n_j}(x_j)`` for each row ``n`` of ``indices``.

    Parameters
    ----------
    x : array (..., d)
    indices : int array (M, d) of non-negative multi-indices (e.g. ``coeffs.indices``).

    Returns
    -------
    jax.Array, shape ``(..., M)``.
    """
    if indices is None or isinstance(indices, (str, bool, numbers.Number)):
        raise ValueError(f"indices must be an (M, d) array of non-negative integers; got {fmt(indices)}")
    try:
        idx = np.asarray(indices)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError("indices must be an (M, d) array of non-negative integers") from exc
    if idx.ndim != 2 or idx.shape[1] == 0 or not np.issubdtype(idx.dtype, np.integer) or np.any(idx < 0):
        raise ValueError(f"indices must be an (M, d) array of non-negative integers; got {fmt(idx)}")
    check_order(int(idx.max(initial=0)), 1, name="indices")
    if is_concrete(x):
        x = as_float_array("x", x)
    x = jnp.asarray(x, dtype=jnp.float64)
    if x.ndim == 0 or x.shape[-1] != idx.shape[1]:
        raise ValueError(f"x must have trailing dimension d={idx.shape[1]} to match indices; got shape {x.shape}")
    n_points = float(np.prod(x.shape[:-1]))
    check_memory("indices", FLOAT_BYTES * n_points * max(idx.shape[0], idx.shape[1] * (int(idx.max(initial=0)) + 1)),
                 detail=f"{n_points:.0f} points x {idx.shape[0]} multi-indices")
    return _products(x, idx, int(idx.max(initial=0)))


def _products(x: jax.Array, idx: np.ndarray, order: int) -> jax.Array:
    """``prod_j H[..., j, idx[:, j]]`` without materialising more than (..., M, d)."""
    H = _polynomials(x, order)  # (..., d, order+1)
    d = idx.shape[1]
    out = None
    for j in range(d):  # d <= a few: product over coordinates, (..., M) per step
        col = jnp.take(H[..., j, :], jnp.asarray(idx[:, j]), axis=-1)
        out = col if out is None else out * col
    return out


@x64
def gauss_hermite(n_nodes: int) -> tuple[jax.Array, jax.Array]:
    """Gauss-Hermite rule for the standard normal law, ``E_gamma[f] ~ sum_i w_i f(x_i)``.

    Parameters
    ----------
    n_nodes : int >= 1 (static)

    Returns
    -------
    nodes, weights : jax.Array (n_nodes,), float64
        Nodes ascending; weights are probability weights, ``sum_i w_i = 1``. The rule is exact
        for polynomials of degree ``<= 2 n_nodes - 1``.

    Notes
    -----
    Convention: weight ``exp(-x^2/2) / sqrt(2 pi)``, so the weights sum to 1. numpy's
    ``hermegauss(n)`` returns the same nodes with weights ``sqrt(2 pi) w_i`` (summing to
    ``sqrt(2 pi)``); chaospy's ``hermite(order)`` gives ``order + 1`` nodes summing to 1.

    Nodes are the eigenvalues of the Jacobi matrix (off-diagonal ``sqrt(k)``), polished by two
    Newton steps on ``h_n``; weights come from the Christoffel formula
    ``w_i = 1 / (n h_{n-1}(x_i)^2)``, evaluated with a rescaled recurrence in log scale so tiny
    tail weights are accurate relative to themselves and never overflow.

    Examples
    --------
    >>> import hermite_limit as hl
    >>> x, w = hl.gauss_hermite(3)
    >>> [round(float(v), 12) for v in x], [round(float(v), 12) for v in w]
    ([-1.732050807569, 0.0, 1.732050807569], [0.166666666667, 0.666666666667, 0.166666666667])
    """
    n = check_positive_int(n_nodes, "n_nodes", allow_zero=False)
    if n > MAX_NODES:
        raise ValueError(f"n_nodes must be <= {MAX_NODES}; got n_nodes={n}")
    return _gauss_hermite(n)


@functools.lru_cache(maxsize=64)
def _gauss_hermite(n: int):
    """The rule as float64 JAX arrays. It depends on ``n`` only, so it is computed once in numpy
    (no compilation per ``n``) and cached; under ``jit`` it enters as a constant."""
    x, w = _gauss_hermite_numpy(n)
    with jax.enable_x64(True):
        return jnp.asarray(x), jnp.asarray(w)


def _gauss_hermite_numpy(n: int):
    if n == 1:
        return np.zeros(1), np.ones(1)
    x = eigvalsh_tridiagonal(np.zeros(n), np.sqrt(np.arange(1.0, n)))
    x = 0.5 * (x - x[::-1])  # exact symmetry
    for _ in range(2):
        hn, hn1, _ = _scaled_pair(x, n)
        x = x - hn / (math.sqrt(n) * hn1)
    x = 0.5 * (x - x[::-1])
    _, hn1, log_scale = _scaled_pair(x, n)
    logw = -math.log(n) - 2.0 * (np.log(np.abs(hn1)) + log_scale)
    w = np.exp(logw - logsumexp(logw))
    return x, 0.5 * (w + w[::-1])


def _scaled_pair(x, n):
    """``(h_n(x), h_{n-1}(x)) * exp(-log_scale)`` by the recurrence, rescaled every step."""
    prev, cur, ls = np.ones_like(x), x.copy(), np.zeros_like(x)
    for k in range(1, n):
        nxt = (x * cur - math.sqrt(k) * prev) / math.sqrt(k + 1.0)
        s = np.maximum(np.abs(nxt), np.abs(cur))
        s = np.where(s > 0, s, 1.0)
        prev, cur, ls = cur / s, nxt / s, ls + np.log(s)
    return cur, prev, ls
