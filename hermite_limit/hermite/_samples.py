"""Monte Carlo estimates of Hermite coefficients from samples, and the shared chunked sums.

For samples ``x_1..x_N`` of ``p``, ``a_n = E_p[h_n(X)]`` is estimated without bias by
``mean_i h_n(x_i)``, with standard error ``std_i(h_n(x_i)) / sqrt(N)`` (``ddof = 1``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ._indices import _tables
from ._polynomials import _products

# Points per chunk times multi-indices kept below this many float64 elements (32 MiB).
_CHUNK_ELEMENTS = 2**22


def weighted_sums(x, v, order: int, *, squares: bool = False, _groups: int = 0):
    """``S1_n = sum_i v_i h_n(x_i)``, ``A_n = sum_i |v_i h_n(x_i)|`` and (``squares``)
    ``S2_n = sum_i v_i h_n(x_i)^2`` for all ``|n| <= order``, chunked over points.

    ``x`` (P, d), ``v`` (P,) or (P, G) for G weightings at once. Returns (S1, A, S2) (S2 None
    unless asked), each (M,) or (G, M).
    """
    if v.ndim == 2:
        s1, a, s2 = weighted_sums(x, v.T.reshape(-1), order, squares=squares, _groups=v.shape[1])
        return s1, a, s2
    P, d = x.shape
    G = max(_groups, 1)
    tab = _tables(order, d)
    M = tab["indices"].shape[0]
    chunk = int(max(1, min(P, _CHUNK_ELEMENTS // max(M * (d + G), 1))))
    n_chunks = -(-P // chunk)
    pad = n_chunks * chunk - P
    xp = jnp.concatenate([x, jnp.zeros((pad, d), x.dtype)]).reshape(n_chunks, chunk, d)
    vp = jnp.concatenate([v.reshape(G, P), jnp.zeros((G, pad), v.dtype)], axis=1)
    vp = vp.reshape(G, n_chunks, chunk).transpose(1, 2, 0)
    s1, a, s2 = _sums(xp, vp, order=order, squares=squares)
    if not _groups:
        s1, a = s1[0], a[0]
        s2 = None if s2 is None else s2[0]
    return s1, a, s2


@functools.partial(jax.jit, static_argnames=("order", "squares"))
def _sums(xp, vp, *, order: int, squares: bool):
    d = xp.shape[-1]
    idx = _tables(order, d)["indices"]
    M = idx.shape[0]

    def body(carry, chunk):
        xc, vc = chunk
        H = _products(xc, idx, order)  # (chunk, M)
        s1, a, s2 = carry
        s1 = s1 + vc.T @ H  # (G, M)
        a = a + jnp.abs(vc).T @ jnp.abs(H)
        if squares:
            s2 = s2 + vc.T @ (H * H)
        return (s1, a, s2), None

    z = jnp.zeros((vp.shape[-1], M), dtype=xp.dtype)
    (s1, a, s2), _ = jax.lax.scan(body, (z, z, z), (xp, vp))
    return s1, a, (s2 if squares else None)


def sample_coefficients(x, order: int):
    """``(values, errors)``: sample means of ``h_n`` and their standard errors."""
    N = x.shape[0]
    v = jnp.full((N,), 1.0 / N, dtype=x.dtype)
    s1, _, s2 = weighted_sums(x, v, order, squares=True)
    var = jnp.maximum(s2 - s1 * s1, 0.0) * (N / max(N - 1, 1))
    return s1, jnp.sqrt(var / N)
