"""Exact time-dependent scores ``grad log (P_t q)`` of Gaussian-mixture training laws.

``P_t q`` is the mixture with components ``N(rho m_k, rho^2 S_k + (1 - rho^2) I)``, ``rho = e^{-t}``
(see ``hl.ou_push``). Its score is ``-sum_k r_k(x, t) C_k(t)^{-1} (x - rho m_k)`` with responsibilities
``r_k = softmax_k(log w_k + log N(x; rho m_k, C_k(t)))`` computed by log-sum-exp, so thousands of
components (and points far from the data) are stable.

Efficiency for a whole time grid with ``t`` traced:

- ``iso`` / ``diag``: ``C_k(t)`` is diagonal, and the quadratic forms are three matrix products
  ``|x|^2_P - 2 rho x.(P m) + rho^2 |m|^2_P`` over the component axis (no (n, K, d) array).
- ``full``: ``S_k = U_k diag(lam_k) U_k^T`` is diagonalised once; then
  ``C_k(t) = U_k diag(rho^2 lam_k + 1 - rho^2) U_k^T`` for every ``t`` with the same eigenvectors, so no
  Cholesky factorisation is needed inside the time loop.

Large ``n x K`` products are evaluated in chunks of particles (``lax.map``) to bound memory.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from .._mixture import GaussianMixture, as_mixture
from .._precision import x64
from .._validation import as_float_array, check_time, fmt, is_concrete

_LOG_2PI = 1.8378770664093453
# Elements of the largest (chunk, K[, d]) temporary (128 MiB); above this the particles are processed in chunks.
# Chunks cost speed on CPU (XLA threads small arrays less well), so the bound only caps memory.
_MAX_ELEMENTS = 2**24
# Up to this many components the score is a sum over components of (n,) vectors (one pass over x per
# component) instead of matrix products with (n, K) results. Measured in the sampler loop (n = 10^5,
# d = 10): iso K = 2 / 5 / 8 take 0.57 / 0.80 / 1.10x the matmul form's step, diag K = 2 / 5: 0.71 / 1.02x.
_UNROLL_MAX_COMPONENTS = {"iso": 6, "diag": 4}


class MixtureScore(eqx.Module):
    """The exact score ``s(x, t) = grad_x log (P_t q)(x)`` of a Gaussian mixture ``q``.

    A pytree (so it can be passed into ``jit`` without recompiling when its values change) and a
    callable ``s(x, t)``: ``x`` of shape (n, d) or (d,), ``t >= 0`` a scalar (may be traced; ``t > 0`` when
    ``q`` has point masses or singular covariances). Build it with :func:`mixture_score`.

    Eager calls check ``x`` (finite, trailing dimension ``d``) and ``t`` (finite, ``>= 0``) and refuse a
    non-finite result (``ValueError`` naming ``x`` or ``t``): the score is computed whenever the squared
    distance to the components over their variance at time ``t`` stays below about 1e300 (e.g. ``|x|`` up
    to about 1e150 for unit variances). Inside a caller's ``jit`` / ``vmap`` / ``grad`` nothing is checked.
    """

    log_weights: jax.Array  # (K,)
    means: jax.Array  # (K, d); for "full": rotated means U_k^T m_k
    lam: jax.Array  # (K,) iso, (K, d) diag / full (eigenvalues)
    vecs: Any  # (K, d, d) eigenvectors for "full", else None
    cov_type: str = eqx.field(static=True)

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @property
    def n_components(self) -> int:
        return int(self.means.shape[0])

    def __call__(self, x, t):
        single = self._check_args(x, t)
        with jax.enable_x64(True):
            x = jnp.asarray(x, dtype=jnp.float64)
            x2 = x[None] if single else x
            t = jnp.asarray(t, dtype=jnp.float64)
            out = _chunked(lambda xc: _score_rows(self, xc, t), x2, self._chunk_rows())
            out = out[0] if single else out
        self._check_output(out, x, t, "score")
        return out

    def log_density(self, x, t):
        """``log (P_t q)(x)`` for ``x`` of shape (n, d)."""
        if self._check_args(x, t):
            raise ValueError(f"x must have shape (n, {self.dim}) for log_density; got shape {np.shape(x)}")
        with jax.enable_x64(True):
            x = jnp.asarray(x, dtype=jnp.float64)
            t = jnp.asarray(t, dtype=jnp.float64)
            lt = _chunked(lambda xc: logsumexp(_log_terms(self, xc, t)[0], axis=1)[:, None], x, self._chunk_rows())
            out = lt[:, 0]
        self._check_output(out, x, t, "log-density")
        return out

    def _check_args(self, x, t) -> bool:
        """Eager checks of ``x`` ((n, d) or (d,), finite) and ``t`` (finite, >= 0; > 0 with point masses).

        Returns whether ``x`` is a single point (d,). Tracers (inside a caller's jit / vmap / grad) pass.
        """
        d = self.dim
        if is_concrete(x):
            arr = as_float_array("x", x)
            if arr.ndim not in (1, 2) or arr.shape[-1] != d:
                raise ValueError(f"x must have shape (n, {d}) or ({d},); got shape {arr.shape}")
        if is_concrete(t):
            t_value = check_time(t, "t", allow_zero=True)
            if t_value == 0.0 and is_concrete(self.lam) and self._singular():
                raise ValueError(
                    "t must be > 0 for a law with point masses or singular covariances (e.g. hl.empirical "
                    "samples): the score of P_t q does not exist at t = 0; got t=0"
                )
        return np.ndim(x) == 1

    def _singular(self) -> bool:
        lam = np.asarray(self.lam)
        w = np.exp(np.asarray(self.log_weights))
        smallest = lam if lam.ndim == 1 else lam.min(axis=-1)
        return bool(np.any(smallest[w > 0] <= 0.0))

    def _check_output(self, out, x, t, what: str) -> None:
        """Refuse a non-finite result of finite input: it overflowed float64 (eager calls only)."""
        if not (is_concrete(out) and is_concrete(x) and is_concrete(t)):
            return
        if np.all(np.isfinite(np.asarray(out))):
            return
        reach = float(np.max(np.abs(np.asarray(x)))) if x.size else 0.0
        name = "x" if reach > 1e100 else "t"
        raise ValueError(
            f"{name} out of range: the {what} of P_t q overflows float64 here (max|x| = {fmt(reach)}, "
            f"t = {fmt(float(t))}); the squared distance to the components divided by their variance at time t must stay below about "
            "1e300; bring x closer to the data (x is too far) or use a larger t (for point masses the variance "
            "at time t is 1 - e^{-2t})"
        )

    def _chunk_rows(self) -> int:
        per_row = self.n_components * (self.dim if self.cov_type == "full" else 1)
        return max(1, _MAX_ELEMENTS // max(per_row, 1))


@x64
def mixture_score(q: Any) -> MixtureScore:
    """The exact time-dependent score ``(x, t) -> grad log (P_t q)(x)`` of a Gaussian mixture.

    Parameters
    ----------
    q : GaussianMixture
        The training law (any ``d``; iso, diag or full covariances; point masses allowed, since
        ``P_t q`` has a density for every ``t > 0``).

    Returns
    -------
    MixtureScore
        A callable pytree ``s(x, t)``; ``x`` (n, d) or (d,), ``t`` a (traced) scalar ``> 0``.

    Notes
    -----
    ``s(x, t) = -sum_k r_k(x, t) C_k(t)^{-1} (x - rho m_k)``, ``C_k(t) = rho^2 S_k + (1 - rho^2) I``,
    ``rho = e^{-t}``, ``r = softmax(log w_k + log N(x; rho m_k, C_k(t)))``. Equal to
    ``hl.ou_push(q, t).score(x)`` but with per-``t`` work reduced to elementwise operations and
    matrix products (full covariances are diagonalised once, at construction). At ``t = 0`` the
    score of a mixture with point masses does not exist (division by zero).

    Examples
    --------
    >>> import hermite_limit as hl
    >>> s = hl.mixture_score(hl.GaussianMixture([1.0], [[2.0]], [1.0]))
    >>> round(float(s([[0.0]], 0.3)[0, 0]), 12)  # N(2 e^-0.3, 1) has score -(x - 2 e^-0.3)
    1.481636415188
    """
    gm = as_mixture(q, "q")
    with jax.enable_x64(True):
        logw = jnp.log(gm.weights)
        if gm.cov_type == "full":
            lam, U = jnp.linalg.eigh(gm.covs)
            lam = jnp.maximum(lam, 0.0)
            means = jnp.einsum("kde,kd->ke", U, gm.means)
            return MixtureScore(logw, means, lam, U, "full")
        return MixtureScore(logw, gm.means, gm.covs, None, gm.cov_type)


@x64
def pad_mixture(gm: GaussianMixture, n_components: int) -> GaussianMixture:
    """Append zero-weight standard components so the mixture has ``n_components`` (fixed shapes under jit).

    Zero weights give ``log w = -inf`` and responsibility exactly 0, so the law and its score are unchanged.
    """
    K = gm.n_components
    if n_components < K:
        raise ValueError(f"n_components must be >= {K}; got n_components={n_components}")
    if n_components == K:
        return gm
    extra = n_components - K
    d = gm.dim
    w = jnp.concatenate([gm.weights, jnp.zeros(extra)])
    m = jnp.concatenate([gm.means, jnp.zeros((extra, d))])
    shape = {"iso": (extra,), "diag": (extra, d), "full": (extra, d, d)}[gm.cov_type]
    ones = jnp.broadcast_to(jnp.eye(d), shape) if gm.cov_type == "full" else jnp.ones(shape)
    c = jnp.concatenate([gm.covs, ones])
    return GaussianMixture.tree_unflatten(None, (w, m, c))


# -- implementation -------------------------------------------------------------------------


def _chunked(fn, x, rows: int):
    """Apply a row-wise ``fn`` to ``x`` (n, d) in chunks of ``rows`` rows (static shapes)."""
    n = x.shape[0]
    if n <= rows:
        return fn(x)
    n_chunks = -(-n // rows)
    pad = n_chunks * rows - n
    xp = jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)]) if pad else x
    out = jax.lax.map(fn, xp.reshape((n_chunks, rows) + x.shape[1:]))
    return out.reshape((n_chunks * rows,) + out.shape[2:])[:n]


def _log_terms(s: MixtureScore, x, t):
    """(n, K) ``log w_k + log N(x; rho m_k, C_k(t))`` and what the score needs."""
    d = x.shape[1]
    rho = jnp.exp(-t)
    added = -jnp.expm1(-2.0 * t)
    c = rho * rho * s.lam + added  # (K,) iso or (K, d)
    if s.cov_type == "full":
        y = jnp.einsum("nd,kde->nke", x, s.vecs) - rho * s.means  # U^T (x - rho m), (n, K, d)
        yp = y / c
        quad = jnp.sum(y * yp, axis=-1)
        logdet = jnp.sum(jnp.log(c), axis=-1)
        lt = s.log_weights - 0.5 * quad - 0.5 * logdet - 0.5 * d * _LOG_2PI
        return lt, yp, rho
    # iso / diag: -|x - mu|^2_P / 2 = x.(P mu) - |x|^2_P / 2 - |mu|^2_P / 2, two matrix products
    P = 1.0 / c
    mu = rho * s.means
    if s.cov_type == "iso":
        linear = (x @ mu.T) * P
        square = jnp.sum(x * x, axis=1, keepdims=True) * (0.5 * P)
        const = s.log_weights - 0.5 * P * jnp.sum(mu * mu, axis=1) - 0.5 * d * jnp.log(c)
    else:
        linear = x @ (P * mu).T
        square = (x * x) @ (0.5 * P).T
        const = s.log_weights - 0.5 * jnp.sum(P * mu * mu, axis=1) - 0.5 * jnp.sum(jnp.log(c), axis=1)
    lt = linear - square + (const - 0.5 * d * _LOG_2PI)
    return lt, P, mu


def _score_rows(s: MixtureScore, x, t):
    if s.n_components <= _UNROLL_MAX_COMPONENTS.get(s.cov_type, 0):
        return _score_rows_unrolled(s, x, t)
    lt, extra, mu = _log_terms(s, x, t)
    if s.cov_type == "full":
        r = jax.nn.softmax(lt, axis=1)  # (n, K)
        return -jnp.einsum("nk,kde,nke->nd", r, s.vecs, extra)
    # unnormalised responsibilities; the normaliser divides once at the end
    e = jnp.exp(lt - jnp.max(lt, axis=1, keepdims=True))
    inv_z = 1.0 / jnp.sum(e, axis=1, keepdims=True)
    P = extra
    if s.cov_type == "iso":
        eP = e * P
        return (eP @ mu - x * jnp.sum(eP, axis=1, keepdims=True)) * inv_z
    return (e @ (P * mu) - x * (e @ P)) * inv_z


def _score_rows_unrolled(s: MixtureScore, x, t):
    """The iso/diag score with the component sum written out (small ``K``); same formula as ``_score_rows``."""
    d = x.shape[1]
    rho = jnp.exp(-t)
    c = rho * rho * s.lam - jnp.expm1(-2.0 * t)  # (K,) iso or (K, d)
    P = 1.0 / c
    mu = rho * s.means
    if s.cov_type == "iso":
        Pmu = P[:, None] * mu
        xx = jnp.sum(x * x, axis=1)
        logdet = d * jnp.log(c)
    else:
        Pmu = P * mu
        logdet = jnp.sum(jnp.log(c), axis=1)
    const = s.log_weights - 0.5 * jnp.sum(Pmu * mu, axis=1) - 0.5 * logdet
    terms = []
    for k in range(s.n_components):
        square = xx * P[k] if s.cov_type == "iso" else (x * x) @ P[k]
        terms.append(x @ Pmu[k] - 0.5 * square + const[k])
    top = terms[0]
    for lt in terms[1:]:
        top = jnp.maximum(top, lt)
    e = [jnp.exp(lt - top) for lt in terms]
    inv_z = 1.0 / sum(e)
    if s.cov_type == "iso":
        pull = sum(ek * P[k] for k, ek in enumerate(e))  # sum_k e_k P_k
        return (sum(ek[:, None] * Pmu[k] for k, ek in enumerate(e)) - x * pull[:, None]) * inv_z[:, None]
    return (sum(ek[:, None] * (Pmu[k] - x * P[k]) for k, ek in enumerate(e))) * inv_z[:, None]
