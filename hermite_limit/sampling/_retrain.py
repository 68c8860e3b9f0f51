"""The retraining loop run through a real reverse-diffusion sampler, with per-generation records."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from .._limit import generation
from .._mixture import GaussianMixture, _check_key, as_mixture, empirical, mix
from .._ou import _push
from .._precision import x64
from .._validation import check_alpha, check_positive_int, is_concrete
from ._refit import fit_gmm
from ._reverse import DEFAULT_T, INITS, _check_choice, check_dim, check_times, reverse_sample
from ._grid import GRIDS
from ._score import mixture_score, pad_mixture
from ._solvers import BACKENDS, METHODS
from ._stats import (
    marginal_w2,
    mixture_hermite_marginals,
    random_directions,
    sample_hermite_marginals,
    sliced_w2,
)

CARRIES = ("analytic", "particles", "refit")


@dataclasses.dataclass(frozen=True)
class RetrainRecords:
    """Per-generation records of :func:`retrain` (leading axis: generation ``i = 0..N-1``, whose output is ``p_{i+1}``).

    Attributes
    ----------
    hermite, hermite_se : (N, d, order+1)
        Hermite coefficients ``a_n`` of each coordinate marginal of the particles, and their standard errors.
    hermite_exact : (N, d, order+1)
        The same coefficients of the closed-form law ``hl.generation(data, alpha, t0, i+1)``.
    marginal_w2 : (N, d)
        Exact W2 between each coordinate marginal of the particles and of the closed-form law.
    sliced_w2 : (N,)
        Sliced W2 (root mean square over ``directions``, exact per slice) particles vs closed-form law.
    sliced_w2_floor : (N,)
        The same for ``n`` exact draws of the closed-form law: the pure sampling-noise level.
    delta : (N,)
        Sliced W2 between the particles and the ideal output ``P_{t0} hat-q_i`` of the training law actually
        used: the per-generation error (discretisation, finite ``T`` with ``init="gaussian"``, score error
        and the finite-``n`` sampling noise of the particles themselves).
    w2_bound : (N,)
        ``sum_{j<=i} kappa^{i-j} delta_j`` with ``kappa = sqrt(1-alpha) e^{-t0}``: for ``carry="particles"``
        (and ``"analytic"``) a rigorous bound on ``sliced_w2`` (see :func:`retrain`).
    mean_error, cov_error : (N,)
        ``|mean(particles) - mean(p_{i+1})|`` and Frobenius ``|cov(particles) - cov(p_{i+1})|``.
    directions : (L, d) the unit directions of the sliced W2.
    kappa : float
    """

    hermite: np.ndarray
    hermite_se: np.ndarray
    hermite_exact: np.ndarray
    marginal_w2: np.ndarray
    sliced_w2: np.ndarray
    sliced_w2_floor: np.ndarray
    delta: np.ndarray
    w2_bound: np.ndarray
    mean_error: np.ndarray
    cov_error: np.ndarray
    directions: np.ndarray
    kappa: float


@dataclasses.dataclass(frozen=True)
class RetrainResult:
    """Output of :func:`retrain`: final particles, the final model (a mixture) and the records."""

    particles: jax.Array
    model: GaussianMixture
    records: RetrainRecords
    carry: str
    alpha: float
    t0: float


@x64
def retrain(
    key: Any,
    data: Any,
    alpha: Any,
    t0: Any,
    n_generations: int,
    n_particles: int,
    *,
    carry: str = "analytic",
    T: Any = DEFAULT_T,
    n_steps: int = 500,
    method: str = "em",
    grid: str = "uniform",
    init: str = "exact",
    backend: str = "scan",
    score_error: Callable | Sequence[Callable] | None = None,
    refit_iters: int = 30,
    order: int = 4,
    n_directions: int = 16,
    n_record: int = 20_000,
    progress: bool = True,
    callback: Callable[[int, jax.Array], Any] | None = None,
) -> RetrainResult:
    """Recursive retraining through a reverse-diffusion sampler with the exact score of each training law.

    For generations ``i = 0..N-1``: the training law is ``hat-q_i = alpha p_data + (1 - alpha) hat-p_i``
    (``hat-p_0 = p_data``); ``n_particles`` are drawn by :func:`reverse_sample` driven by the exact score of
    ``P_t hat-q_i`` (plus ``score_error`` if given); the model carried to the next generation is

    - ``carry="analytic"``: the exact law ``hat-p_{i+1} = p_{i+1} = P_{t0} hat-q_i`` (the particles only
      measure the sampler; nothing they contain is fed back);
    - ``carry="particles"``: the empirical law of the particles, ``hat-p_{i+1} = (1/n) sum_j delta_{y_j}``.
      Next round's training law ``alpha p_data + (1-alpha) hat-p_{i+1}`` has point masses, but its pushes
      ``P_t hat-q_{i+1}`` (``t >= t0 > 0``) are Gaussian mixtures with ``K + n`` components whose score is
      exact: the "learner" memorises its training set perfectly. Cost per step is ``O(n (K + n) d)``;
    - ``carry="refit"``: a ``K``-component full-covariance mixture fitted by ``refit_iters`` EM steps to
      the particles (warm-started at the previous model; ``K`` = components of ``p_data``): an imperfect learner.

    Parameters
    ----------
    key : PRNG key; the same key gives the same records.
    data : GaussianMixture, ``p_data``.
    alpha : float in [0, 1], fresh-data fraction. t0 : float > 0, truncation time.
    n_generations, n_particles : int >= 1.
    carry : {"analytic", "particles", "refit"}
    T, n_steps, method, grid, init, backend : sampler options (see :func:`reverse_sample`).
    score_error : callable ``e(x, t)`` or a sequence of ``N`` of them (one per generation), optional.
    order : int, Hermite order of the records. n_directions : int, directions of the sliced W2.
    n_record : int, the W2, delta and moment records use the first ``n_record`` particles (exact W2 costs
        ``O(n K)`` per slice); Hermite coefficients use all particles.
    progress : bool, show a tqdm bar over generations.
    callback : callable ``f(i, particles)``, optional, called after generation ``i`` with its particles
        (e.g. to checkpoint them or to watch resident memory); its return value is ignored.

    Returns
    -------
    RetrainResult
        ``particles`` of the last generation, ``model`` (the last ``hat-p_N`` as a mixture; for
        ``"particles"`` the empirical mixture), and :class:`RetrainRecords`.

    Notes
    -----
    Robustness (docs/conventions.md, "Attenuation and contraction rates"): every 1-D projection ``<u, X>``
    of the recursion is the same recursion in one dimension (the OU semigroup is isotropic and mixing commutes
    with projection), so per direction
    ``W2(hat-p_{i+1}, p_{i+1}) <= delta_i(u) + kappa W2(hat-p_i, p_i)``; by Minkowski over directions the
    sliced W2 obeys ``sliced_w2_i <= w2_bound_i = sum_{j<=i} kappa^{i-j} delta_j <= max delta / (1 - kappa)``
    whenever ``hat-p_{i+1}`` is the law the particles represent (``"particles"``; trivially ``"analytic"``).
    ``delta`` includes the particles' own sampling noise, so the bound needs no extra allowance for it.
    Memory is flat over generations: only the current particles and model are kept.
    """
    gm = as_mixture(data, "data")
    alpha = check_alpha(alpha)
    t0, T = check_times(t0, T)
    N = check_positive_int(n_generations, "n_generations", allow_zero=False)
    n = check_positive_int(n_particles, "n_particles", allow_zero=False)
    n_steps = check_positive_int(n_steps, "n_steps", allow_zero=False)
    order = check_positive_int(order, "order")
    n_record = check_positive_int(n_record, "n_record", allow_zero=False)
    _check_choice(carry, "carry", CARRIES)
    _check_choice(method, "method", METHODS)
    _check_choice(grid, "grid", GRIDS)
    _check_choice(init, "init", INITS)
    _check_choice(backend, "backend", BACKENDS)
    errors = _per_generation_errors(score_error, N, gm.dim)
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be a callable f(i, particles) or None; got {type(callback).__name__}")
    key = _check_key(key) if is_concrete(key) else key
    d = gm.dim
    k_dirs, k_loop = jax.random.split(key)
    U = random_directions(k_dirs, n_directions, d)
    kappa = math.sqrt(1.0 - alpha) * math.exp(-t0)

    rec = {
        name: np.zeros(shape)
        for name, shape in dict(
            hermite=(N, d, order + 1), hermite_se=(N, d, order + 1), hermite_exact=(N, d, order + 1),
            marginal_w2=(N, d), sliced_w2=(N,), sliced_w2_floor=(N,), delta=(N,), w2_bound=(N,),
            mean_error=(N,), cov_error=(N,),
        ).items()
    }
    K_max, K_exact = _max_components(gm, alpha, t0, N, n, carry)
    model = gm
    bound = 0.0
    particles = None
    for i in tqdm(range(N), desc=f"retrain ({carry})", disable=not progress):
        k_sample, k_floor = jax.random.split(jax.random.fold_in(k_loop, i))
        q = mix(alpha, gm, model) if alpha < 1.0 else gm
        K_q = min(K_max, _bucket(q.n_components))  # few distinct sizes: few compilations, little padding
        q_pad = pad_mixture(q, K_q)
        particles = reverse_sample(
            k_sample, q_pad, n, t0=t0, T=T, n_steps=n_steps, method=method, grid=grid, init=init,
            score=mixture_score(q_pad), score_error=errors[i], backend=backend,
        ).particles
        exact = generation(gm, alpha, t0, i + 1)
        ideal = pad_mixture(_push(q, t0), K_q)
        _record(rec, i, particles, exact, ideal, U, order, k_floor, min(K_exact, _bucket(exact.n_components)),
                n_record)
        bound = kappa * bound + rec["delta"][i]
        rec["w2_bound"][i] = bound
        if callback is not None:
            callback(i, particles)
        if carry == "analytic":
            model = exact
        elif carry == "particles":
            model = empirical(particles)
        else:
            model = fit_gmm(particles, _as_full(model if model.n_components == gm.n_components else gm), refit_iters)
    records = RetrainRecords(directions=np.asarray(U), kappa=kappa, **rec)
    return RetrainResult(particles, model, records, carry, alpha, t0)


def _record(rec, i, x, exact: GaussianMixture, ideal: GaussianMixture, U, order, key, K_exact, n_record):
    h, se = sample_hermite_marginals(x, order)
    x = x[:n_record]  # W2 and moment records on a prefix of the (exchangeable) particles
    rec["hermite"][i], rec["hermite_se"][i] = np.asarray(h), np.asarray(se)
    rec["hermite_exact"][i] = np.asarray(mixture_hermite_marginals(exact, order))
    exact_pad = pad_mixture(exact, K_exact)
    rec["marginal_w2"][i] = np.asarray(marginal_w2(x, exact_pad))
    rec["sliced_w2"][i] = float(sliced_w2(x, exact_pad, U))
    rec["sliced_w2_floor"][i] = float(sliced_w2(exact_pad.sample(key, x.shape[0]), exact_pad, U))
    rec["delta"][i] = float(sliced_w2(x, ideal, U))
    rec["mean_error"][i] = float(jnp.linalg.norm(x.mean(axis=0) - exact.mean()))
    rec["cov_error"][i] = float(jnp.linalg.norm(jnp.cov(x.T).reshape(exact.dim, exact.dim) - exact.cov()))


def _bucket(K: int) -> int:
    """Padded size for ``K`` components: powers of 2 up to 32, then multiples of 16.

    Few distinct sizes (one compilation each) with at most 15 padded components once ``K > 32``, where
    the score's cost grows with ``K``.
    """
    if K <= 32:
        return 1 << max(0, (K - 1).bit_length())
    return -(-K // 16) * 16


def _max_components(gm: GaussianMixture, alpha, t0, N: int, n: int, carry: str) -> int:
    """Largest component counts in the run: of training laws (and their ideal outputs), of closed-form laws.

    Mixtures are padded with zero-weight components to these sizes, so each jitted function compiles
    once per run (padding is exact: zero weights have zero responsibility).
    """
    K = gm.n_components
    exact = max(generation(gm, alpha, t0, i).n_components for i in (N - 1, N))
    model = {"analytic": exact, "particles": max(n, K), "refit": K}[carry]
    return K + model, exact


def _as_full(gm: GaussianMixture) -> GaussianMixture:
    return gm if gm.cov_type == "full" else gm.as_cov_type("full")


def _per_generation_errors(score_error, N: int, d: int):
    if score_error is None:
        return [None] * N
    if callable(score_error):
        check_dim(score_error, d, "score_error")
        return [score_error] * N
    errors = list(score_error)
    if len(errors) != N:
        raise ValueError(f"score_error must be a callable or a sequence of n_generations={N}; got length {len(errors)}")
    for e in errors:
        if not callable(e):
            raise ValueError(f"score_error entries must be callables e(x, t); got {type(e).__name__}")
        check_dim(e, d, "score_error")
    return errors
