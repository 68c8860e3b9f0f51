"""Gaussian mixtures in R^d as small immutable JAX pytrees.

A mixture is ``sum_k w_k N(m_k, S_k)``. Covariances are stored in the structure the caller gave:
``"full"`` (K, d, d), ``"diag"`` (K, d) or ``"iso"`` (K,) (then ``S_k = s_k I``). The structure is
static pytree metadata, so the OU semigroup and mixing keep it and isotropic mixtures stay cheap.
Covariances may be singular (positive semi-definite): ``empirical`` data are point masses. Densities
(``logpdf``, ``score``) exist only when every component with positive weight is non-degenerate.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import logsumexp

from ._noise import standard_normal as normal_draws
from ._precision import x64
from ._validation import (
    FLOAT_BYTES,
    as_float_array,
    check_alpha,
    check_choice,
    check_count,
    check_key,
    check_memory,
    check_indices,
    check_points,
    check_weights,
    fmt,
    is_concrete,
)

COV_TYPES = ("iso", "diag", "full")
_LOG_2PI = math.log(2.0 * math.pi)
# Relative tolerances for accepting user input (then rounded to an exact representation).
_WEIGHT_SUM_TOL = 1e-9
_SYMMETRY_TOL = 1e-10
_PSD_TOL = 1e-12
# Far-point limit: points whose squared Mahalanobis reach exceeds this are refused (see _check_far).
_FAR_LIMIT = 1e300


def _host_views(gm: "GaussianMixture") -> tuple:
    """(weights, means, covs) of a law held by JAX as numpy views (zero-copy on CPU, read-only)."""
    if not all(is_concrete(a) for a in gm._arrays):
        raise ValueError(
            "to_numpy needs concrete arrays; this mixture was built from traced arrays inside a JAX "
            "transformation (call it outside jax.jit / vmap / grad)"
        )
    return tuple(np.asarray(a) for a in gm._arrays)


@jax.tree_util.register_pytree_node_class
class GaussianMixture:
    """Mixture ``sum_k weights[k] * N(means[k], S_k)`` in ``d`` dimensions.

    Parameters
    ----------
    weights : array (K,)
        Non-negative, summing to 1 (to 1e-9 relative; they are then renormalised exactly).
    means : array (K, d), or (K,) for a one-dimensional mixture.
    covs : array (K, d, d) full, (K, d) diagonal, or (K,) isotropic (``S_k = covs[k] * I``).
        Symmetric positive semi-definite; zero gives a point mass.

    Notes
    -----
    All computation is float64 (scoped, the caller's JAX x64 setting is untouched). ``logpdf`` uses
    per-component Cholesky factors and log-sum-exp over components, so it is stable far from the
    data and for thousands of components: ``log p(x) = logsumexp_k [log w_k - |L_k^{-1}(x - m_k)|^2/2
    - log det L_k - d log(2 pi)/2]`` with ``S_k = L_k L_k^T``.

    Examples
    --------
    >>> import hermite_limit as hl
    >>> gm = hl.GaussianMixture([0.5, 0.5], [[-2.0], [2.0]], [0.25, 0.25])
    >>> round(float(gm.mean()[0]), 12), round(float(gm.cov()[0, 0]), 12)
    (0.0, 4.25)
    """

    cov_type: str
    # Whether the law has a density: True / False, or None while unknown (not yet computed, or the
    # arrays are traced and nothing was known statically). Static pytree metadata, never traced.
    _density: bool | None

    @x64
    def __init__(self, weights: Any, means: Any, covs: Any):
        if not all(is_concrete(a) for a in (weights, means, covs)):
            # Built inside a JAX transformation: trust the caller (shapes still checked by JAX).
            self._set(jnp.asarray(weights), _as_2d_means(jnp.asarray(means)), jnp.asarray(covs))
            return
        m = as_float_array("means", means, ndim=(1, 2))
        if m.ndim == 1:
            m = m[:, None]
        c = as_float_array("covs", covs, ndim=(1, 2, 3))
        K, d = m.shape
        if K == 0 or d == 0:
            raise ValueError(f"means must have at least one component and one dimension; got shape {m.shape}")
        w = check_weights("weights", weights, K, tol=_WEIGHT_SUM_TOL)
        c = _validate_covs(c, K, d)
        self._set(jnp.asarray(w), jnp.asarray(m), jnp.asarray(c), _density_flag(w, c))

    def _set(self, w, m, c, density=None, on_host=False):
        object.__setattr__(self, "_arrays", (w, m, c))
        object.__setattr__(self, "_on_host", on_host)
        object.__setattr__(self, "cov_type", _cov_type_of(c))
        object.__setattr__(self, "_density", None if density is None else bool(density))

    @classmethod
    def _from_arrays(cls, w, m, c, density=None) -> "GaussianMixture":
        """Unchecked construction from arrays, with the density flag when the caller knows it."""
        obj = object.__new__(cls)
        obj._set(w, m, c, density)
        return obj

    @classmethod
    def _from_host(cls, w: np.ndarray, m: np.ndarray, c: np.ndarray, density=None) -> "GaussianMixture":
        """Unchecked construction from float64 numpy arrays built on the host (exact recursions).

        The arrays move to the device on first use of ``weights`` / ``means`` / ``covs`` (one
        ``device_put`` of the three, in float64; zero-copy on CPU when they are 64-byte aligned), so
        building a law costs no transfer and no dispatch.
        """
        # the law is immutable, and a later zero-copy device_put aliases these buffers
        w.setflags(write=False)
        m.setflags(write=False)
        c.setflags(write=False)
        obj = object.__new__(cls)
        obj.__dict__.update(_arrays=(w, m, c), _on_host=True, cov_type=_COV_TYPE_OF_NDIM[c.ndim],
                            _density=None if density is None else bool(density))
        return obj

    def _cached(self, name: str, compute):
        """``compute(self)``, computed once and kept on this immutable law (host summaries, density coefficients)."""
        value = self.__dict__.get(name)
        if value is None:
            value = compute(self)
            object.__setattr__(self, name, value)
        return value

    def _host_arrays(self) -> tuple:
        """(weights, means, covs) as read-only numpy arrays: the host arrays themselves, or cached host views."""
        if self._on_host:
            return self._arrays
        return self._cached("_host", _host_views)

    def to_numpy(self) -> tuple:
        """``(weights, means, covs)`` as read-only float64 numpy arrays, shapes (K,), (K, d) and (K, d, d),
        (K, d) or (K,) as stored (see ``cov_type``).

        No device transfer: a law built on the host (the exact recursions ``generation`` and
        ``limit_distribution``) returns the arrays it was written into, and a law held by JAX returns host
        views of its arrays (zero-copy on CPU). The arrays are read-only because the law is immutable.
        """
        return self._host_arrays()

    def _device_arrays(self) -> tuple:
        if self._on_host:
            # eager even when first touched inside a caller's trace (the arrays are constants, never tracers)
            with jax.enable_x64(True), jax.ensure_compile_time_eval():
                arrays = tuple(jax.device_put(self._arrays))
            object.__setattr__(self, "_arrays", arrays)
            object.__setattr__(self, "_on_host", False)
        return self._arrays

    @property
    def weights(self) -> jax.Array:
        """Component weights, shape (K,)."""
        return self._arrays[0] if not self._on_host else self._device_arrays()[0]

    @property
    def means(self) -> jax.Array:
        """Component means, shape (K, d)."""
        return self._arrays[1] if not self._on_host else self._device_arrays()[1]

    @property
    def covs(self) -> jax.Array:
        """Covariances: (K, d, d) full, (K, d) diagonal or (K,) isotropic."""
        return self._arrays[2] if not self._on_host else self._device_arrays()[2]

    def __setattr__(self, name, value):
        raise AttributeError("GaussianMixture is immutable")

    # -- pytree -----------------------------------------------------------------------------
    # The density flag is static metadata (aux data): a law passed through ``jax.jit`` / ``vmap`` /
    # ``grad`` keeps it, so no Python ``bool`` is ever taken of a traced value.
    def tree_flatten(self):
        return (self.weights, self.means, self.covs), self._known_density()

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls._from_arrays(*children, density=aux)

    def _check_far(self, x: np.ndarray, name: str) -> None:
        """Refuse points so far out that ``log p(x)`` (about ``-|x - m|^2 / (2 var)``) leaves float64.

        Decision for far points: the density and score are computed exactly (finite) whenever
        ``d * (max|x| + max|m|)^2 / smallest variance <= 1e300``; beyond that the log-density is below
        about -1e300 and is not representable, so the call is refused naming ``x`` and this limit.
        """
        if x.size == 0 or self._known_density() is not True:
            return
        reach = float(np.max(np.abs(x)))
        if reach < 1e100:  # the cheap common case: far below any overflow whatever the variances
            return
        min_var, max_mean = self._host_stats()
        if (reach + max_mean) > math.sqrt(_FAR_LIMIT * min_var / self.dim):
            raise ValueError(
                f"{name} is too far from the mixture: max|{name}| = {reach:.3g}, and the log-density there is "
                f"below -{_FAR_LIMIT:.0e}, outside float64's range (supported: d (max|x| + max|m|)^2 / "
                f"smallest variance <= {_FAR_LIMIT:.0e})"
            )

    def _host_stats(self) -> tuple[float, float]:
        """(smallest component variance, max |mean entry|) on the host, cached."""
        def compute(gm):
            c = np.asarray(gm.covs)
            lam = np.linalg.eigvalsh(c)[:, 0] if c.ndim == 3 else (c.min(axis=1) if c.ndim == 2 else c)
            w = np.asarray(gm.weights)
            return float(np.min(lam[w > 0])), float(np.max(np.abs(np.asarray(gm.means))))

        return self._cached("_stats", compute)

    def _known_density(self) -> bool | None:
        """The density flag, computed on the host from concrete arrays the first time; None if traced."""
        if self._density is None and is_concrete(self.weights) and is_concrete(self.covs):
            object.__setattr__(self, "_density", _density_flag(self.weights, self.covs))
        return self._density

    # -- shape ------------------------------------------------------------------------------
    @property
    def n_components(self) -> int:
        return int(self._arrays[1].shape[0])

    @property
    def dim(self) -> int:
        return int(self._arrays[1].shape[1])

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.n_components}, d={self.dim}, cov_type={self.cov_type!r})"

    # -- moments ----------------------------------------------------------------------------
    @x64
    def mean(self) -> jax.Array:
        """Mixture mean ``sum_k w_k m_k``, shape (d,)."""
        return self.weights @ self.means

    @x64
    def cov(self) -> jax.Array:
        """Mixture covariance ``sum_k w_k (S_k + (m_k - mu)(m_k - mu)^T)``, shape (d, d)."""
        centred = self.means - self.mean()
        within = jnp.einsum("k,kij->ij", self.weights, self.full_covs())
        between = jnp.einsum("k,ki,kj->ij", self.weights, centred, centred)
        return within + between

    @x64
    def full_covs(self) -> jax.Array:
        """Covariances as a (K, d, d) array whatever the stored structure."""
        return _to_full(self.covs, self.cov_type, self.dim)

    @x64
    def as_cov_type(self, cov_type: str) -> "GaussianMixture":
        """The same law stored with a more general covariance structure (iso < diag < full)."""
        check_choice(cov_type, "cov_type", COV_TYPES)
        if COV_TYPES.index(cov_type) < COV_TYPES.index(self.cov_type):
            raise ValueError(f"cannot store a {self.cov_type!r} mixture as {cov_type!r} without loss")
        if cov_type == "full":
            covs = self.full_covs()
        elif cov_type == "diag" and self.cov_type == "iso":
            covs = jnp.broadcast_to(self.covs[:, None], self.means.shape)
        else:
            covs = self.covs
        return GaussianMixture._from_arrays(self.weights, self.means, covs, self._density)

    def has_density(self) -> bool:
        """True when every component with positive weight has a positive definite covariance.

        A static property: computed once on the host (numpy) from the concrete weights and
        covariances and carried as pytree metadata, so it is available inside ``jax.jit``,
        ``vmap`` and ``grad``, for closures over a law and for laws passed as arguments.
        """
        flag = self._known_density()
        if flag is None:
            raise ValueError(
                "has_density is unknown for a mixture built from traced arrays inside a JAX transformation; "
                "build the mixture outside the transformation and pass it in (or close over it)"
            )
        return flag

    # -- density ----------------------------------------------------------------------------
    def logpdf(self, x: Any) -> jax.Array:
        """Log-density at points ``x`` of shape (..., d) (or (...,) when d = 1).

        Works under ``jax.jit`` / ``vmap`` / ``grad`` (closures over the law or the law as an
        argument) when the caller traces with ``jax.enable_x64(True)``; float64 throughout.
        """
        _require_x64_when_traced(x, "x")
        with jax.enable_x64(True):
            x = self._points(x, "x")
            mu, _, _, _, top, W_shifted = self._density_coefficients()
            return _logpdf_kernel(mu, W_shifted, top, x, full=self.cov_type == "full")

    def score(self, x: Any) -> jax.Array:
        """Score ``grad_x log p(x)`` at points ``x``; shape (..., d).

        Notes
        -----
        ``grad log p(x) = -sum_k r_k(x) S_k^{-1} (x - m_k)`` with responsibilities
        ``r_k = softmax_k(log w_k + log N(x; m_k, S_k))`` computed by log-sum-exp.
        """
        _require_x64_when_traced(x, "x")
        with jax.enable_x64(True):
            x = self._points(x, "x")
            return _score_kernel(*self._density_coefficients()[:4], x, full=self.cov_type == "full")

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """``n`` independent draws, shape (n, d), from an explicit PRNG ``key``.

        A draw is ``m_c + S_c^(1/2) z``: the component ``c`` by inverse CDF of one uniform (``O(log K)`` per draw),
        ``z`` standard normal. The random numbers depend on ``(key, n, d)`` only, so appending zero-weight
        components changes no draw. ``n`` is a static integer; ``key`` may be traced (inside ``jax.jit``, trace with
        ``jax.enable_x64(True)``: sampling needs 64-bit types throughout the caller's program).
        """
        n = check_count(n, "n", minimum=0, bytes_each=FLOAT_BYTES * (self.dim + 2))
        key = check_key(key)
        _require_x64_when_traced(key, "key")
        with jax.enable_x64(True):
            return _sample(self, key, n)

    @x64
    def marginal(self, dims: Sequence[int] | int) -> "GaussianMixture":
        """The marginal law of the coordinates ``dims``."""
        idx = check_indices(dims, "dims", self.dim)
        if self.cov_type == "full":
            covs = self.covs[:, idx[:, None], idx[None, :]]
        elif self.cov_type == "diag":
            covs = self.covs[:, idx]
        else:
            covs = self.covs
        # a marginal of a law with a density has one
        return GaussianMixture._from_arrays(self.weights, self.means[:, idx], covs, self._density or None)

    @x64
    def project(self, direction: Any) -> "GaussianMixture":
        """The one-dimensional law of ``<u, X>``: means ``u.m_k``, variances ``u^T S_k u``."""
        concrete = is_concrete(direction)
        u = jnp.asarray(as_float_array("direction", direction, shape=(self.dim,)) if concrete else direction)
        if u.shape != (self.dim,):
            raise ValueError(f"direction must have shape ({self.dim},); got {u.shape}")
        if concrete and is_concrete(self.covs):
            # Decision: a projection whose means or variances overflow float64 is refused, naming the limit.
            length = float(np.max(np.abs(np.asarray(u)))) * math.sqrt(self.dim)
            reach = max(self._host_stats()[1], math.sqrt(float(np.max(np.abs(np.asarray(self.covs))))))
            if length * reach > 1e150:
                raise ValueError(
                    f"direction is too long for this mixture: |u| * max(|m|, |S|^(1/2)) = {length * reach:.3g} exceeds "
                    "1e150, beyond which the projected variances leave float64's range; rescale u"
                )
        if self.cov_type == "full":
            var = jnp.einsum("i,kij,j->k", u, self.covs, u)
        elif self.cov_type == "diag":
            var = self.covs @ (u * u)
        else:
            var = self.covs * (u @ u)
        return GaussianMixture.tree_unflatten(None, (self.weights, (self.means @ u)[:, None], var))

    def _points(self, x, name):
        """Checked points of shape (..., d): a float64 numpy array, or the caller's tracer.

        No conversion to a device array here: the compiled kernel takes the host array as its
        argument (one transfer, inside the dispatch) and does the reshapes itself.
        """
        d = self.dim
        if is_concrete(x):
            x = check_points(name, x, d)
            self._check_far(x, name)
        else:
            if d == 1 and (x.ndim == 0 or x.shape[-1] != 1):
                x = x[..., None]
            if x.ndim == 0 or x.shape[-1] != d:
                raise ValueError(f"{name} must have trailing dimension d={d}; got shape {x.shape}")
        if self._known_density() is False:
            raise ValueError(
                "this mixture has singular components (e.g. empirical point masses), so it has no "
                "density; smooth it first, e.g. hl.ou_push(dist, t) with t > 0"
            )
        return x

    def _density_coefficients(self) -> tuple:
        """``(mu, P, b, W, top, W_shifted)`` of :func:`_density_coefficients`.

        Computed once per law and kept on it when its arrays are concrete (the law is immutable, and
        every derived law is a new object): eagerly, even when first needed inside a caller's trace,
        so the cache never holds a tracer. A law whose arrays are traced (passed as an argument to
        ``jax.jit`` / ``vmap`` / ``grad``) gets them computed in the caller's program on every call.
        """
        if "_coef" not in self.__dict__ and not all(is_concrete(a) for a in self._arrays):
            return _density_coefficients(self)

        def compute(gm):
            with jax.enable_x64(True), jax.ensure_compile_time_eval():
                return _density_coefficients_jit(gm)

        return self._cached("_coef", compute)


# -- constructors ---------------------------------------------------------------------------


@x64
def empirical(samples: Any, weights: Any | None = None) -> GaussianMixture:
    """Data given as samples: the mixture of point masses ``sum_j w_j delta_{x_j}``.

    ``samples`` has shape (N, d) (or (N,) for one-dimensional data); weights default to 1/N.
    Point masses are stored as isotropic components of zero variance.
    """
    x = as_float_array("samples", samples, ndim=(1, 2))
    if x.ndim == 1:
        x = x[:, None]
    N = x.shape[0]
    if N == 0 or x.shape[1] == 0:
        raise ValueError(f"samples must contain at least one point of dimension >= 1; got shape {x.shape}")
    w = np.full(N, 1.0 / N) if weights is None else check_weights("weights", weights, N)
    return GaussianMixture(w, x, np.zeros(N))


@x64
def standard_normal(dim: int, cov_type: str = "iso") -> GaussianMixture:
    """The stationary law ``gamma = N(0, I_d)`` as a one-component mixture."""
    cov_type = check_choice(cov_type, "cov_type", COV_TYPES)
    per_dim = {"iso": 1, "diag": 2, "full": 1}[cov_type]
    d = check_count(dim, "dim", minimum=1, bytes_each=FLOAT_BYTES * per_dim)
    if cov_type == "full":
        check_memory("dim", FLOAT_BYTES * float(d) * d, detail=f"a {d} x {d} covariance")
    gm = GaussianMixture([1.0], np.zeros((1, d)), [1.0])
    return gm if cov_type == "iso" else gm.as_cov_type(cov_type)


def as_mixture(dist: Any, name: str = "dist") -> GaussianMixture:
    """Accept a mixture or any result object carrying one (``.mixture``)."""
    if isinstance(dist, GaussianMixture):
        return dist
    inner = getattr(dist, "mixture", None)
    if isinstance(inner, GaussianMixture):
        return inner
    raise ValueError(
        f"{name} must be a GaussianMixture (use hl.GaussianMixture(...) or hl.empirical(samples)); "
        f"got {type(dist).__name__}"
    )


@x64
def mix(alpha: Any, p: Any, q: Any) -> GaussianMixture:
    """The mixture ``alpha p + (1 - alpha) q`` (components concatenated, weights scaled)."""
    alpha = check_alpha(alpha)
    return concatenate([as_mixture(p, "p"), as_mixture(q, "q")], jnp.stack([alpha, 1.0 - jnp.asarray(alpha)]))


@x64
def concatenate(mixtures: Sequence[GaussianMixture], scales: Any) -> GaussianMixture:
    """``sum_i scales[i] * mixtures[i]``; ``scales`` must sum to 1 (not checked under jit).

    Covariance structures are promoted to the most general one present. Components whose
    weight is exactly zero are dropped when the weights are concrete.
    """
    dims = {m.dim for m in mixtures}
    if len(dims) != 1:
        raise ValueError(f"all mixtures must have the same dimension; got dimensions {sorted(dims)}")
    kind = max((m.cov_type for m in mixtures), key=COV_TYPES.index)
    parts = [m.as_cov_type(kind) for m in mixtures]
    scales = jnp.asarray(scales, dtype=jnp.float64)
    w = jnp.concatenate([s * m.weights for s, m in zip(scales, parts)])
    means = jnp.concatenate([m.means for m in parts])
    covs = jnp.concatenate([m.covs for m in parts])
    density = True if all(m._density for m in parts) else None
    return drop_zero_weights(GaussianMixture._from_arrays(w, means, covs, density))


def drop_zero_weights(gm: GaussianMixture) -> GaussianMixture:
    """Remove components of exactly zero weight (exact; only when weights are concrete)."""
    if not is_concrete(gm.weights):
        return gm
    keep = np.flatnonzero(np.asarray(gm.weights) > 0)
    if keep.size == gm.n_components:
        return gm
    return GaussianMixture._from_arrays(gm.weights[keep], gm.means[keep], gm.covs[keep], gm._density)


# -- implementation -------------------------------------------------------------------------


def _as_2d_means(m):
    return m[:, None] if m.ndim == 1 else m


_COV_TYPE_OF_NDIM = {1: "iso", 2: "diag", 3: "full"}


def _cov_type_of(c) -> str | None:
    """The covariance structure from the covariance leaf's rank; None for a leaf that is not an array (JAX
    unflattens pytrees with placeholder leaves, e.g. ``object()`` or None, and never computes with them)."""
    return _COV_TYPE_OF_NDIM.get(getattr(c, "ndim", None))


def _validate_covs(c: np.ndarray, K: int, d: int) -> np.ndarray:
    expected = {1: (K,), 2: (K, d), 3: (K, d, d)}[c.ndim]
    if c.shape != expected:
        raise ValueError(
            f"covs must have shape (K, d, d), (K, d) or (K,) with K={K}, d={d}; got shape {c.shape}"
        )
    if c.ndim < 3:
        if np.any(c < 0):
            raise ValueError(f"covs must be non-negative (variances); got min(covs)={float(c.min()):g}")
        return c
    scale = max(1.0, float(np.max(np.abs(c))))
    asym = float(np.max(np.abs(c - np.swapaxes(c, 1, 2))))
    if asym > _SYMMETRY_TOL * scale:
        raise ValueError(f"covs must be symmetric; got max|S - S^T| = {asym:.3g}")
    c = 0.5 * (c + np.swapaxes(c, 1, 2))
    lam_min = np.linalg.eigvalsh(c).min(axis=1)
    bad = np.flatnonzero(lam_min < -_PSD_TOL * scale)
    if bad.size:
        raise ValueError(
            f"covs must be positive semi-definite; component {int(bad[0])} has eigenvalue "
            f"{lam_min[bad[0]]:.3g} (indefinite or negative)"
        )
    return c


def _to_full(covs, cov_type, d):
    if cov_type == "full":
        return covs
    eye = jnp.eye(d, dtype=covs.dtype)
    if cov_type == "diag":
        return covs[:, :, None] * eye
    return covs[:, None, None] * eye


def _density_flag(weights, covs) -> bool:
    """Host (numpy) check: every component of positive weight has a positive definite covariance."""
    w = np.asarray(weights)
    c = np.asarray(covs)
    if c.ndim == 3:
        lam = np.linalg.eigvalsh(c)[:, 0] if c.shape[0] else np.zeros(0)
    elif c.ndim == 2:
        lam = c.min(axis=1) if c.shape[1] else np.ones(c.shape[0])
    else:
        lam = c
    return bool(np.all((lam > 0) | ~(w > 0)))


def _require_x64_when_traced(x, name: str) -> None:
    """Inside a caller's 32-bit trace, float64 code cannot be mixed in: say so, naming the argument."""
    if not is_concrete(x) and not jax.config.jax_enable_x64:
        raise ValueError(
            f"{name} is traced in a 32-bit JAX program; this law computes in float64, so run the caller's "
            "jax.jit / vmap / grad inside `with jax.enable_x64(True):`"
        )


def _check_key(key):
    """Kept for existing callers: see :func:`hermite_limit._validation.check_key`."""
    return check_key(key)


# Points are processed in chunks so that the (points x components) work array stays near 32 MB.
_CHUNK_ELEMENTS = 4_000_000


def _quadratic_form_coefficients(gm: GaussianMixture):
    """Per-component coefficients of ``(x - m)^T P (x - m) = x^T P x - 2 b.x + c`` in centred coordinates.

    Coordinates are centred at the mixture mean ``mu`` before expanding, so that the expansion's
    rounding error, of order ``eps |x - mu|^2 |P|``, stays small beside the quadratic form itself.
    Returns (mu, P-or-precision, b, c, logdet).
    """
    mu = gm.weights @ gm.means
    mc = gm.means - mu
    if gm.cov_type == "full":
        L = jnp.linalg.cholesky(gm.covs)
        eye = jnp.broadcast_to(jnp.eye(gm.dim), gm.covs.shape)
        Linv = solve_triangular(L, eye, lower=True)
        P = jnp.einsum("kji,kjl->kil", Linv, Linv)  # S^{-1} = L^{-T} L^{-1}
        logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(L, axis1=1, axis2=2)), axis=-1)
        b = jnp.einsum("kij,kj->ki", P, mc)
    else:
        prec = 1.0 / (gm.covs if gm.cov_type == "diag" else gm.covs[:, None])
        P = jnp.broadcast_to(prec, gm.means.shape)  # diagonal of the precision, (K, d)
        logdet = -jnp.sum(jnp.log(P), axis=1)
        b = P * mc
    c = jnp.sum(mc * b, axis=1)
    return mu, P, b, c, logdet


def _log_term_weights(gm: GaussianMixture, coef) -> jax.Array:
    """Weights ``W`` (features, K) with ``features(x) @ W = log w_k + log N(x; m_k, S_k)`` (centred ``x``).

    ``log w_k - (x^T P_k x - 2 b_k.x + c_k) / 2 - logdet_k / 2 - d log(2 pi) / 2`` is linear in the features
    ``(x_i x_j for i <= j, x, 1)`` (full; weight 2 off the diagonal) or ``(x * x, x, 1)`` (diag / iso), so all
    (n, K) log-terms come from one matrix product, which runs near the machine's matmul peak. The quadratic
    features are ordered row by row of the upper triangle (``i = 0: j = 0..d-1``, ``i = 1: j = 1..d-1``, ...),
    the order of ``triu_indices``, so that they are built from static slices (see :func:`_features`).
    """
    _, P, b, c, logdet = coef
    d = gm.dim
    if gm.cov_type == "full":
        iu, ju = np.triu_indices(d)
        quadratic = -0.5 * np.where(iu == ju, 1.0, 2.0) * P[:, iu, ju]  # (K, d(d+1)/2)
    else:
        quadratic = -0.5 * P  # (K, d)
    const = jnp.log(gm.weights) - 0.5 * c - 0.5 * logdet - 0.5 * d * _LOG_2PI
    return jnp.concatenate([quadratic.T, b.T, const[None, :]], axis=0)


def _density_coefficients(gm: GaussianMixture) -> tuple:
    """``(mu, P, b, W, top, W_shifted)``: centre, precisions (full) or their diagonals, ``P (m - mu)``,
    log-term weights, ``top = max_k (log w_k - logdet_k / 2 - d log(2 pi) / 2)``, an upper bound of every
    log-term (the quadratic form is >= 0) used as the log-sum-exp shift, and ``W`` with ``top`` taken off
    its constant row, whose product with the features gives the shifted log-terms directly (see
    :func:`_logsumexp_rows`)."""
    coef = _quadratic_form_coefficients(gm)
    W = _log_term_weights(gm, coef)
    top = jnp.max(W[-1] + 0.5 * coef[3])  # constant row + c_k / 2: log w_k - logdet_k / 2 - d log(2 pi) / 2
    return coef[0], coef[1], coef[2], W, top, W.at[-1].add(-top)


# Smallest row sum of exp(log-term - top) accepted before falling back to the row maxima as shifts: far
# above float64's smallest normal number, so the largest term of every accepted row (>= sum / K) is normal
# and the sum keeps full relative precision.
_SHIFT_FLOOR = 1e-280


def _logsumexp_rows(shifted: jax.Array, top: jax.Array) -> jax.Array:
    """``log sum_k exp(terms[:, k])`` from ``shifted = terms - top``, ``top`` bounding the terms above, in one pass.

    ``top + log sum_k exp(terms - top)`` is exact for any shift; with ``top`` an upper bound no
    exponential overflows, and when no row sum falls below ``_SHIFT_FLOOR`` (points within about
    640 nats of the mixture's most likely component) nothing of relevance underflows either, so the
    row maxima (a second pass over the (n, K) log-terms) are needed only for points far from every
    component, whose block then takes the usual max-shifted form.
    """
    sums = jnp.sum(jnp.exp(shifted), axis=1)
    return jax.lax.cond(
        jnp.all(sums >= _SHIFT_FLOOR),
        lambda: top + jnp.log(sums),
        lambda: top + logsumexp(shifted, axis=1),
    )


_density_coefficients_jit = jax.jit(_density_coefficients)


def _features(xc: jax.Array, full: bool) -> jax.Array:
    """``(x_i x_j for i <= j, x, 1)`` (full) or ``(x * x, x, 1)`` for centred points ``xc`` (n, d).

    The quadratic block is built from ``d`` static slices ``x_i * x[:, i:]`` (no index gather), in the
    row-by-row upper-triangle order of :func:`_log_term_weights`.
    """
    d = xc.shape[1]
    if full:
        quadratic = [xc[:, i : i + 1] * xc[:, i:] for i in range(d)]
    else:
        quadratic = [xc * xc]
    return jnp.concatenate(quadratic + [xc, jnp.ones_like(xc[:, :1])], axis=1)


def _over_chunks(fn, x: jax.Array, n_components: int) -> jax.Array:
    """Apply ``fn`` to row blocks of ``x`` (sequentially, with lax.map) and concatenate."""
    n = x.shape[0]
    chunk = max(256, _CHUNK_ELEMENTS // max(n_components, 1))
    if n <= chunk:
        return fn(x)
    n_blocks = -(-n // chunk)
    padded = jnp.concatenate([x, jnp.zeros((n_blocks * chunk - n, x.shape[1]), x.dtype)])
    out = jax.lax.map(fn, padded.reshape(n_blocks, chunk, x.shape[1]))
    return out.reshape((n_blocks * chunk,) + out.shape[2:])[:n]


def _centred_rows(mu, x):
    """Points (..., d) as centred rows (n, d) in float64, and the batch shape."""
    d = mu.shape[0]
    return jnp.asarray(x, mu.dtype).reshape(-1, d) - mu, x.shape[:-1]


@functools.partial(jax.jit, static_argnames=("full",))
def _logpdf_kernel(mu, W_shifted, top, x, *, full: bool) -> jax.Array:
    """``log p`` at points (..., d) from the centre, shifted log-term weights and bound of :func:`_density_coefficients`."""
    xc, batch = _centred_rows(mu, x)
    out = _over_chunks(lambda xb: _logsumexp_rows(_features(xb, full) @ W_shifted, top), xc, W_shifted.shape[1])
    return out.reshape(batch)


@functools.partial(jax.jit, static_argnames=("full",))
def _score_kernel(mu, P, b, W, x, *, full: bool) -> jax.Array:
    """``grad log p`` at points (..., d); see :meth:`GaussianMixture.score`."""
    xc, batch = _centred_rows(mu, x)
    d = mu.shape[0]

    def block(xc):
        r = jax.nn.softmax(_features(xc, full) @ W, axis=1)  # (n, K) responsibilities
        if full:
            # sum_k r_k P_k (x - m_k) = (sum_k r_k P_k) x - sum_k r_k b_k  (centred coordinates)
            A = (r @ P.reshape(P.shape[0], d * d)).reshape(-1, d, d)
            return -(jnp.einsum("nij,nj->ni", A, xc) - r @ b)
        return -(xc * (r @ P) - r @ b)

    return _over_chunks(block, xc, W.shape[1]).reshape(batch + (d,))


def _sqrt_covs(gm: GaussianMixture):
    if gm.cov_type == "full":
        lam, V = jnp.linalg.eigh(gm.covs)  # PSD-safe square root (point masses allowed)
        return jnp.einsum("kij,kj,klj->kil", V, jnp.sqrt(jnp.maximum(lam, 0.0)), V)
    return jnp.sqrt(gm.covs)


def _sample(gm: GaussianMixture, key: jax.Array, n: int) -> jax.Array:
    """``n`` draws of ``gm``: ``m_c + S_c^(1/2) z`` with the component ``c`` by inverse CDF of one uniform per draw
    (the first ``c`` with ``W_c > u W_K``, ``W`` the cumulative weights) and ``z`` Box-Muller normals.

    The random numbers depend on ``(key, n, d)`` only, not on the component count: appended zero-weight components
    (padding) leave every draw unchanged, and the random numbers compile once per ``(n, d)`` (:func:`_draws`), apart
    from the small program of each law shape (:func:`_assemble`)."""
    return _assemble(gm, *_draws(key, n, gm.dim))


def inverse_cdf_index(weights: jax.Array, u: jax.Array) -> jax.Array:
    """Indices drawn from ``weights`` (unnormalised, >= 0) by inverse CDF of uniforms ``u`` in [0, 1): the first
    ``c`` with ``W_c > u W_K`` (``W`` the cumulative weights), so zero-weight entries are never picked."""
    cw = jnp.cumsum(weights)
    last = weights.shape[0] - 1 - jnp.argmax((weights > 0)[::-1])  # u W_K rounding up to W_K: the last positive
    return jnp.minimum(jnp.searchsorted(cw, u * cw[-1], side="right"), last)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _draws(key: jax.Array, n: int, d: int):
    """The random numbers of :func:`_sample`: uniforms (n,) for the components, Box-Muller normals (n, d)."""
    k_comp, k_noise = jax.random.split(key)
    return jax.random.uniform(k_comp, (n,), jnp.float64), normal_draws(k_noise, (n, d))


@jax.jit
def _assemble(gm: GaussianMixture, u: jax.Array, z: jax.Array) -> jax.Array:
    """Draws of ``gm`` from the uniforms ``u`` and normals ``z`` of :func:`_draws`."""
    comp = inverse_cdf_index(gm.weights, u)
    root = _sqrt_covs(gm)
    if gm.cov_type == "full":
        noise = jnp.einsum("nij,nj->ni", root[comp], z)
    elif gm.cov_type == "diag":
        noise = root[comp] * z
    else:
        noise = root[comp][:, None] * z
    return gm.means[comp] + noise
