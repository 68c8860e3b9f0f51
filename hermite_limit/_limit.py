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

from ._mixture import COV_TYPES, GaussianMixture, as_mixture
from ._pushed import PushedCopies
from ._recursion_fast import assemble as _assemble_fast, constant_schedule_terms, generation_terms, series_terms, structured_law
from ._recursion_fast import small_generation, small_limit
from ._time import schedule_times
from ._validation import PY_ITERATION_COST, WORK_BUDGET, check_alpha, check_positive_int, check_time, check_tolerance, check_work, format_bytes, is_concrete

SCHEMES = ("fresh", "replace", "accumulate")
# A pushed copy P_T p is stored as N(0, I) once rho_T * scale < 2^-60: its means are then below
# 1e-18 and its covariances equal I to the last bit, so it is the same component in float64.
_MERGE_RHO_SCALE = 2.0**-60
_MAX_COMPONENTS = 20_000_000
# Decision: KDE bandwidths above 1e100 are refused (h^2 and the stationary variance h^2 rho^2 / (1 - rho^2)
# would leave float64's range for small t0).
_MAX_BANDWIDTH = 1e100
_MAX_BYTES = 4 * 2**30


@dataclasses.dataclass(frozen=True)
class LimitDistribution:
    """The truncated limit ``p_inf`` with its truncation diagnostics.

    Attributes
    ----------
    law : GaussianMixture or PushedCopies
        ``sum_{k<=J} alpha (1-alpha)^{k-1} P_{k t0} p_data + (1-alpha)^J N(0, I)``: the first ``J``
        terms exactly, the dropped tail mass placed on the stationary law (a probability law). For
        empirical data (point masses) it is a :class:`PushedCopies`: the ``N`` samples and the ``J + 1``
        terms ``(rho^k, 1 - rho^{2k}, alpha (1-alpha)^{k-1})``, never the ``N (J + 1)`` explicit components.
    mixture : GaussianMixture
        The law as an explicit mixture (for empirical data built on first use, and refused with a
        ``ValueError`` when it would not fit in memory).
    n_terms : int
        ``J``, the number of series terms kept (the smallest with ``(1-alpha)^J <= tol``).
    tail_mass : float
        ``(1-alpha)^J``, the mass of the dropped terms; it bounds the total-variation error.
    w2_error_bound : float
        Bound on ``W2(law, p_inf)``: ``sqrt(sum_{k>J} alpha (1-alpha)^{k-1} rho^{2k}) *
        sqrt(E|X|^2 + d)``, from coupling each dropped term ``P_{k t0} p_data`` with ``N(0, I)``.
    merged_components : int
        Components removed because they equal ``N(0, I)`` in float64 (means below 2^-60 and
        covariances within 2^-60 of I): they are merged into one ``N(0, I)`` component.
    """

    law: Any
    alpha: float
    t0: float
    n_terms: int
    tail_mass: float
    w2_error_bound: float
    merged_components: int

    @property
    def mixture(self) -> GaussianMixture:
        return self.law if isinstance(self.law, GaussianMixture) else self.law.mixture

    @property
    def n_components(self) -> int:
        """Components of the explicit mixture (counted without building it)."""
        return self.law.n_components

    # Delegation to the law, so the result is used like one.
    def logpdf(self, x):
        return self.law.logpdf(x)

    def score(self, x):
        return self.law.score(x)

    def sample(self, key, n):
        return self.law.sample(key, n)

    def mean(self):
        return self.law.mean()

    def cov(self):
        return self.law.cov()

    def marginal(self, dims):
        """The marginal law of the coordinates ``dims`` (a law of the same kind, see ``GaussianMixture.marginal``).

        The truncation diagnostics carry over: marginals are 1-Lipschitz images, so ``tail_mass`` still
        bounds the total-variation error and ``w2_error_bound`` the W2 error.
        """
        return self.law.marginal(dims)

    def project(self, direction):
        """The one-dimensional law of ``<u, X>`` (see ``GaussianMixture.project``).

        For a unit ``u`` the truncation bounds carry over (the projection is 1-Lipschitz); otherwise
        ``w2_error_bound`` scales by ``|u|``.
        """
        return self.law.project(direction)

    def has_density(self) -> bool:
        return self.law.has_density()

    @property
    def dim(self) -> int:
        return self.law.dim


def limit_distribution(
    data: Any,
    alpha: Any = None,
    t0: Any = None,
    tol: float = 1e-12,
    *,
    synthetic_fraction: Any = None,
    kde_bandwidth: float | None = None,
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
    kde_bandwidth : float > 0, optional
        Limit of the kernel-density learner of bandwidth ``h`` (see :func:`generation`): term ``k``
        is ``law(rho^k X + sqrt(c_k) Z)`` with ``c_k = c_inf (1 - rho^{2k})``,
        ``c_inf = 1 + h^2 rho^2 / (1 - rho^2)``, and the stationary law is ``N(0, c_inf I)``.

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
    if (type(alpha) is float and type(t0) is float and type(tol) is float and synthetic_fraction is None
            and kde_bandwidth is None and type(data) is GaussianMixture and data._density is True
            and 0.0 < alpha < 1.0 and 0.0 < t0 < math.inf and 0.0 < tol < 1.0):
        # the common call, valid by its exact types and ranges (they imply every check below): a small law
        # (below 1 MiB, so within the size limits) comes straight from the one-source path
        J = max(1, math.ceil(math.log(tol) / math.log1p(-alpha)))
        tail = (1.0 - alpha) ** J
        mixture = small_limit(data, t0, alpha, J, tail, 1.0)
        if mixture is not None:
            return _limit_result(data, mixture, alpha, t0, J, tail, 0, 1.0)
    gm = as_mixture(data, "data")
    alpha = _resolve_alpha(alpha, synthetic_fraction)
    t0 = check_time(t0, "t0")
    tol = check_tolerance(tol)
    rho = math.exp(-t0)
    h2 = 0.0 if kde_bandwidth is None else check_time(kde_bandwidth, "kde_bandwidth", maximum=_MAX_BANDWIDTH) ** 2
    c_inf = 1.0 + h2 * rho * rho / -math.expm1(-2.0 * t0)  # variance of the stationary law
    if alpha == 0.0:
        with jax.enable_x64(True):
            stationary = GaussianMixture([1.0], np.zeros((1, gm.dim)), [c_inf]).as_cov_type(gm.cov_type)
        return LimitDistribution(stationary, alpha, t0, 0, 0.0, 0.0, 0)
    J = 1 if alpha == 1.0 else max(1, math.ceil(math.log(tol) / math.log1p(-alpha)))
    points = _is_point_set(gm)
    if points and J + 1 > _MAX_COMPONENTS:
        raise ValueError(f"the requested law needs {J + 1:,} series terms (more than {_MAX_COMPONENTS:,}); raise tol or alpha")
    if not points:
        _check_size((J + 1) * gm.n_components, gm)
    tail = (1.0 - alpha) ** J
    # a small law in one pass over (J, 1) columns with per-law constants kept on the law (None: not small,
    # or a screen declined)
    mixture = None if points else small_limit(gm, t0, alpha, J, tail, c_inf)
    merged = 0
    if mixture is None:
        mixture, merged = _limit_law(gm, points, t0, alpha, J, tail, c_inf)
    return _limit_result(gm, mixture, alpha, t0, J, tail, merged, c_inf)


def _limit_result(gm, mixture, alpha: float, t0: float, J: int, tail: float, merged: int, c_inf: float) -> LimitDistribution:
    """The limit with its diagnostics: the W2 bound of the dropped tail and of the merged components."""
    rho = math.exp(-t0)
    # W2^2(term k, N(0, c_inf I)) <= rho^{2k} (E|X|^2 + d c_inf) (couple rho^k X + sqrt(c_k) Z with sqrt(c_inf) Z)
    q = (1.0 - alpha) * rho * rho
    tail_w2_sq = alpha * rho * rho * q**J / (1.0 - q)
    # a merged component is within 2^-60 of the stationary law in each mean and covariance entry
    d = gm.dim
    merged_w2_sq = 2.0 * d * _MERGE_RHO_SCALE**2 if merged else 0.0
    w2_bound = math.sqrt(tail_w2_sq * (gm._cached("_second_moment", _second_moment) + d * c_inf) + merged_w2_sq)
    return LimitDistribution(mixture, alpha, t0, J, tail, w2_bound, merged)


def _limit_law(gm, points: bool, t0: float, alpha: float, J: int, tail: float, c_inf: float):
    """(law, merged components) of the truncated limit: structured writer, else the general assembly."""
    k = np.arange(1, J + 1, dtype=np.float64)
    rho_k, rho2_k, neg_c, weights = series_terms(k, t0, alpha)
    if c_inf != 1.0:
        neg_c *= c_inf  # c_k = c_inf (1 - rho^{2k})
    mixture = None
    if not points:
        # one write of the output when the screens prove nothing merges, else the general assembly;
        # rho^k and alpha (1-alpha)^{k-1} fall with k: the last entries are the smallest (halved for safety)
        block = (gm, rho_k, rho2_k, neg_c, weights, 0.5 * rho_k.item(-1), 0.5 * weights.item(-1))
        mixture, merged = structured_law([block], tail, c_inf), 0
    if mixture is None:
        c_k = -neg_c
        if points:
            with jax.enable_x64(True):
                mixture, merged = _pushed(gm, rho_k, c_k, weights, tail, c_inf)
        else:
            mixture, merged = _assemble_fast([(gm, rho_k, c_k, weights)], tail, c_inf)
    return mixture, merged


def generation(
    data: Any,
    alpha: Any = None,
    schedule: Any = None,
    n: int = 1,
    init: Any = None,
    *,
    scheme: str = "fresh",
    synthetic_fraction: Any = None,
    kde_bandwidth: float | None = None,
) -> GaussianMixture | PushedCopies:
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
    kde_bandwidth : float > 0, optional
        Model a Gaussian kernel-density learner of bandwidth ``h``: sampling the KDE of ``q_i`` is
        sampling ``q_i * N(0, h^2 I)``, so ``p_{i+1} = P_{t_i}(q_i * N(0, h^2 I))``. Truncation times
        may then be 0 (no early stopping).

    Returns
    -------
    GaussianMixture or PushedCopies
        The exact ``p_n``. For empirical data (point masses, e.g. ``hl.empirical(x)``) with the default
        ``init`` and ``n >= 1`` it is a :class:`PushedCopies` (the samples and one ``(rho, c, w)`` per
        term), which evaluates, samples and compares without building the explicit mixture; its
        ``.mixture`` is that mixture, built on demand.

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
    if (type(schedule) is float and type(alpha) is float and type(n) is int and init is None and scheme == "fresh"
            and synthetic_fraction is None and kde_bandwidth is None and type(data) is GaussianMixture
            and 0.0 < alpha < 1.0 and 1e-12 < schedule and 0 < n and n * schedule < 700.0 and data._density is True):
        # the common call, valid by its exact types and ranges (they imply every check below; a small law has
        # n < 2^17, far inside the work budget): a small law comes straight from the one-source path
        law = small_generation(data, schedule, alpha, n)
        if law is not None:
            return law
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
    # one Python-level step per generation, over up to n terms each
    steps = float(n) * PY_ITERATION_COST + 0.5 * float(n) ** 2
    if steps > WORK_BUDGET:
        check_work("n", steps, detail=f"n={n} generations")
    if schedule is None:
        raise ValueError("schedule is required: a truncation time t0 > 0, a sequence of times or a Schedule")
    h2, t0 = 0.0, None
    if kde_bandwidth is not None:
        h2 = check_time(kde_bandwidth, "kde_bandwidth", maximum=_MAX_BANDWIDTH) ** 2
        with jax.enable_x64(True):  # a callable schedule may compute with JAX
            times = _kde_times(schedule, n)
    elif type(schedule) is float or type(schedule) is int:
        # a constant time, checked as schedule_times checks it (n is already bounded by check_work)
        t0 = check_time(schedule, "schedule")
        times = None
    else:
        with jax.enable_x64(True):
            times = schedule_times(schedule, max(n, 1))[:n]
    p0 = gm if init is None else as_mixture(init, "init")
    if p0 is not gm and p0.dim != gm.dim:
        raise ValueError(f"init has dimension {p0.dim} but data has dimension {gm.dim}")
    if t0 is None and scheme == "fresh" and h2 == 0.0 and n > 0 and np.all(times == times[0]):
        t0 = float(times[0])
    if scheme == "fresh" and h2 == 0.0 and n > 0 and t0 is not None:
        if 0.0 < alpha < 1.0 and t0 > 1e-12 and n * t0 < 700.0 and gm._density is True and p0._density is True:
            if p0 is gm:
                # a small law: one pass over (n + 1, 1) columns, per-law constants kept on the law (the size
                # check is implied: small means below 1 MiB)
                law = small_generation(gm, t0, alpha, n)
                if law is not None:
                    return law
            # the closed-form terms written in one pass (both sources at once when p_0 = p_data)
            K = gm.n_components
            _check_size(n * K + (K if p0 is gm else p0.n_components), gm)
            rho, rho2, neg_c, w = generation_terms(t0, alpha, n)
            # lower bounds of rho and w: rho^k and alpha (1-alpha)^{k-1} fall with k (by factors far from
            # 1 beside rounding), so the smallest entries are at k = n (index 0 and n); halved for safety
            rho_low, w_low = 0.5 * rho.item(0), 0.5 * min(w.item(0), w.item(n))
            if p0 is gm:
                blocks = [(gm, rho, rho2, neg_c, w, rho_low, w_low)]
            else:
                blocks = [(gm, rho[:n], rho2[:n], neg_c[:n], w[:n], rho_low, w_low),
                          (p0, rho[n:], rho2[n:], neg_c[n:], w[n:], rho_low, w_low)]
            law = structured_law(blocks)
            if law is not None:
                return law
        # closed-form terms (no merge sort when they are provably distinct), else the merging closed form
        data_terms, init_terms = constant_schedule_terms(t0, alpha, n) or _constant_terms(t0, alpha, n)
    else:
        data_terms, init_terms = _recursion_terms(np.full(n, t0) if times is None else times, alpha, scheme, h2)
    if n > 0 and init is None and _is_point_set(gm):
        # p_0 = p_data: both sources are the same points, so every term is a pushed copy of them
        rho, c, w = (np.concatenate([a, b]) for a, b in zip(data_terms, init_terms))
        with jax.enable_x64(True):
            return _pushed(gm, *_merge_terms(rho, c, w), 0.0)[0]
    _check_size(data_terms[0].size * gm.n_components + init_terms[0].size * p0.n_components, gm)
    return _assemble_fast([(gm, *data_terms), (p0, *init_terms)], 0.0)[0]


def generations(data: Any, alpha: Any, schedule: Any, n: int, init: Any = None, **kwargs) -> list[GaussianMixture]:
    """``[p_0, p_1, ..., p_n]`` (each exact, as :func:`generation`)."""
    n = check_positive_int(n, "n")
    # n + 1 calls of generation, the i-th over up to i terms
    check_work("n", float(n) * (n + 1) * PY_ITERATION_COST / 2 + float(n) ** 3 / 6, detail=f"n={n} generations")
    return [generation(data, alpha, schedule, i, init, **kwargs) for i in range(n + 1)]


# -- implementation -------------------------------------------------------------------------


def _resolve_alpha(alpha, synthetic_fraction):
    if synthetic_fraction is not None:
        if alpha is not None:
            raise ValueError("give alpha or synthetic_fraction (= 1 - alpha), not both")
        return 1.0 - check_alpha(synthetic_fraction, "synthetic_fraction")
    if type(alpha) is float and 0.0 <= alpha <= 1.0:
        return alpha  # the common call, valid by its exact type and range
    if alpha is None:
        raise ValueError("alpha (fresh-data fraction in [0, 1]) is required")
    if isinstance(alpha, jax.core.Tracer):
        raise ValueError("alpha must be concrete here (the number of terms depends on it); call outside jit")
    return check_alpha(alpha)


def _kde_times(schedule, n: int) -> np.ndarray:
    """Truncation times for the KDE learner: like :func:`schedule_times`, but 0 is allowed."""
    if isinstance(schedule, (int, float, np.integer, np.floating)) and float(schedule) == 0.0:
        return np.zeros(n)
    if not callable(schedule) and np.ndim(schedule) == 1:
        t = np.asarray(schedule, dtype=np.float64)
        if t.size >= n and np.all(np.isfinite(t[:n])) and np.all(t[:n] >= 0):
            return t[:n]
    return schedule_times(schedule, max(n, 1))[:n]


def _recursion_terms(times: np.ndarray, alpha, scheme: str, h2: float = 0.0):
    """Run the recursion on (rho, c, weight) terms; returns ``(data_terms, init_terms)``.

    A term ``(rho, c, w)`` of a source law ``mu`` stands for ``w * law(rho X + sqrt(c) Z)``, X ~ mu:
    each component ``N(m, S)`` becomes ``N(rho m, rho^2 S + c I)``. Convolving with ``N(0, h^2 I)``
    adds ``h^2`` to ``c``; pushing by ``t`` maps ``(rho, c) -> (e^{-t} rho, e^{-2t} c + 1 - e^{-2t})``;
    mixing adds weights. Every generation is a finite sum of such terms, hence exact.
    """
    empty = (np.zeros(0),) * 3
    # history[l] = (data_terms, init_terms) of p_l, each (rho, c, w)
    history = [(empty, (np.ones(1), np.zeros(1), np.ones(1)))]
    fresh = (np.ones(1), np.zeros(1), np.ones(1))
    for i, t in enumerate(times):
        if scheme == "accumulate":
            share = 1.0 / (i + 1)  # q_i = (p_data + p_1 + ... + p_i) / (i + 1)
            mixed = [((fresh[0], fresh[1], fresh[2] * share), empty)]
            mixed += [(_scale(d, share), _scale(s, share)) for d, s in history[1:]]
        else:
            cur = history[-1]
            mixed = [((fresh[0], fresh[1], fresh[2] * alpha), empty), (_scale(cur[0], 1 - alpha), _scale(cur[1], 1 - alpha))]
        rho_t, add_t = math.exp(-t), -math.expm1(-2.0 * t)
        new = []
        for src in (0, 1):
            rho = np.concatenate([m[src][0] for m in mixed])
            c = np.concatenate([m[src][1] for m in mixed]) + h2
            w = np.concatenate([m[src][2] for m in mixed])
            new.append(_merge_terms(rho * rho_t, rho_t * rho_t * c + add_t, w))
        history.append(tuple(new))
        if scheme != "accumulate":
            history = history[-1:]
    return history[-1]


def _constant_terms(t0: float, alpha: float, n: int):
    """The closed form of :func:`_recursion_terms` for a constant time and the ``fresh`` scheme, without the loop:
    data terms ``(rho^k, 1 - rho^{2k}, alpha (1-alpha)^{k-1})``, ``k = 1..n``, and the init term
    ``(rho^n, 1 - rho^{2n}, (1-alpha)^n)`` (sorted and zero weights dropped as the recursion does)."""
    k = np.arange(1, n + 1, dtype=np.float64)
    data = _merge_terms(np.exp(-k * t0), -np.expm1(-2.0 * k * t0), alpha * (1.0 - alpha) ** (k - 1))
    init = _merge_terms(np.array([math.exp(-n * t0)]), np.array([-math.expm1(-2.0 * n * t0)]), np.array([(1.0 - alpha) ** n]))
    return data, init


def _scale(terms, factor):
    rho, c, w = terms
    return rho, c, w * factor


def _merge_terms(rho: np.ndarray, c: np.ndarray, w: np.ndarray):
    """Sum the weights of equal (rho, c) pairs (to 1e-14 relative) and drop zero weights."""
    keep = w > 0
    rho, c, w = rho[keep], c[keep], w[keep]
    if rho.size == 0:
        return rho, c, w
    order = np.lexsort((c, rho))
    rho, c, w = rho[order], c[order], w[order]
    same = (np.abs(np.diff(rho)) <= 1e-14 * np.maximum(rho[1:], 1e-300)) & (np.abs(np.diff(c)) <= 1e-14 * np.maximum(c[1:], 1.0))
    new_group = np.concatenate([[True], ~same])
    group = np.cumsum(new_group) - 1
    return rho[new_group], c[new_group], np.bincount(group, weights=w)


def _assemble(terms, stationary_mass: float, stationary_var: float = 1.0):
    """``sum_terms sum_j w_j law(rho_j X + sqrt(c_j) Z) + stationary_mass N(0, I)`` as one mixture.

    ``terms`` is a list of ``(gm, rho, c, w)`` (X ~ gm). Built on the host in numpy (pure bookkeeping: no JAX
    compilation per shape); components that equal the stationary law ``N(0, stationary_var I)``
    in float64 are merged into one.
    Returns (mixture, number of components removed by merging).
    """
    terms = [t for t in terms if t[1].size]
    kind = max((t[0].cov_type for t in terms), key=COV_TYPES.index)
    d = terms[0][0].dim
    eye = np.eye(d) if kind == "full" else 1.0
    target = stationary_var * eye
    weights, means, covs = [], [], []
    for gm, rho, add, w in terms:
        gm = gm.as_cov_type(kind)
        S = np.asarray(gm.covs)
        expand = (slice(None),) + (None,) * S.ndim
        m = rho[:, None, None] * np.asarray(gm.means)[None]
        c = (rho * rho)[expand] * S[None] + add[expand] * eye
        weights.append((w[:, None] * np.asarray(gm.weights)[None, :]).ravel())
        means.append(m.reshape(-1, d))
        covs.append(c.reshape((-1,) + c.shape[2:]))
    if stationary_mass > 0:
        weights.append(np.array([stationary_mass]))
        means.append(np.zeros((1, d)))
        covs.append(np.broadcast_to(target, (1,) + covs[0].shape[1:]))
    w, m, c = np.concatenate(weights), np.concatenate(means), np.concatenate(covs)
    dev = np.maximum(np.abs(c - target).reshape(len(w), -1).max(axis=1), np.abs(m).max(axis=1))
    is_std = (dev <= _MERGE_RHO_SCALE) & (w > 0)
    merged = max(int(is_std.sum()) - 1, 0)
    if merged:
        keep = np.flatnonzero(~is_std)
        w = np.concatenate([w[keep], [w[is_std].sum()]])
        m = np.concatenate([m[keep], np.zeros((1, d))])
        c = np.concatenate([c[keep], np.broadcast_to(target, (1,) + c.shape[1:])])
    keep = w > 0
    w, m, c = w[keep], m[keep], c[keep]
    # device_put, not jnp.asarray: the latter compiles a conversion for every new shape (~40 ms each)
    mixture = GaussianMixture.tree_unflatten(None, jax.device_put((w / w.sum(), m, c)))  # one transfer for the three
    return mixture, merged


def _is_point_set(gm: GaussianMixture) -> bool:
    """Data given as samples (every covariance zero): its pushes are stored as :class:`PushedCopies`."""
    if gm._density is True:  # a law with a density has no point masses
        return False
    return is_concrete(gm._arrays[2]) and not bool(np.any(gm._host_arrays()[2]))


def _pushed(gm: GaussianMixture, rho, c, w, stationary_mass: float, stationary_var: float = 1.0):
    """``sum_k w_k law(rho_k X + sqrt(c_k) Z) + stationary_mass N(0, stationary_var I)`` for point data X.

    Terms equal to the stationary law in float64 (``rho_k max|x| <= 2^-60``, ``|c_k - var| <= 2^-60``) join
    it, as in :func:`_assemble`. Returns (PushedCopies, number of explicit components removed by merging).
    """
    x = np.asarray(gm.means)
    scale = float(np.max(np.abs(x)))
    is_std = (rho * scale <= _MERGE_RHO_SCALE) & (np.abs(c - stationary_var) <= _MERGE_RHO_SCALE) & (w > 0)
    n_std = int(is_std.sum())
    merged = max(n_std * x.shape[0] + (stationary_mass > 0) - 1, 0) if n_std else 0
    mass = stationary_mass + float(np.sum(w[is_std]))
    keep = ~is_std & (w > 0)
    rho, c, w = rho[keep], c[keep], w[keep]
    if mass > 0:
        rho, c, w = np.append(rho, 0.0), np.append(c, stationary_var), np.append(w, mass)
    law = PushedCopies.tree_unflatten(
        None, (gm.means, gm.weights, *jax.device_put((rho, c, w / w.sum())))
    )
    return law, merged


def _second_moment(gm: GaussianMixture) -> float:
    """``E|X|^2 = sum_k w_k (|m_k|^2 + tr S_k)``."""
    w, m, covs = gm._host_arrays()
    d = m.shape[1]
    trace = {"iso": lambda: d * covs, "diag": lambda: covs.sum(axis=1), "full": lambda: covs.reshape(-1, d * d)[:, :: d + 1].sum(axis=1)}
    return float(w @ ((m * m).sum(axis=1) + trace[gm.cov_type]()))


def _count(n: int) -> str:
    return f"{n:,}" if n < 10**12 else f"{float(n):.3g}"


def _check_size(n_components: int, gm: GaussianMixture) -> None:
    """Refuse laws too large for memory before building them."""
    d = gm.dim
    per_component = 8 * (1 + d + {"iso": 1, "diag": d, "full": d * d}[gm.cov_type])
    need = n_components * per_component
    if n_components > _MAX_COMPONENTS or need > _MAX_BYTES:
        raise ValueError(
            f"the requested law needs {_count(n_components)} components ({format_bytes(need)}, limit "
            f"{format_bytes(_MAX_BYTES)} and {_count(_MAX_COMPONENTS)} components); "
            "raise tol, use fewer generations, or reduce the data (fewer samples or components)"
        )


# A LimitDistribution is a pytree (its mixture is the data, the diagnostics static), so it can be
# passed as an argument to jax.jit / vmap / grad like a GaussianMixture.
jax.tree_util.register_dataclass(
    LimitDistribution,
    data_fields=["law"],
    meta_fields=["alpha", "t0", "n_terms", "tail_mass", "w2_error_bound", "merged_components"],
)
