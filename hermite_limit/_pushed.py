"""Pushed copies of one point set: the structured form of every law built from empirical data.

Every generation and the limit of retraining on samples ``x_1..x_N`` (weights ``v_j``) is

    p = sum_{k=1..J} w_k sum_{j=1..N} v_j N(rho_k x_j, c_k I),

the same points pushed by ``J`` (scale, added variance) pairs: for the limit ``rho_k = e^{-k t0}``,
``c_k = 1 - rho_k^2``, ``w_k = alpha (1-alpha)^{k-1}``, and the stationary tail ``N(0, c I)`` is one more
term with ``rho = 0``. As an explicit mixture this is ``N J`` components (40,001 for 1000 samples and
``J = 40``), which makes every evaluation ``N J`` times a component's cost and every memory array ``N J``
rows long. :class:`PushedCopies` keeps the ``(N, d)`` points and the ``J`` triples ``(rho_k, c_k, w_k)``:

- ``logpdf`` / ``score``: log-sum-exp over terms and points in one JAX program, chunked over query
  points and point blocks (a running log-sum-exp), so memory stays bounded whatever ``N J``;
- ``sample``: a term by its weight, a point by its weight (inverse CDF, ``O(n log N)``), then the Gaussian;
- moments, ``marginal`` and ``project`` in closed form (a projection of a pushed copy is a pushed copy
  of the projected points: ``<u, rho X + sqrt(c) Z> = rho <u, X> + sqrt(c |u|^2) Z'``);
- Hermite coefficients from the points' own coefficients and a ``(order, order/2)`` table of term sums
  (``O(N M)`` instead of ``O(N J M)``; see :meth:`PushedCopies.hermite_coefficients`);
- ``mixture``: the explicit :class:`GaussianMixture`, built on demand (and cached) for code that needs
  one, refused with a ``ValueError`` when it would exceed the memory limit.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._mixture import GaussianMixture, _check_key, inverse_cdf_index
from ._precision import x64
from ._validation import as_float_array, check_positive_int, is_concrete

_LOG_2PI = math.log(2.0 * math.pi)
# Largest explicit mixture we agree to build on demand (components, bytes).
MAX_EXPLICIT_COMPONENTS = 20_000_000
MAX_EXPLICIT_BYTES = 4 * 2**30
# Elements of the (query block, terms, point block) work array of logpdf / score (16 MiB).
_BLOCK_ELEMENTS = 2**21


@jax.tree_util.register_pytree_node_class
class PushedCopies:
    """The law ``sum_k w_k sum_j v_j N(rho_k x_j, c_k I)``: ``J`` pushed copies of ``N`` points.

    Parameters
    ----------
    points : array (N, d), or (N,) for one-dimensional data
        The base points ``x_j`` (e.g. the samples of ``hl.empirical``).
    rho : array (J,)
        Scale of each copy, ``rho_k >= 0`` (``rho_k = e^{-T_k}`` after OU time ``T_k``; 0 for a copy
        collapsed on the origin, such as the stationary law).
    var : array (J,)
        Added isotropic variance ``c_k >= 0`` of each copy.
    term_weights : array (J,)
        ``w_k >= 0``, summing to 1.
    point_weights : array (N,), optional
        ``v_j >= 0`` summing to 1; default ``1/N``.

    Notes
    -----
    Term ``k`` is ``law(rho_k X + sqrt(c_k) Z)`` with ``X`` drawn from the points and ``Z ~ N(0, I)``.
    The object is a JAX pytree (all five arrays are leaves), so a law can be closed over or passed
    into ``jax.jit``; ``logpdf``, ``score`` and ``sample`` then trace. It is usable wherever a
    ``GaussianMixture`` is accepted: ``.mixture`` (also ``.weights``, ``.means``, ``.covs``) builds the
    explicit ``N J``-component mixture on first use. A term with ``rho_k = 0`` is one component there.

    Examples
    --------
    >>> import hermite_limit as hl
    >>> lim = hl.limit_distribution(hl.empirical([[-1.0], [2.0]]), alpha=0.5, t0=0.1)
    >>> type(lim.law).__name__, lim.law.n_points, lim.law.n_terms
    ('PushedCopies', 2, 41)
    """

    points: jax.Array
    point_weights: jax.Array
    rho: jax.Array
    var: jax.Array
    term_weights: jax.Array

    @x64
    def __init__(self, points: Any, rho: Any, var: Any, term_weights: Any, point_weights: Any = None):
        arrays = (points, rho, var, term_weights, point_weights)
        if not all(a is None or is_concrete(a) for a in arrays):
            x = jnp.asarray(points)
            v = jnp.full(x.shape[0], 1.0 / x.shape[0]) if point_weights is None else jnp.asarray(point_weights)
            self._set(x if x.ndim == 2 else x[:, None], v, jnp.asarray(rho), jnp.asarray(var), jnp.asarray(term_weights))
            return
        x = as_float_array("points", points, ndim=(1, 2))
        if x.ndim == 1:
            x = x[:, None]
        N, d = x.shape
        if N == 0 or d == 0:
            raise ValueError(f"points must have shape (N, d) with N, d >= 1; got {x.shape}")
        rho = as_float_array("rho", rho, ndim=1)
        J = rho.shape[0]
        if J == 0:
            raise ValueError("rho must hold at least one term; got 0")
        var = as_float_array("var", var, ndim=1)
        w = as_float_array("term_weights", term_weights, ndim=1)
        for name, arr in (("var", var), ("term_weights", w)):
            if arr.shape != (J,):
                raise ValueError(f"{name} must have shape ({J},) to match rho; got {arr.shape}")
        if np.any(rho < 0):
            raise ValueError(f"rho must be >= 0; got min(rho)={float(rho.min())}")
        if np.any(var < 0):
            raise ValueError(f"var must be >= 0; got min(var)={float(var.min())}")
        w = _probabilities("term_weights", w)
        v = np.full(N, 1.0 / N) if point_weights is None else as_float_array("point_weights", point_weights, ndim=1)
        if v.shape != (N,):
            raise ValueError(f"point_weights must have shape ({N},) to match points; got {v.shape}")
        v = _probabilities("point_weights", v)
        self._set(*jax.device_put((x, v, rho, var, w)))  # device_put: no per-shape conversion compile

    def _set(self, x, v, rho, var, w):
        for name, value in (("points", x), ("point_weights", v), ("rho", rho), ("var", var), ("term_weights", w)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_cache", {})

    def __setattr__(self, name, value):
        raise AttributeError("PushedCopies is immutable")

    # -- pytree -----------------------------------------------------------------------------
    def tree_flatten(self):
        return (self.points, self.point_weights, self.rho, self.var, self.term_weights), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj._set(*children)
        return obj

    # -- shape ------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.points.shape[1])

    @property
    def n_points(self) -> int:
        return int(self.points.shape[0])

    @property
    def n_terms(self) -> int:
        return int(self.rho.shape[0])

    @property
    def n_components(self) -> int:
        """Components of the explicit mixture: ``N`` per term with ``rho > 0``, one per term with ``rho = 0``."""
        if not is_concrete(self.rho):
            return self.n_points * self.n_terms
        collapsed = int(np.count_nonzero(np.asarray(self.rho) == 0.0))
        return self.n_points * (self.n_terms - collapsed) + collapsed

    def term_table(self, order: int, xp=jnp):
        """``T[m, l] = sum_k w_k rho_k^(m - 2l) beta_k^l`` for ``0 <= 2l <= m <= order`` (zero elsewhere, ``0^0 = 1``),
        with ``beta_k = c_k - 1 + rho_k^2``: the term factor of the law's Hermite coefficients,
        ``a_n = sum_l prod_i sqrt(n_i!) / (sqrt((n_i - 2 l_i)!) l_i! 2^l_i) T[|n|, |l|] a^pts_(n - 2l)``, where
        ``a^pts`` are the weighted points' own coefficients. Shape ``(order + 1, order // 2 + 1)``; ``xp`` is
        ``numpy`` for host work or ``jax.numpy`` (the default, traceable)."""
        rho, w = xp.asarray(self.rho), xp.asarray(self.term_weights)
        beta = xp.asarray(self.var) - 1.0 + rho * rho
        zero = xp.zeros((), dtype=w.dtype)
        return xp.stack([xp.stack([xp.sum(w * rho ** (m - 2 * l) * beta**l) if 2 * l <= m else zero
                                   for l in range(order // 2 + 1)]) for m in range(order + 1)])

    cov_type = "iso"

    def __repr__(self) -> str:
        return f"PushedCopies(N={self.n_points}, J={self.n_terms}, d={self.dim})"

    # -- explicit form ----------------------------------------------------------------------
    @property
    def mixture(self) -> GaussianMixture:
        """The explicit ``GaussianMixture`` (built on first use; ``ValueError`` when too large)."""
        if "mixture" not in self._cache:
            self._cache["mixture"] = self.to_mixture()
        return self._cache["mixture"]

    @property
    def weights(self) -> jax.Array:
        return self.mixture.weights

    @property
    def means(self) -> jax.Array:
        return self.mixture.means

    @property
    def covs(self) -> jax.Array:
        return self.mixture.covs

    @x64
    def to_mixture(self) -> GaussianMixture:
        """Build the explicit mixture ``sum_k sum_j w_k v_j N(rho_k x_j, c_k I)`` (isotropic covariances).

        Raises ``ValueError`` when it would need more than 20 million components or 4 GiB.
        """
        K = self.n_components
        need = K * 8 * (self.dim + 2)
        if K > MAX_EXPLICIT_COMPONENTS or need > MAX_EXPLICIT_BYTES:
            raise ValueError(
                f"the explicit mixture of this law needs {K:,} components ({need / 2**30:.1f} GiB), more than the "
                f"limit ({MAX_EXPLICIT_COMPONENTS:,} components, {MAX_EXPLICIT_BYTES / 2**30:.0f} GiB); use the law's "
                "own methods (logpdf, score, sample, mean, cov, marginal, project, hermite_coefficients, w2_1d), "
                "which never build it"
            )
        x = np.asarray(self.points)
        v = np.asarray(self.point_weights)
        rho, c, w = (np.asarray(a) for a in (self.rho, self.var, self.term_weights))
        spread = rho > 0
        weights = [(w[spread, None] * v[None, :]).ravel(), w[~spread]]
        means = [(rho[spread, None, None] * x[None]).reshape(-1, self.dim), np.zeros((int((~spread).sum()), self.dim))]
        covs = [np.repeat(c[spread], x.shape[0]), c[~spread]]
        wt, m, cv = np.concatenate(weights), np.concatenate(means), np.concatenate(covs)
        keep = wt > 0
        wt, m, cv = wt[keep], m[keep], cv[keep]
        return GaussianMixture.tree_unflatten(None, jax.device_put((wt / wt.sum(), m, cv)))

    # -- moments ----------------------------------------------------------------------------
    @x64
    def mean(self) -> jax.Array:
        """``E[Y] = (sum_k w_k rho_k) sum_j v_j x_j``, shape (d,)."""
        return (self.term_weights @ self.rho) * (self.point_weights @ self.points)

    @x64
    def cov(self) -> jax.Array:
        """``Cov[Y] = b C + (b - a^2) mu mu^T + (sum_k w_k c_k) I`` with ``a = sum w rho``, ``b = sum w rho^2``.

        ``mu`` and ``C`` are the mean and covariance of the weighted points.
        """
        mu = self.point_weights @ self.points
        xc = self.points - mu
        C = (xc * self.point_weights[:, None]).T @ xc
        a = self.term_weights @ self.rho
        b = self.term_weights @ (self.rho * self.rho)
        cbar = self.term_weights @ self.var
        return b * C + (b - a * a) * jnp.outer(mu, mu) + cbar * jnp.eye(self.dim)

    @x64
    def has_density(self) -> bool:
        """True when every term of positive weight has positive added variance."""
        return bool(np.all((np.asarray(self.var) > 0) | (np.asarray(self.term_weights) == 0)))

    # -- density ----------------------------------------------------------------------------
    @x64
    def logpdf(self, x: Any) -> jax.Array:
        """Log-density at points ``x`` (..., d) (or (...,) when d = 1).

        Notes
        -----
        ``log p(y) = logsumexp_{k,j} [log w_k + log v_j - |y - rho_k x_j|^2 / (2 c_k) - d log(2 pi c_k) / 2]``,
        with ``|y - rho_k x_j|^2`` expanded around the term's mean ``rho_k mu`` (``mu`` the points' mean)
        so that the rounding of the expansion stays small beside the distance itself. In one dimension with
        at least 10,000 (point, term) pairs (and concrete inputs) the points of each term are grouped in
        clusters and each cluster's density summed by its Taylor series (truncation below 1e-18 relative;
        see ``hermite_limit.divergences._wasserstein_1d``): the cost no longer grows with ``N``.
        """
        y, batch = self._query(x, "x")
        if _use_series(self, y):
            return _series_1d(self, y, score=False).reshape(batch)
        return _logpdf(self, y).reshape(batch)

    @x64
    def score(self, x: Any) -> jax.Array:
        """Score ``grad log p(y) = sum_{k,j} r_kj(y) (rho_k x_j - y) / c_k`` (responsibilities ``r``), (..., d)."""
        y, batch = self._query(x, "x")
        if _use_series(self, y):
            return _series_1d(self, y, score=True).reshape(batch + (1,))
        return _score(self, y).reshape(batch + (self.dim,))

    @x64
    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """``n`` draws, shape (n, d): a term by ``w``, a point by ``v`` (inverse CDF), then ``rho x + sqrt(c) z``."""
        n = check_positive_int(n, "n")
        if is_concrete(key):
            key = _check_key(key)
        return _sample(self, key, n)

    # -- derived laws -----------------------------------------------------------------------
    @x64
    def marginal(self, dims: Sequence[int] | int) -> "PushedCopies":
        """The marginal law of the coordinates ``dims``: the same terms on the selected coordinates."""
        idx = np.atleast_1d(np.asarray(dims))
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"dims must be a non-empty sequence of integers; got dims={dims!r}")
        if np.any(idx < 0) or np.any(idx >= self.dim):
            raise ValueError(f"dims must lie in [0, {self.dim}); got dims={dims!r}")
        return PushedCopies.tree_unflatten(None, (self.points[:, idx], self.point_weights, self.rho, self.var, self.term_weights))

    @x64
    def project(self, direction: Any) -> "PushedCopies":
        """The law of ``<u, Y>``: points ``<u, x_j>``, added variances ``c_k |u|^2``, same ``rho`` and weights."""
        u = jnp.asarray(as_float_array("direction", direction, ndim=1) if is_concrete(direction) else direction)
        if u.shape != (self.dim,):
            raise ValueError(f"direction must have shape ({self.dim},); got {u.shape}")
        pts = (self.points @ u)[:, None]
        return PushedCopies.tree_unflatten(None, (pts, self.point_weights, self.rho, self.var * (u @ u), self.term_weights))

    def ou_push(self, t: float) -> "PushedCopies":
        """``P_t`` of this law: ``rho_k -> e^{-t} rho_k``, ``c_k -> e^{-2t} c_k + 1 - e^{-2t}``."""
        r = math.exp(-t)
        add = -math.expm1(-2.0 * t)
        return PushedCopies.tree_unflatten(None, (self.points, self.point_weights, self.rho * r, r * r * self.var + add, self.term_weights))

    # -- Hermite coefficients ---------------------------------------------------------------
    def is_ou_push(self) -> bool:
        """True when every term is an OU push of the points (``c_k = 1 - rho_k^2``, to 1e-14)."""
        rho, c = np.asarray(self.rho), np.asarray(self.var)
        return bool(np.all(np.abs(c - (1.0 - rho * rho)) <= 1e-14))

    def term_sums(self, order: int) -> np.ndarray:
        """``sum_k w_k rho_k^m`` for ``m = 0..order``: the filter applied to the points' mode ``m``."""
        rho, w = np.asarray(self.rho), np.asarray(self.term_weights)
        return np.array([np.sum(w * rho**m) for m in range(order + 1)])


    @x64
    def hermite_coefficients(self, order: int):
        """Exact Hermite coefficients ``a_n = E[h_n(Y)]`` for ``|n| <= order`` (graded order).

        Notes
        -----
        With ``beta_k = c_k - 1 + rho_k^2`` the generating function
        ``E exp(s.Y - |s|^2/2) = E exp(rho_k s.X - rho_k^2 |s|^2/2) exp(beta_k |s|^2 / 2)`` gives

            a_n(term k) = sum_{2i <= n} [prod_l sqrt(n_l!) / (sqrt((n_l - 2 i_l)!) i_l! 2^{i_l})]
                          rho_k^{|n| - 2|i|} beta_k^{|i|} a_{n - 2i}(points),

        so ``a_n(p) = sum_i coef(n, i) T[|n|, |i|] a_{n-2i}(points)`` with the table
        ``T[m, l] = sum_k w_k rho_k^{m - 2l} beta_k^l``. For OU pushes of the points ``beta_k = 0`` and only
        ``i = 0`` remains: ``a_n(p) = (sum_k w_k rho_k^{|n|}) a_n(points)``. The points' coefficients
        ``a_m(points) = sum_j v_j h_m(x_j)`` are one chunked pass over the points. ``errors`` is the rounding
        bound ``4 eps (|n| + 2) sum_i |coef T| sum_j v_j |h_{n-2i}(x_j)|``.
        """
        from .hermite._coefficients import HermiteCoefficients
        from .hermite._indices import check_order

        order = check_order(order, self.dim, self.dim + 4)
        values, errors = _hermite_values(self, order)
        return HermiteCoefficients(values, errors, order, self.dim, "exact")

    # -- helpers ----------------------------------------------------------------------------
    def _query(self, x, name):
        if is_concrete(x):
            x = as_float_array(name, x)
        x = jnp.asarray(x, dtype=jnp.float64)
        d = self.dim
        if d == 1 and (x.ndim == 0 or x.shape[-1] != 1):
            x = x[..., None]
        if x.ndim == 0 or x.shape[-1] != d:
            raise ValueError(f"{name} must have trailing dimension d={d}; got shape {x.shape}")
        if is_concrete(self.var) and is_concrete(self.term_weights) and not self.has_density():
            raise ValueError(
                "this law has a term with zero added variance (point masses), so it has no density; "
                "smooth it first, e.g. law.ou_push(t) with t > 0"
            )
        batch = x.shape[:-1]
        return x.reshape(-1, d), batch


# One-dimensional laws with more than this many (points x terms) pairs are evaluated by the cluster series.
_SERIES_MIN_PAIRS = 10_000


def _use_series(law: PushedCopies, y) -> bool:
    arrays = (y, law.points, law.point_weights, law.rho, law.var, law.term_weights)
    return law.dim == 1 and law.n_points * law.n_terms >= _SERIES_MIN_PAIRS and all(is_concrete(a) for a in arrays)


def _series_1d(law: PushedCopies, y: jax.Array, score: bool) -> jax.Array:
    """``log p`` or the score of a 1-D law by the cluster Taylor series (cost independent of ``N``; see
    ``hermite_limit.divergences._wasserstein_1d``); points far from every cluster are evaluated directly."""
    from .divergences._wasserstein_1d import density_1d

    yy = np.asarray(y, dtype=np.float64)[:, 0]
    logp, sc, far = density_1d(law, yy, score)
    out = sc if score else logp
    if far.any():
        direct = (_score if score else _logpdf)(law, jnp.asarray(yy[far])[:, None])
        out[far] = np.asarray(direct).reshape(-1)
    return jax.device_put(out)


def _probabilities(name: str, w: np.ndarray) -> np.ndarray:
    if np.any(w < 0):
        raise ValueError(f"{name} must be non-negative; got min({name})={float(w.min())}")
    total = float(w.sum())
    if abs(total - 1.0) > 1e-9 * max(1.0, math.sqrt(w.size)):
        raise ValueError(f"{name} must sum to 1; got sum({name})={total}")
    return w / total


def is_pushed(dist: Any) -> bool:
    """True for a :class:`PushedCopies` or a result object whose ``law`` is one."""
    return isinstance(dist, PushedCopies) or isinstance(getattr(dist, "law", None), PushedCopies)


def as_pushed(dist: Any) -> PushedCopies:
    return dist if isinstance(dist, PushedCopies) else dist.law


# -- evaluation -----------------------------------------------------------------------------


def _blocks(law: PushedCopies, n_query: int):
    """Block sizes: points per block ``Nb`` and queries per block ``B`` with ``B J Nb`` near the budget."""
    J, N = law.n_terms, law.n_points
    Nb = int(min(N, max(256, _BLOCK_ELEMENTS // (8 * J))))
    B = int(max(1, min(n_query, _BLOCK_ELEMENTS // (J * Nb))))
    return Nb, B


def _padded_points(law: PushedCopies, Nb: int):
    """Centred points and log-weights in (n_blocks, Nb, ...) blocks; padding has weight 0 (log -inf)."""
    N, d = law.n_points, law.dim
    mu = law.point_weights @ law.points
    xc = law.points - mu
    nb = -(-N // Nb)
    pad = nb * Nb - N
    xc = jnp.concatenate([xc, jnp.zeros((pad, d))]).reshape(nb, Nb, d)
    logv = jnp.log(law.point_weights)
    logv = jnp.concatenate([logv, jnp.full((pad,), -jnp.inf)]).reshape(nb, Nb)
    return mu, xc, logv


def _log_terms(law: PushedCopies, mu, yb, xb, logv_b):
    """``(B, J, Nb)`` log-terms ``log w_k + log v_j + log N(y; rho_k x_j, c_k I)`` (centred expansion)."""
    rho, c = law.rho, law.var
    d = law.dim
    yk = yb[:, None, :] - rho[None, :, None] * mu  # (B, J, d): y - rho_k mu
    yy = jnp.sum(yk * yk, axis=-1)  # (B, J)
    yx = jnp.einsum("bd,nd->bn", yb, xb)  # (B, Nb)
    mx = xb @ mu  # (Nb,)
    xx = jnp.sum(xb * xb, axis=-1)  # (Nb,)
    # (y - rho mu).xc = y.xc - rho mu.xc
    cross = yx[:, None, :] - rho[None, :, None] * mx[None, None, :]
    q = yy[:, :, None] - 2.0 * rho[None, :, None] * cross + (rho * rho)[None, :, None] * xx[None, None, :]
    q = jnp.maximum(q, 0.0)
    const = jnp.log(law.term_weights) - 0.5 * d * (_LOG_2PI + jnp.log(c))
    return const[None, :, None] + logv_b[None, None, :] - 0.5 * q / c[None, :, None]


def _over_queries(fn, y, B):
    n, d = y.shape
    nq = -(-n // B)
    yp = jnp.concatenate([y, jnp.zeros((nq * B - n, d))]).reshape(nq, B, d)
    out = jax.lax.map(fn, yp)
    return out.reshape((nq * B,) + out.shape[2:])[:n]


@jax.jit
def _logpdf(law: PushedCopies, y: jax.Array) -> jax.Array:
    Nb, B = _blocks(law, y.shape[0])
    mu, xc, logv = _padded_points(law, Nb)

    def query_block(yb):
        def step(carry, blk):
            m, s = carry
            xb, lv = blk
            lt = _log_terms(law, mu, yb, xb, lv)
            bm = jnp.max(lt, axis=(1, 2))
            new = jnp.maximum(m, bm)
            s = s * jnp.exp(m - new) + jnp.sum(jnp.exp(lt - new[:, None, None]), axis=(1, 2))
            return (new, s), None

        init = (jnp.full(yb.shape[0], -1e300), jnp.zeros(yb.shape[0]))
        (m, s), _ = jax.lax.scan(step, init, (xc, logv))
        return m + jnp.log(s)

    return _over_queries(query_block, y, B)


@jax.jit
def _score(law: PushedCopies, y: jax.Array) -> jax.Array:
    Nb, B = _blocks(law, y.shape[0])
    mu, xc, logv = _padded_points(law, Nb)
    rho, c = law.rho, law.var

    def query_block(yb):
        def step(carry, blk):
            m, R, P = carry  # running max, sum_j e (B, J), sum_j e xc_j (B, J, d)
            xb, lv = blk
            lt = _log_terms(law, mu, yb, xb, lv)
            new = jnp.maximum(m, jnp.max(lt, axis=(1, 2)))
            scale = jnp.exp(m - new)
            e = jnp.exp(lt - new[:, None, None])
            R = R * scale[:, None] + jnp.sum(e, axis=2)
            P = P * scale[:, None, None] + jnp.einsum("bkn,nd->bkd", e, xb)
            return (new, R, P), None

        Bq = yb.shape[0]
        init = (jnp.full(Bq, -1e300), jnp.zeros((Bq, law.n_terms)), jnp.zeros((Bq, law.n_terms, law.dim)))
        (m, R, P), _ = jax.lax.scan(step, init, (xc, logv))
        total = jnp.sum(R, axis=1)
        # sum_{k,j} r (rho_k xc_j - (y - rho_k mu)) / c_k
        yk = yb[:, None, :] - rho[None, :, None] * mu
        g = jnp.einsum("bkd,k->bd", P, rho / c) - jnp.einsum("bk,bkd->bd", R / c[None, :], yk)
        return g / total[:, None]

    return _over_queries(query_block, y, B)


@functools.partial(jax.jit, static_argnums=2)
def _sample(law: PushedCopies, key: jax.Array, n: int) -> jax.Array:
    k_term, k_point, k_noise = jax.random.split(key, 3)
    u = jax.random.uniform(k_term, (2, n), dtype=jnp.float64)
    term = inverse_cdf_index(law.term_weights, u[0])
    point = inverse_cdf_index(law.point_weights, jax.random.uniform(k_point, (n,), dtype=jnp.float64))
    # jax.random.normal, not the samplers' Box-Muller: a law is sampled once per shape, so compile time (3x
    # lower here) matters more than the per-draw cost
    z = jax.random.normal(k_noise, (n, law.dim), dtype=jnp.float64)
    return law.rho[term][:, None] * law.points[point] + jnp.sqrt(law.var[term])[:, None] * z


def _hermite_values(law: PushedCopies, order: int):
    from .hermite._indices import _find_rows, graded_indices
    from .hermite._samples import weighted_sums

    d = law.dim
    idx = graded_indices(order, d)
    a_pts, abs_pts, _ = weighted_sums(law.points, law.point_weights, order)
    T = law.term_table(order, xp=np)
    if np.all(T[:, 1:] == 0.0):  # every beta_k = 0: no Gaussian smoothing beyond the push
        rows_n, rows_src, coef = np.arange(idx.shape[0]), np.arange(idx.shape[0]), T[idx.sum(axis=1), 0]
    else:
        half = graded_indices(order // 2, d)
        rows_n, rows_src, coef = [], [], []
        lgam = np.vectorize(math.lgamma)
        for i in half:
            ok = np.flatnonzero(np.all(idx >= 2 * i, axis=1))
            if ok.size == 0:
                continue
            n = idx[ok]
            src = _find_rows(idx, n - 2 * i)
            # log of prod_l sqrt(n_l!) / (sqrt((n_l - 2 i_l)!) i_l! 2^{i_l})
            logc = np.sum(0.5 * lgam(n + 1.0) - 0.5 * lgam(n - 2 * i + 1.0) - lgam(i + 1.0) - i * math.log(2.0), axis=1)
            rows_n.append(ok)
            rows_src.append(src)
            coef.append(np.exp(logc) * T[n.sum(axis=1), int(i.sum())])
        rows_n, rows_src, coef = np.concatenate(rows_n), np.concatenate(rows_src), np.concatenate(coef)
    M = idx.shape[0]
    a_np, abs_np = np.asarray(a_pts), np.asarray(abs_pts)
    values = np.bincount(rows_n, weights=coef * a_np[rows_src], minlength=M)
    mag = np.bincount(rows_n, weights=np.abs(coef) * abs_np[rows_src], minlength=M)
    eps = np.finfo(np.float64).eps
    errors = 4.0 * eps * (idx.sum(axis=1) + 2.0) * mag
    return jax.device_put(values), jax.device_put(errors)
