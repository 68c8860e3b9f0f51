"""An imperfect learner: a Gaussian mixture fitted to particles by a fixed number of EM steps (JAX)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import logsumexp

from .._mixture import GaussianMixture, as_mixture
from .._validation import FLOAT_BYTES, as_float_array, check_int, check_memory, is_concrete, real_scalar

_LOG_2PI = 1.8378770664093453


def fit_gmm(x, init: GaussianMixture, n_iter: int = 30, reg: float = 1e-6) -> GaussianMixture:
    """Full-covariance EM for a ``K``-component mixture on samples ``x`` (n, d), warm-started at ``init``.

    ``x`` finite, shape (n, d) with ``n >= 1``; ``init`` a mixture of the same ``d``; ``n_iter >= 0``;
    ``reg > 0`` (checked when concrete; the (n, K, d) work array must fit the memory budget).

    Notes
    -----
    E-step: ``r_nk = softmax_k(log w_k + log N(x_n; m_k, S_k))`` (Cholesky, log-sum-exp). M-step:
    ``w_k = mean_n r_nk``, ``m_k = sum_n r_nk x_n / N_k``, ``S_k = sum_n r_nk (x_n - m_k)(x_n - m_k)^T / N_k
    + reg I``. A component whose responsibility mass vanishes keeps its previous parameters.
    """
    init = as_mixture(init, "init")
    n_iter = check_int(n_iter, "n_iter", minimum=0)
    if is_concrete(x):
        arr = as_float_array("x", x, ndim=2)
        if arr.shape[0] < 1 or arr.shape[1] != init.dim:
            raise ValueError(f"x must have shape (n, {init.dim}) with n >= 1 to match init; got shape {arr.shape}")
        check_memory("x", 3.0 * FLOAT_BYTES * arr.shape[0] * init.n_components * init.dim,
                     detail=f"{arr.shape[0]} samples x {init.n_components} components x d={init.dim}")
    if is_concrete(reg):
        reg = real_scalar("reg", reg, low=0.0, low_open=True)
    return _fit_gmm(x, init, n_iter, reg)


@functools.partial(jax.jit, static_argnames=("n_iter",))
def _fit_gmm(x, init: GaussianMixture, n_iter: int, reg) -> GaussianMixture:
    n, d = x.shape
    eye = jnp.eye(d)
    w0, m0, S0 = init.weights, init.means, init.full_covs() + reg * eye

    def em(_, state):
        w, m, S = state
        L = jnp.linalg.cholesky(S)
        diff = x[:, None, :] - m[None]  # (n, K, d)
        y = solve_triangular(L[None], diff[..., None], lower=True)[..., 0]
        logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(L, axis1=1, axis2=2)), axis=1)
        lt = jnp.log(w) - 0.5 * jnp.sum(y * y, axis=-1) - 0.5 * logdet - 0.5 * d * _LOG_2PI
        r = jnp.exp(lt - logsumexp(lt, axis=1, keepdims=True))
        Nk = r.sum(axis=0)
        ok = Nk > 1e-8 * n
        safe = jnp.where(ok, Nk, 1.0)
        m_new = (r.T @ x) / safe[:, None]
        c = x[:, None, :] - m_new[None]
        S_new = jnp.einsum("nk,nki,nkj->kij", r, c, c) / safe[:, None, None] + reg * eye
        w_new = Nk / n
        return (
            jnp.where(ok, w_new, 0.0) / jnp.sum(jnp.where(ok, w_new, 0.0)),
            jnp.where(ok[:, None], m_new, m),
            jnp.where(ok[:, None, None], S_new, S),
        )

    w, m, S = jax.lax.fori_loop(0, n_iter, em, (w0, m0, S0))
    return GaussianMixture.tree_unflatten(None, (w, m, 0.5 * (S + jnp.swapaxes(S, 1, 2))))
