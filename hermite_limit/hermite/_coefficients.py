"""``hermite_coefficients``: one entry point, three methods, one result type."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._mixture import GaussianMixture
from .._precision import x64
from .._validation import (
    FLOAT_BYTES,
    as_float_array,
    check_callable,
    check_choice,
    check_count,
    check_covariance,
    check_int,
    check_key,
    check_positive_int,
    fmt,
    is_concrete,
    real_scalar,
)
from ._gaussian import exact_work_per_index, mixture_coefficients
from ._indices import check_order, graded_indices, order_of_indices
from ._polynomials import _products
from ._quadrature import MAX_POINTS, pilot_moments, quadrature_coefficients
from ._samples import sample_coefficients

METHODS = ("auto", "exact", "quadrature", "samples")


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True)
class HermiteCoefficients:
    """Hermite coefficients ``a_n = E_p[h_n(X)]`` for all ``|n| <= order``.

    Attributes
    ----------
    values : jax.Array (M,)
        ``a_n`` in graded order (``values[0] = a_0``; in 1-D ``values[n] = a_n``).
    errors : jax.Array (M,)
        Error estimate per coefficient: a rounding bound for ``"exact"``, the two-rule difference
        (tensor Gauss-Hermite) or RQMC standard error for ``"quadrature"``, the standard error for
        ``"samples"``.
    order, dim : int
        Truncation order and dimension (static pytree metadata).
    method : str
        ``"exact"``, ``"quadrature"`` or ``"samples"``.

    Notes
    -----
    ``indices`` (M, d) lists the multi-indices (graded: total order 0, 1, ..., ``order``).
    The object is a JAX pytree (values and errors are the leaves), so it can be returned from
    ``jit`` and ``vmap``.
    """

    values: jax.Array
    errors: jax.Array
    order: int
    dim: int
    method: str

    def tree_flatten(self):
        return (self.values, self.errors), (self.order, self.dim, self.method)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children, *aux)

    @property
    def indices(self) -> np.ndarray:
        """(M, d) multi-indices, graded order."""
        return graded_indices(self.order, self.dim)

    @property
    def order_of_index(self) -> np.ndarray:
        """(M,) total order ``|n|`` of each index."""
        return order_of_indices(self.order, self.dim)

    def coefficient(self, n) -> jax.Array:
        """``a_n`` for one multi-index ``n`` (a tuple of length d, or an int in 1-D)."""
        bad = ValueError(f"n must be a multi-index (integers) of length {self.dim} with |n| <= {self.order}; got {fmt(n)}")
        if n is None or isinstance(n, (str, bool, float, complex)):
            raise bad
        try:
            n = np.atleast_1d(np.asarray(n))
        except (TypeError, ValueError) as exc:
            raise bad from exc
        if not np.issubdtype(n.dtype, np.integer):
            raise bad
        if n.shape != (self.dim,) or np.any(n < 0) or n.sum() > self.order:
            raise ValueError(f"n must be a multi-index of length {self.dim} with |n| <= {self.order}; got n={n.tolist()}")
        pos = np.flatnonzero((self.indices == n).all(axis=1))[0]
        return self.values[pos]

    @x64
    def energies(self) -> jax.Array:
        """(order+1,) mode energies ``E_m = sum_{|n| = m} a_n^2``."""
        return jnp.zeros(self.order + 1, self.values.dtype).at[self.order_of_index].add(self.values**2)

    @x64
    def chi2(self) -> jax.Array:
        """Truncated Parseval sum ``sum_{0 < |n| <= order} a_n^2``.

        For exact coefficients this is a lower bound on ``chi2(p || N(0, I))`` (the modes above
        ``order`` are dropped). For estimated coefficients it is biased upward by the noise
        (``E[a_hat^2] = a^2 + Var``).
        """
        return jnp.sum(self.values[1:] ** 2)

    @x64
    def density_ratio(self, x: Any) -> jax.Array:
        """Truncated reconstruction ``sum_n a_n h_n(x)`` of ``dp/dgamma`` at points ``x`` (..., d)."""
        if is_concrete(x):
            x = as_float_array("x", x)
        x = jnp.asarray(x, dtype=jnp.float64)
        if self.dim == 1 and (x.ndim == 0 or x.shape[-1] != 1):
            x = x[..., None]
        if x.shape[-1] != self.dim:
            raise ValueError(f"x must have trailing dimension d={self.dim}; got shape {x.shape}")
        return _products(x, self.indices, self.order) @ self.values

    def ou_push(self, t: Any) -> "HermiteCoefficients":
        """Coefficients of ``P_t p``: ``a_n e^{-|n| t}``."""
        from ._attenuation import ou_push_coefficients

        return ou_push_coefficients(self, t)


@x64
def hermite_coefficients(
    dist: Any,
    order: int,
    *,
    method: str = "auto",
    dim: int | None = None,
    log_density: bool = True,
    mean: Any = None,
    cov: Any = None,
    scale: float = 1.0,
    n_nodes: int | None = None,
    log2_points: int = 12,
    n_random: int = 16,
    seed: int = 0,
    key: Any = None,
    n_samples: int | None = None,
) -> HermiteCoefficients:
    """Hermite coefficients ``a_n(p) = E_p[h_n(X)]`` of a law for every ``|n| <= order``.

    Parameters
    ----------
    dist : GaussianMixture, callable, or array of samples
        * a ``GaussianMixture`` (also point masses / ``hl.empirical``, or a result with ``.mixture``);
        * a JAX-traceable function of one point ``x`` of shape (d,) returning ``log p(x)``
          (or ``p(x)`` with ``log_density=False``); needs ``dim``;
        * samples of shape (N, d) (or (N,) in 1-D).
    order : int >= 0 (static)
        Highest total order. Refused with a ValueError when the C(order + d, d) indices times the
        work per index would exceed the memory limit.
    method : {"auto", "exact", "quadrature", "samples"}
        ``auto``: exact for mixtures, quadrature for functions, samples for arrays. ``exact`` also
        accepts a samples array (then the empirical law: ``a_n = mean_j h_n(x_j)`` exactly).
        ``samples`` with a mixture draws ``n_samples`` points with ``key``.
    dim : int, dimension for a callable ``dist``.
    log_density : bool, whether the callable returns ``log p`` (default) or ``p``.
    mean, cov : arrays, optional
        Centre and covariance of the quadrature rule's Gaussian (default: the law's own, from the
        mixture, or from a pilot rule for a callable); ``scale`` multiplies the rule's standard
        deviations.
    n_nodes : int, Gauss-Hermite nodes per axis (d <= 3); default ``max(256, 2 order + 32)`` in 1-D,
        ``max(96, order + 48)`` in 2-D, ``max(40, order + 20)`` in 3-D.
    log2_points, n_random, seed : RQMC for d > 3: ``n_random`` scrambled Sobol' sets of
        ``2^log2_points`` points, seeded by ``seed``.
    key, n_samples : PRNG key and sample count for ``method="samples"`` on a mixture.

    Returns
    -------
    HermiteCoefficients
        ``.indices`` (M, d), ``.values`` (M,), ``.errors`` (M,), ``.method``; float64.

    Notes
    -----
    Exact (Gaussian mixtures, any d): with ``B = Sigma - I`` for each component,
    ``a_{n+e_j} = (mu_j a_n + sum_k B_jk sqrt(n_k) a_{n-e_k}) / sqrt(n_j + 1)``, weighted over
    components (see ``hermite_limit.hermite._gaussian``); 1-D:
    ``a_{n+1} = (mu a_n + (sigma^2 - 1) sqrt(n) a_{n-1}) / sqrt(n+1)``. Agrees with mpmath at 50
    digits to 1e-12 relative to ``sum_k w_k |a_n^(k)|`` (orders <= 60 in 1-D, tested).

    Quadrature: ``a_n = E_q[(p/q) h_n]`` with a Gaussian rule ``q`` centred on the law (see
    ``hermite_limit.hermite._quadrature`` for the reasons and the error estimate).

    Samples: ``mean_i h_n(x_i)`` (unbiased) with standard error ``std_i h_n(x_i) / sqrt(N)``.

    Examples
    --------
    >>> import hermite_limit as hl
    >>> c = hl.hermite_coefficients(hl.GaussianMixture([1.0], [[1.0]], [1.0]), 3)
    >>> [round(float(v), 12) for v in c.values]  # N(mu, 1): a_n = mu^n / sqrt(n!)
    [1.0, 1.0, 0.707106781187, 0.408248290464]
    """
    method = check_choice(method, "method", METHODS)
    from .._pushed import as_pushed, is_pushed

    if is_pushed(dist) and method in ("auto", "exact"):
        return as_pushed(dist).hermite_coefficients(order)  # structured law: never expanded
    inner = getattr(dist, "mixture", None)
    if isinstance(inner, GaussianMixture):
        dist = inner
    if isinstance(dist, GaussianMixture):
        kind = "mixture"
    elif callable(dist):
        kind = "function"
    else:
        kind = "samples"
    if method == "auto":
        method = {"mixture": "exact", "function": "quadrature", "samples": "samples"}[kind]

    if method == "exact":
        if kind == "function":
            raise ValueError("dist: method='exact' needs a GaussianMixture or samples, not a function; use method='quadrature'")
        gm = dist if kind == "mixture" else _empirical(dist)
        order = check_order(order, gm.dim, exact_work_per_index(gm))
        values, errors = mixture_coefficients(gm, order)
        return HermiteCoefficients(values, errors, order, gm.dim, "exact")

    if method == "samples":
        if kind == "function":
            raise ValueError("dist: method='samples' needs samples or a GaussianMixture with key and n_samples")
        if kind == "mixture":
            if key is None or n_samples is None:
                raise ValueError("key and n_samples are required for method='samples' on a GaussianMixture")
            key = check_key(key)
            n_samples = check_count(n_samples, "n_samples", minimum=2, bytes_each=FLOAT_BYTES * (dist.dim + 2))
            x = dist.sample(key, n_samples)
        else:
            x = _samples(dist)
        if x.shape[0] < 2:
            raise ValueError(f"dist needs at least 2 samples for a standard error; got {x.shape[0]}")
        order = check_order(order, x.shape[1], x.shape[1] + 4)
        values, errors = sample_coefficients(x, order)
        return HermiteCoefficients(values, errors, order, x.shape[1], "samples")

    # quadrature
    if kind == "samples":
        raise ValueError("dist: method='quadrature' needs a GaussianMixture or a (log-)density function")
    if kind == "mixture":
        gm = dist
        if not gm.has_density():
            raise ValueError("dist has point-mass components and no density; use method='exact' for it")
        d = gm.dim
        logp = lambda x: gm.logpdf(x[None])[0]  # noqa: E731
        mean = gm.mean() if mean is None else mean
        cov = gm.cov() if cov is None else cov
    else:
        if dim is None:
            raise ValueError("dim is required when dist is a function")
        d = check_int(dim, "dim", minimum=1, maximum=10_000)
        _probe_function(check_callable(dist, "dist"), d, log_density)
        logp = dist if log_density else (lambda x: jnp.log(dist(x)))
    # Decision: the rule's spread is at most _MAX_SCALE standard deviations of the law; wider rules
    # put every node where the density underflows, so they are refused naming the limit.
    scale = real_scalar("scale", scale, low=0.0, low_open=True, high=_MAX_SCALE)
    seed = check_positive_int(seed, "seed")
    n_random = check_positive_int(n_random, "n_random", allow_zero=False)
    if d > 3 and n_random < 2:
        raise ValueError(f"n_random must be >= 2 for an RQMC standard error; got n_random={n_random}")
    log2_points = check_positive_int(log2_points, "log2_points")
    if n_nodes is not None:
        n_nodes = check_positive_int(n_nodes, "n_nodes", allow_zero=False)
        if n_nodes**d > MAX_POINTS:
            raise ValueError(f"n_nodes={n_nodes} gives {n_nodes**d:,} points in d={d}; at most {MAX_POINTS:,}")
    if d > 3 and 2**log2_points > MAX_POINTS:
        raise ValueError(f"log2_points={log2_points} is too large; at most {MAX_POINTS.bit_length() - 1}")
    order = check_order(order, d, d + 8)
    if mean is None or cov is None:
        m0, c0 = pilot_moments(logp, d, seed)
        mean = m0 if mean is None else mean
        cov = c0 if cov is None else cov
    mean = jnp.asarray(as_float_array("mean", mean, shape=(d,)) if is_concrete(mean) else mean)
    cov = jnp.asarray(check_covariance("cov", cov, d, definite=True) if is_concrete(cov) else cov)
    if mean.shape != (d,) or cov.shape != (d, d):
        raise ValueError(f"mean must have shape ({d},) and cov ({d}, {d}); got {mean.shape} and {cov.shape}")
    values, errors = quadrature_coefficients(logp, d, order, mean, cov, scale, n_nodes, log2_points, n_random, seed)
    if is_concrete(values) and not bool(jnp.all(jnp.isfinite(values))):
        raise ValueError("dist: the quadrature produced non-finite values; check the density, or pass mean/cov/scale")
    return HermiteCoefficients(values, errors, order, d, "quadrature")


_MAX_SCALE = 1e3


def _probe_function(f, d: int, log_density: bool) -> None:
    """Evaluate a user density once at the origin: it must return a real scalar that is not NaN."""
    try:
        out = f(jnp.zeros(d))
    except Exception as exc:  # any failure of the user's function is reported against it
        raise ValueError(f"dist must be a function of one point x of shape ({d},); calling it failed: {exc}") from exc
    try:
        val = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"dist must return a real number; got {fmt(out)}") from exc
    if val.shape != ():
        raise ValueError(f"dist must return a scalar ({'log p(x)' if log_density else 'p(x)'}); got shape {val.shape}")
    if np.isnan(val) or val == np.inf:
        raise ValueError(f"dist returned {float(val):g} at x = 0; a (log-)density must be a number there")


def _samples(x) -> jax.Array:
    if is_concrete(x):
        x = as_float_array("dist", x, ndim=(1, 2))
    x = jnp.asarray(x, dtype=jnp.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"dist (samples) must have shape (N, d) with N, d >= 1; got {x.shape}")
    return x


def _empirical(x) -> GaussianMixture:
    x = _samples(x)
    N = x.shape[0]
    return GaussianMixture.tree_unflatten(None, (jnp.full(N, 1.0 / N), x, jnp.zeros(N)))
