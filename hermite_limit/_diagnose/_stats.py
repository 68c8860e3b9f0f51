"""Sample Hermite coefficient vectors of one sample set, their covariance, and bootstrap replicates.

For samples ``x_1..x_N`` the coefficient vector ``a = (a_n)_{1 <= |n| <= order}`` (graded order, the
constant mode excluded) is estimated by ``a_hat = mean_j h(x_j)`` with ``h(x) = (h_n(x))_n``; its
covariance is estimated by ``Sigma_hat = cov_j(h(x_j)) / N`` (``ddof = 1``). A bootstrap replicate
resamples the N points with replacement (multinomial counts ``c_j``, ``sum_j c_j = N``) and takes
``sum_j c_j h(x_j) / N``; the covariance is kept at the full-sample ``Sigma_hat`` (a fixed-weight
bootstrap, see :func:`hermite_limit._diagnose`).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from .._precision import x64
from ..hermite._indices import _tables
from ..hermite._polynomials import _products

_CHUNK_ELEMENTS = 2**21


@dataclasses.dataclass(frozen=True)
class SampleStats:
    """``mean`` (M,), ``cov`` (M, M) covariance of ``mean``, ``n`` points, ``boot`` (B, M) or None."""

    mean: np.ndarray
    cov: np.ndarray
    n: int
    boot: np.ndarray | None


@x64
def sample_stats(x: np.ndarray, order: int, *, key=None, n_boot: int = 0) -> SampleStats:
    """Coefficient vector (orders 1..order), its covariance and ``n_boot`` bootstrap replicates."""
    x = jnp.asarray(x, dtype=jnp.float64)
    P, d = x.shape
    M = _tables(order, d)["indices"].shape[0]
    B = int(n_boot)
    chunk = int(max(1, min(P, max(256, _CHUNK_ELEMENTS // (M + B + d)))))
    n_chunks = -(-P // chunk)
    pad = n_chunks * chunk - P
    xp = jnp.concatenate([x, jnp.zeros((pad, d), x.dtype)]).reshape(n_chunks, chunk, d)
    mask = jnp.concatenate([jnp.ones(P), jnp.zeros(pad)]).reshape(n_chunks, chunk)
    if B:
        if key is None:
            raise ValueError("key is required for bootstrap replicates (n_boot > 0)")
        idx = jax.random.randint(key, (B, P), 0, P)
        counts = jax.vmap(lambda i: jnp.bincount(i, length=P))(idx).astype(jnp.float64)  # (B, P)
        wp = jnp.concatenate([counts, jnp.zeros((B, pad))], axis=1).reshape(B, n_chunks, chunk).transpose(1, 2, 0)
    else:
        wp = jnp.zeros((n_chunks, chunk, 0))
    s1, s2, sb = _sums(xp, mask, wp, order=order)
    mean = s1 / P
    cov = (s2 - P * jnp.outer(mean, mean)) / max(P - 1, 1) / P
    boot = sb / P if B else None
    return SampleStats(np.asarray(mean), np.asarray(cov), P, None if boot is None else np.asarray(boot))


@functools.partial(jax.jit, static_argnames=("order",))
def _sums(xp, mask, wp, *, order: int):
    d = xp.shape[-1]
    idx = _tables(order, d)["indices"][1:]
    M = idx.shape[0]
    B = wp.shape[-1]

    def body(carry, chunk):
        xc, mc, wc = chunk
        H = _products(xc, idx, order) * mc[:, None]  # (chunk, M)
        s1, s2, sb = carry
        return (s1 + H.sum(0), s2 + H.T @ H, sb + wc.T @ H), None

    init = (jnp.zeros(M), jnp.zeros((M, M)), jnp.zeros((B, M)))
    (s1, s2, sb), _ = jax.lax.scan(body, init, (xp, mask, wp))
    return s1, s2, sb


@x64
def batch_stats(x, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Means (R, M) and covariances of the means (R, M, M) of R sample sets ``x`` (R, n, d) at once."""
    x = jnp.asarray(x, dtype=jnp.float64)
    R, P, d = x.shape
    s1, s2 = _batch_sums(x, order=order)
    mean = s1 / P
    cov = (s2 - P * mean[:, :, None] * mean[:, None, :]) / max(P - 1, 1) / P
    return np.asarray(mean), np.asarray(cov)


@functools.partial(jax.jit, static_argnames=("order",))
def _batch_sums(x, *, order: int):
    d = x.shape[-1]
    idx = _tables(order, d)["indices"][1:]

    def one(xr):
        H = _products(xr, idx, order)
        return H.sum(0), H.T @ H

    return jax.lax.map(one, x)
