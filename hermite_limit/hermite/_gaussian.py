"""Exact Hermite coefficients of Gaussian mixtures (and of point masses / empirical laws).

For ``X ~ N(mu, Sigma)`` the unnormalised coefficients ``c_n = E[He_n(X)]`` have generating
function ``E exp(s.X - |s|^2/2) = exp(s.mu + s^T B s / 2)`` with ``B = Sigma - I``, hence

    c_{n+e_j} = mu_j c_n + sum_k B_jk n_k c_{n-e_k}.

With ``a_n = c_n / sqrt(n!)`` (``n! = prod_j n_j!``), ``c_{n+e_j} = sqrt(n!) sqrt(n_j+1) a_{n+e_j}``
and ``c_{n-e_k} = sqrt(n!) a_{n-e_k} / sqrt(n_k)``, so dividing by ``sqrt(n!)``:

    a_{n+e_j} = (mu_j a_n + sum_k B_jk sqrt(n_k) a_{n-e_k}) / sqrt(n_j + 1),

which never forms a factorial. In one dimension
``a_{n+1} = (mu a_n + (sigma^2 - 1) sqrt(n) a_{n-1}) / sqrt(n + 1)``. A point mass (``Sigma = 0``)
gives ``a_n = h_n(mu)``, the Hermite recurrence itself. The recursion runs level by level in
the total order (``lax.scan`` over levels, every component and every index of a level at once);
a mixture's coefficients are the weighted sum over components. In one dimension a dedicated body
carries only the two previous values per component and forms the weighted sums and the rounding
estimate after the loop (same values to rounding; about half the time of the general body).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .._mixture import GaussianMixture
from ._indices import _tables

EPS = float(np.finfo(np.float64).eps)


def exact_work_per_index(gm: GaussianMixture) -> float:
    """Float64 elements touched per multi-index (for the memory guard)."""
    K, d = gm.n_components, gm.dim
    return float(K * (d + 1) if gm.cov_type == "full" else 2 * K) + d


def mixture_coefficients(gm: GaussianMixture, order: int):
    """Exact ``(values, errors)`` of a mixture, both (M,) in graded order.

    ``errors`` is the rounding estimate ``4 eps (|n| + 2) sum_k w_k s_n^(k)`` with ``s_n^(k)`` the
    magnitude of the terms summed in the last recursion step for component ``k``
    (``(|mu_j a_{n-e_j}| + |sum_k ...|) / sqrt(n_j)``): relative error growing linearly in the
    order, measured against the terms rather than the result, so that values near a sign change
    and mixtures whose components cancel get an honest bound.
    """
    full = gm.cov_type == "full"
    d = gm.dim
    if d == 1:
        # one dimension: every structure is a variance per component; the scalar three-term recursion
        return _exact_1d(gm.weights, gm.means[:, 0], jnp.reshape(gm.covs, (-1,)) - 1.0, order=order)
    if full:
        B = gm.covs - jnp.eye(d)
    elif gm.cov_type == "diag":
        B = gm.covs - 1.0
    else:
        B = jnp.broadcast_to(gm.covs[:, None], gm.means.shape) - 1.0
    return _exact(gm.weights, gm.means, B, order=order, dim=d, full=full)


@functools.partial(jax.jit, static_argnames=("order", "dim", "full"))
def _exact(weights, means, B, *, order: int, dim: int, full: bool):
    tab = _tables(order, dim, full)
    W = tab["W"]
    K = means.shape[0]
    a0 = jnp.zeros((K, W), dtype=means.dtype).at[:, 0].set(1.0)
    level0 = jnp.zeros((2, W), dtype=means.dtype).at[:, 0].set(jnp.sum(weights))
    if order == 0:
        return _finish(level0[None], tab, order)

    xs = tuple(jnp.asarray(tab[k]) for k in ("j", "parent", "grand", "coef", "div"))

    def step(carry, level):
        prev2, prev1 = carry
        j, par, grand, coef, div = level
        lead = means[:, j] * prev1[:, par]  # (K, W)
        if full:
            Bj = B[:, j, :]  # (K, W, d)
            back = jnp.sum(Bj * coef[None] * prev2[:, grand], axis=-1)
        else:
            back = jnp.take_along_axis(B, jnp.broadcast_to(j, (K, W)), axis=1) * coef * prev2[:, grand]
        new = (lead + back) / div
        size = (jnp.abs(lead) + jnp.abs(back)) / div  # magnitude of the summed terms
        return (prev1, new), jnp.stack([weights @ new, weights @ size])

    _, levels = jax.lax.scan(step, (jnp.zeros_like(a0), a0), xs)
    return _finish(jnp.concatenate([level0[None], levels]), tab, order)


# Up to this many components the weighted sums over components are written as K fused multiply-adds:
# XLA's CPU dot and reduce kernels cost tens of microseconds on these (order, K) arrays.
_UNROLLED_SUM_MAX_K = 16


def _sum_components(a, weights):
    """``sum_k weights[k] a[..., k]``."""
    K = weights.shape[-1]
    if K > _UNROLLED_SUM_MAX_K:
        return a @ weights
    total = a[..., 0] * weights[0]
    for k in range(1, K):
        total = total + a[..., k] * weights[k]
    return total


@functools.partial(jax.jit, static_argnames=("order",))
def _exact_1d(weights, mu, B, *, order: int):
    """One dimension: the scan carries only ``(a_{L-2}, a_{L-1})`` per component; sums after the loop.

    Level ``L >= 2``: ``a_L = (mu a_{L-1} + (B sqrt(L-1)) a_{L-2}) / sqrt(L)`` with ``B = sigma^2 - 1``,
    ``a_0 = 1``, ``a_1 = mu`` -- the same operations, in the same order, as the general level body
    (whose tables give ``coef = sqrt(L-1)`` and ``div = sqrt(L)`` in one dimension), so the per-component
    values are the same and the mixture's differ only by the order of the weighted sum. The weighted
    sums and the rounding estimate (the magnitudes of the two summed terms) are computed once, vectorised
    over all levels, after the loop, whose body is then a single fused kernel.
    """
    a0 = jnp.ones_like(mu)
    total = jnp.sum(weights)
    if order == 0:
        return total[None], 4.0 * EPS * 2.0 * total[None]
    levels = np.arange(2, order + 1, dtype=np.float64)

    def step(carry, level):
        prev2, prev1 = carry
        c, dv = level
        new = (mu * prev1 + B * c * prev2) / dv
        return (prev1, new), new

    _, rest = jax.lax.scan(step, (a0, mu), (np.sqrt(levels - 1.0), np.sqrt(levels)))
    # the values do not go through the concatenated array (one copy fewer when only they are used)
    vals = jnp.concatenate([total[None], _sum_components(mu, weights)[None], _sum_components(rest, weights)])
    a = jnp.concatenate([jnp.zeros_like(mu)[None], a0[None], mu[None], rest])[: order + 1]  # a_{-1} = 0, a_0 .. a_{order-1}
    L = np.arange(1, order + 1, dtype=np.float64)
    lead = mu * a[1:]  # mu a_{L-1}, L = 1 .. order
    back = (B * np.sqrt(L - 1.0)[:, None]) * a[:-1]  # B sqrt(L-1) a_{L-2}
    size = (jnp.abs(lead) + jnp.abs(back)) / np.sqrt(L)[:, None]
    absum = jnp.concatenate([total[None], _sum_components(size, weights)])
    return vals, 4.0 * EPS * (np.arange(order + 1, dtype=np.float64) + 2.0) * absum


def _finish(levels, tab, order):
    """(order+1, 2, W) level sums -> graded (values, errors)."""
    flat = jnp.asarray(tab["flat"])
    vals = levels[:, 0, :].reshape(-1)[flat]
    absum = levels[:, 1, :].reshape(-1)[flat]
    L = jnp.asarray(tab["indices"].sum(axis=1), dtype=vals.dtype)
    return vals, 4.0 * EPS * (L + 2.0) * absum
