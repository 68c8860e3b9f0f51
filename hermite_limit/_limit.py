"""Exact laws of the retraining recursion: the n-th generation and the limit.

With fresh-data fraction ``alpha`` and truncation times ``t_i`` one generation is
``p_{i+1} = P_{t_i}(alpha p_data + (1 - alpha) p_i)``. Every generation is a finite mixture of
OU-pushed copies of ``p_data`` and of the initial model, so it is computed exactly by tracking
one weight per (source, total OU time) pair; pushing by ``t_i`` adds ``t_i`` to every time.
For a constant ``t0`` this gives

    p_n = sum_{k=1..n} alpha (1-alpha)^{k-1} P_{k t0} p_data + (1-alpha)^n P_{n t0} p_0,
    p_inf = sum_{k>=1} alpha (1-alpha)^{k-1} P_{k t0} p_data.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._mixture import COV_TYPES, GaussianMixture, as_mixture, standard_normal
from ._ou import push_arrays
from ._precision import x64
from ._time import schedule_times
from ._validation import check_alpha, check_positive_int, check_time, check_tolerance

SCHEMES = ("fresh", "replace", "accumulate")
# A pushed copy P_T p is stored as N(0, I) once rho_T * scale < 2^-60: its means are then below
# 1e-18 and its covariances equal I to the last bit, so it is the same component in float64.
_MERGE_RHO_SCALE = 2.0**-60
_MAX_COMPONENTS = 20_000_000
_MAX_BYTES = 4 * 2**30


@dataclasses.dataclass(frozen=True)
class LimitDistribution:
    """The truncated limit ``p_inf`` with its truncation diagnostics.

    Attributes
    ----------
    mixture : GaussianMixture
        ``sum_{k<=J} alpha (1-alpha)^{k-1} P_{k t0} p_data + (1-alpha)^J N(0, I)``: the first ``J``
        terms exactly, the dropped tail mass placed on the stationary law (a probability law).
    n_terms : int
        ``J``, the number of series terms kept (the smallest with ``(1-alpha)^J <= tol``).
    tail_mass : float
        ``(1-alpha)^J``, the mass of the dropped terms; it bounds the total-variation error.
    w2_error_bound : float
        Bound on ``W2(mixture, p_inf)``: ``sqrt(sum_{k>J} alpha (1-alpha)^{k-1} rho^{2k}) *
        sqrt(E|X|^2 + d)``, from coupling each dropped term ``P_{k t0} p_data`` with ``N(0, I)``.
    merged_components : int
        Components removed because they equal ``N(0, I)`` in float64 (means below 2^-60 and
        covariances within 2^-60 of I): they are merged into one ``N(0, I)`` component.
    """

    mixture: GaussianMixture
    alpha: float
    t0: float
    n_terms: int
    tail_mass: float
    w2_error_bound: float
    merged_components: int

    # Delegation to the mixture, so the result is used like a law.
    def logpdf(self, x):
        return self.mixture.logpdf(x)

    def score(self, x):
        return self.mixture.score(x)

    def sample(self, key, n):
        return self.mixture.sample(key, n)

    def mean(self):
        return self.mixture.mean()

    def cov(self):
        return self.mixture.cov()

    @property
    def dim(self) -> int:
        return self.mixture.dim


@x64
def limit_distribution(
    data: Any,
    alpha: Any = None,
    t0: Any = None,
    tol: float = 1e-12,
    *,
    synthetic_fraction: Any = None,
) -> LimitDistribution:
    """The limiting law of recursive retraining, ``p_inf = sum_k alpha (1-alpha)^{k-1} P_{k t0} p_data``.

    Parameters
    ----------
    data : GaussianMixture
        ``p_data``: a mixture, or samples via ``hl.empirical(x)``.
    alpha : float in [0, 1]
        Fresh-data fraction. (Give ``synthetic_fraction = 1 - alpha`` instead if you prefer.)
    t0 : float > 0
        Truncation (early-stopping) OU time per generation; ``rho = e^{-t0}``.
    tol : float in (0, 1)
        Keep ``J = ceil(log tol / log(1-alpha))`` terms so the dropped tail mass is <= tol.

    Returns
    -------
    LimitDistribution
        The truncated limit as a mixture, with ``n_terms``, ``tail_mass`` and ``w2_error_bound``.

    Notes
    -----
    ``p_inf`` is the unique fixed point of ``p -> P_{t0}(alpha p_data + (1 - alpha) p)`` for
    ``alpha > 0``, whatever the initial model. For ``alpha = 0`` every generation is
    ``P_{n t0} p_0``, which tends to ``N(0, I)``: that is returned (``n_terms = 0``). For sample data
    the limit is a mixture of ``N(rho^k x_j, (1 - rho^{2k}) I)``.

    Examples
    --------
    >>> import hermite_limit as hl
    >>> data = hl.GaussianMixture([0.5, 0.5], [[-2.0], [2.0]], [0.25, 0.25])
    >>> lim = hl.limit_distribution(data, alpha=0.5, t0=0.1, tol=1e-12)
    >>> lim.n_terms, lim.tail_mass <= 1e-12
    (40, True)
    """
    gm = as_mixture(data, "data")
    alpha = _resolve_alpha(alpha, synthetic_fraction)
    t0 = check_time(t0, "t0")
    tol = check_tolerance(tol)
    if alpha == 0.0:
        return LimitDistribution(standard_normal(gm.dim, gm.cov_type), alpha, t0, 0, 0.0, 0.0, 0)
    J = 1 if alpha == 1.0 else max(1, math.ceil(math.log(tol) / math.log1p(-alpha)))
    _check_size((J + 1) * gm.n_components, gm)
    k = np.arange(1, J + 1, dtype=np.float64)
    weights = alpha * (1.0 - alpha) ** (k - 1)
    tail = (1.0 - alpha) ** J
    mixture, merged = _assemble([(gm, k * t0, weights)], tail)
    rho = math.exp(-t0)
    q = (1.0 - alpha) * rho * rho
    tail_w2_sq = alpha * rho * rho * q**J / (1.0 - q)
    # a merged component is within 2^-60 of N(0, I) in each mean and covariance entry
    merged_w2_sq = 2.0 * gm.dim * _MERGE_RHO_SCALE**2 if merged else 0.0
    w2_bound = math.sqrt(tail_w2_sq * (_second_moment(gm) + gm.dim) + merged_w2_sq)
    return LimitDistribution(mixture, alpha, t0, J, tail, w2_bound, merged)


@x64
def generation(
    data: Any,
    alpha: Any = None,
    schedule: Any = None,
    n: int = 1,
    init: Any = None,
    *,
    scheme: str = "fresh",
    synthetic_fraction: Any = None,
) -> GaussianMixture:
    """The exact law ``p_n`` after ``n`` generations of retraining.

    Parameters
    ----------
    data : GaussianMixture
        ``p_data`` (mixture or ``hl.empirical`` samples).
    alpha : float in [0, 1]
        Fresh-data fraction (``synthetic_fraction = 1 - alpha`` is accepted instead).
    schedule : float, sequence, callable or Schedule
        Truncation times ``t_0, t_1, ...``: a constant ``t0``, a sequence of at least ``n`` times, a
        callable ``i -> t_i``, or a helper such as ``hl.harmonic(0.1)``.
    n : int >= 0
        Number of generations (``n = 0`` returns the initial model).
    init : GaussianMixture, optional
        ``p_0``; defaults to ``p_data``.
    scheme : {"fresh", "replace", "accumulate"}
        ``fresh``: train on ``alpha p_data + (1-alpha) p_i``; ``replace``: ``alpha = 0`` (alpha is
        then ignored); ``accumulate``: train on ``(p_data + p_1 + ... + p_i) / (i + 1)``.

    Notes
    -----
    ``p_{i+1} = P_{t_i}(q_i)``. For ``fresh``:
    ``p_n = sum_{j<n} alpha (1-alpha)^{n-1-j} P_{t_j + ... + t_{n-1}} p_data + (1-alpha)^n P_{t_0+...+t_{n-1}} p_0``.
    Terms whose total time agrees to 1e-14 relative are merged (exact for a constant schedule).

    Examples
    --------
    >>> import hermite_limit as hl
    >>> data = hl.GaussianMixture([1.0], [[3.0]], [1.0])
    >>> p2 = hl.generation(data, alpha=0.5, schedule=0.1, n=2)
    >>> round(float(p2.mean()[0]), 12)  # 3 (0.5 e^-0.1 + 0.25 e^-0.2 + 0.25 e^-0.2)
    2.585746216962
    """
    gm = as_mixture(data, "data")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}; got scheme={scheme!r}")
    if scheme == "replace":
        alpha = 0.0
    elif scheme == "accumulate":
        if alpha is not None or synthetic_fraction is not None:
            raise ValueError("scheme='accumulate' fixes the mixing weights; do not pass alpha")
        if init is not None:
            raise ValueError("scheme='accumulate' trains on p_data and every generation, never on init; drop init")
        alpha = None
    if scheme != "accumulate":
        alpha = _resolve_alpha(alpha, synthetic_fraction)
    n = check_positive_int(n, "n")
    if schedule is None:
        raise ValueError("schedule is required: a truncation time t0 > 0, a sequence of times or a Schedule")
    times = schedule_times(schedule, max(n, 1))[:n]
    p0 = gm if init is None else as_mixture(init, "init")
    if p0.dim != gm.dim:
        raise ValueError(f"init has dimension {p0.dim} but data has dimension {gm.dim}")
    data_T, data_w, init_T, init_w = _recursion_weights(times, alpha, scheme)
    _check_size(data_T.size * gm.n_components + init_T.size * p0.n_components, gm)
    return _assemble([(gm, data_T, data_w), (p0, init_T, init_w)], 0.0)[0]


def generations(data: Any, alpha: Any, schedule: Any, n: int, init: Any = None, **kwargs) -> list[GaussianMixture]:
    """``[p_0, p_1, ..., p_n]`` (each exact, as :func:`generation`)."""
    n = check_positive_int(n, "n")
    return [generation(data, alpha, schedule, i, init, **kwargs) for i in range(n + 1)]


# -- implementation -------------------------------------------------------------------------


def _resolve_alpha(alpha, synthetic_fraction):
    if synthetic_fraction is not None:
        if alpha is not None:
            raise ValueError("give alpha or synthetic_fraction (= 1 - alpha), not both")
        return 1.0 - check_alpha(synthetic_fraction, "synthetic_fraction")
    if alpha is None:
        raise ValueError("alpha (fresh-data fraction in [0, 1]) is required")
    if not isinstance(alpha, (int, float, np.floating, np.integer)) and jnp.ndim(alpha) != 0:
        raise ValueError(f"alpha must be a scalar; got shape {jnp.shape(alpha)}")
    if isinstance(alpha, jax.core.Tracer):
        raise ValueError("alpha must be concrete here (the number of terms depends on it); call outside jit")
    return check_alpha(alpha)


def _recursion_weights(times: np.ndarray, alpha, scheme: str):
    """Weights over (source, total OU time) after running the recursion on ``times``.

    Returns (data_times, data_weights, init_times, init_weights). A law is a map from total
    time to weight for each source; pushing adds ``t_i`` to every time, mixing adds weights.
    """
    n = times.size
    # history[l] = (data_T, data_w, init_T, init_w) of p_l
    history = [(np.zeros(0), np.zeros(0), np.zeros(1), np.ones(1))]
    for i in range(n):
        if scheme == "accumulate":
            share = 1.0 / (i + 1)  # q_i = (p_data + p_1 + ... + p_i) / (i + 1)
            terms = [(np.zeros(1), np.full(1, share), np.zeros(0), np.zeros(0))]
            terms += [(dT, dw * share, iT, iw * share) for dT, dw, iT, iw in history[1:]]
        else:
            cur = history[-1]
            terms = [(np.zeros(1), np.full(1, alpha), np.zeros(0), np.zeros(0)),
                     (cur[0], cur[1] * (1.0 - alpha), cur[2], cur[3] * (1.0 - alpha))]
        dT = np.concatenate([t[0] for t in terms]) + times[i]
        dw = np.concatenate([t[1] for t in terms])
        iT = np.concatenate([t[2] for t in terms]) + times[i]
        iw = np.concatenate([t[3] for t in terms])
        history.append((*_merge_times(dT, dw), *_merge_times(iT, iw)))
        if scheme != "accumulate":
            history = history[-1:]
    return history[-1]


def _merge_times(T: np.ndarray, w: np.ndarray):
    """Sum the weights of equal times (to 1e-14 relative) and drop zero weights."""
    keep = w > 0
    T, w = T[keep], w[keep]
    if T.size == 0:
        return T, w
    order = np.argsort(T, kind="stable")
    T, w = T[order], w[order]
    new_group = np.concatenate([[True], np.diff(T) > 1e-14 * np.maximum(T[1:], 1.0)])
    group = np.cumsum(new_group) - 1
    return T[new_group], np.bincount(group, weights=w)


def _assemble(terms, stationary_mass: float):
    """``sum_terms sum_j w_j P_{T_j} gm + stationary_mass N(0, I)`` as one mixture.

    ``terms`` is a list of ``(gm, T, w)``. Built on the host in numpy (pure bookkeeping: no JAX
    compilation per shape); components that equal N(0, I) in float64 are merged into one.
    Returns (mixture, number of components removed by merging).
    """
    terms = [(gm, T, w) for gm, T, w in terms if T.size]
    kind = max((gm.cov_type for gm, _, _ in terms), key=COV_TYPES.index)
    d = terms[0][0].dim
    weights, means, covs = [], [], []
    for gm, T, w in terms:
        gm = gm.as_cov_type(kind)
        m, c = push_arrays(np.asarray(gm.means), np.asarray(gm.covs), kind, T, xp=np)
        weights.append((w[:, None] * np.asarray(gm.weights)[None, :]).ravel())
        means.append(m.reshape(-1, d))
        covs.append(c.reshape((-1,) + c.shape[2:]))
    eye = np.eye(d) if kind == "full" else 1.0
    if stationary_mass > 0:
        weights.append(np.array([stationary_mass]))
        means.append(np.zeros((1, d)))
        covs.append(np.broadcast_to(eye, (1,) + covs[0].shape[1:]))
    w, m, c = np.concatenate(weights), np.concatenate(means), np.concatenate(covs)
    dev = np.maximum(np.abs(c - eye).reshape(len(w), -1).max(axis=1), np.abs(m).max(axis=1))
    is_std = (dev <= _MERGE_RHO_SCALE) & (w > 0)
    merged = max(int(is_std.sum()) - 1, 0)
    if merged:
        keep = np.flatnonzero(~is_std)
        w = np.concatenate([w[keep], [w[is_std].sum()]])
        m = np.concatenate([m[keep], np.zeros((1, d))])
        c = np.concatenate([c[keep], np.broadcast_to(eye, (1,) + c.shape[1:])])
    keep = w > 0
    w, m, c = w[keep], m[keep], c[keep]
    mixture = GaussianMixture.tree_unflatten(None, (jnp.asarray(w / w.sum()), jnp.asarray(m), jnp.asarray(c)))
    return mixture, merged


def _second_moment(gm: GaussianMixture) -> float:
    """``E|X|^2 = sum_k w_k (|m_k|^2 + tr S_k)``."""
    trace = jnp.trace(gm.full_covs(), axis1=1, axis2=2)
    return float(gm.weights @ (jnp.sum(gm.means**2, axis=1) + trace))


def _check_size(n_components: int, gm: GaussianMixture) -> None:
    """Refuse laws too large for memory before building them."""
    per_component = 8 * (1 + gm.dim + {"iso": 1, "diag": gm.dim, "full": gm.dim * gm.dim}[gm.cov_type])
    need = n_components * per_component
    if n_components > _MAX_COMPONENTS or need > _MAX_BYTES:
        raise ValueError(
            f"the requested law needs {n_components:,} components ({need / 2**30:.1f} GiB); "
            "raise tol, use fewer generations, or reduce the data (fewer samples or components)"
        )
