"""The retraining loop run through a real reverse-diffusion sampler and a learner, with per-generation records."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from .._limit import generation, limit_distribution
from .._mixture import GaussianMixture, _check_key, as_mixture, mix
from .._ou import _push
from .._precision import x64
from .._pushed import PushedCopies, is_pushed
from .._validation import check_alpha, check_positive_int, is_concrete
from ..hermite._attenuation import attenuation
from ..hermite._polynomials import _polynomials as hermite_table
from ..hermite._spectrum import energy_spectrum
from ._learners import TrainingSet, as_learner, dsm_batch, dsm_loss
from ._reverse import DEFAULT_T, INITS, _check_choice, check_dim, check_times, reverse_sample
from ._grid import GRIDS
from ._score import mixture_score, pad_mixture
from ._solvers import BACKENDS, METHODS
from ._stats import (
    law_cells,
    mixture_hermite_marginals,
    projected_w2,
    projected_w2_cells,
    random_directions,
    sample_hermite_marginals,
)

CARRIES = ("analytic", "particles", "refit")
LIMIT_TOL = 1e-6  # tail mass of the truncated limit behind sliced_w2_limit (its W2 error: records.limit_w2_error)
MAX_LIMIT_COMPONENTS = 50_000  # above this (e.g. empirical data of thousands of points), sliced_w2_limit is NaN
CHECKPOINT = "checkpoint.npz"
MIN_EXACT = 64  # closed-form laws are padded to at least this many components: one compilation for short runs


@dataclasses.dataclass(frozen=True)
class RetrainRecords:
    """Per-generation records of :func:`retrain` (leading axis: generation ``i = 0..N-1``, whose output is ``p_{i+1}``).

    Attributes
    ----------
    hermite, hermite_se : (N, d, order+1)
        Hermite coefficients ``a_n`` of each coordinate marginal of the particles, and their standard errors.
    hermite_exact : (N, d, order+1)
        The same coefficients of the closed-form law ``hl.generation(data, alpha, t0, i+1)``.
    hermite_limit : (d, order+1)
        The same coefficients of the limit ``p_inf``: ``lambda_m a_m(p_data)`` (exact, no truncation).
    hermite_allowance : (N, d, order+1)
        What a W2 distance allows the coefficients to move: ``A_m = sqrt(m) rms(h_{m-1}) * marginal_w2_bound``
        (``rms`` over the first ``n_record`` particles). ``|E h_m(X) - E h_m(Y)| <= W2(X, Y) sqrt(E h_m'(xi)^2)`` with
        ``h_m' = sqrt(m) h_{m-1}``: a bound for ``m <= 2`` (``m = 2`` up to replacing the rms of ``X`` by that of
        the segment), a first-order estimate for ``m >= 3``.
    marginal_w2 : (N, d)
        Exact W2 between each coordinate marginal of the particles and of the closed-form law.
    marginal_delta, marginal_w2_bound : (N, d)
        Per coordinate axis: W2 of the particles to the ideal output ``P_{t0} hat-q_i``, and
        ``sum_{j<=i} kappa^{i-j} marginal_delta_j`` (the W2-ball bound of that axis).
    sliced_w2 : (N,)
        Sliced W2 (root mean square over ``directions``, exact per slice) particles vs closed-form law.
    sliced_w2_floor : (N,)
        The same for ``n_record`` exact draws of the closed-form law: the pure sampling-noise level.
    sliced_w2_limit, sliced_w2_limit_floor : (N,)
        Sliced W2 of the particles to the limit ``p_inf`` (truncated at tail mass ``1e-6``), and the same for
        exact draws of it (one value, repeated: the limit does not change). NaN when the truncated limit would
        have more than 50,000 components (large empirical data sets).
    limit_w2_error : float, a bound on the W2 error of that truncation.
    delta : (N,)
        Sliced W2 between the particles and the ideal output ``P_{t0} hat-q_i`` of the training law actually
        used: the per-generation error (discretisation, finite ``T`` with ``init="gaussian"``, the learner's score
        error and the finite-``n`` sampling noise of the particles themselves).
    w2_bound : (N,)
        ``sum_{j<=i} kappa^{i-j} delta_j`` with ``kappa = sqrt(1-alpha) e^{-t0}``: a rigorous bound on
        ``sliced_w2`` whenever the carried model is the law the particles represent (see :func:`retrain`).
    energy, energy_se : (N, order+1)
        Energy per total order ``E_m = sum_{|n|=m} a_n^2`` of the particles (unbiased U-statistic on the first
        ``n_energy`` particles) and its standard error.
    energy_exact : (N, order+1)
        ``E_m`` of the closed-form law: ``c_{i+1,m}^2 E_m(p_data)``, ``c_{j+1,m} = rho^m (alpha + (1-alpha) c_{j,m})``.
    energy_limit : (order+1,)
        ``lambda_m^2 E_m(p_data)``: the limit's energies (the filtered data energies).
    loss_final, loss_final_se : (N,)
        DSM loss ``E |sigma s(x_t, t) + z|^2 / d`` of the score the sampler used (``x_0`` from the training law,
        ``t`` at 32 log-uniform levels on ``[t0, T]``, ``n_eval`` rows) and its standard error.
    loss_exact : (N,)
        The same loss, same rows, for the exact score of the training law (the minimum of the loss).
    loss_excess_se : (N,)
        Standard error of the paired difference ``loss_final - loss_exact`` (see :attr:`loss_excess`).
    loss_curve : (N, L)
        The learner's training loss averaged over ``L`` equal blocks of steps (``L = 0`` for learners that do not
        train); ``loss_steps`` (L,) the last step of each block.
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
    hermite_limit: np.ndarray = None
    hermite_allowance: np.ndarray = None
    marginal_delta: np.ndarray = None
    marginal_w2_bound: np.ndarray = None
    sliced_w2_limit: np.ndarray = None
    sliced_w2_limit_floor: np.ndarray = None
    limit_w2_error: float = float("nan")
    energy: np.ndarray = None
    energy_se: np.ndarray = None
    energy_exact: np.ndarray = None
    energy_limit: np.ndarray = None
    loss_final: np.ndarray = None
    loss_final_se: np.ndarray = None
    loss_exact: np.ndarray = None
    loss_excess_se: np.ndarray = None
    loss_curve: np.ndarray = None
    loss_steps: np.ndarray = None

    @property
    def loss_excess(self) -> np.ndarray:
        """``loss_final - loss_exact``: the learner's excess DSM loss per generation (0 for the exact score)."""
        return self.loss_final - self.loss_exact


@dataclasses.dataclass(frozen=True)
class RetrainResult:
    """Output of :func:`retrain`: final particles, the final model (a mixture), the records, the learner and its
    final state (e.g. the network weights)."""

    particles: jax.Array
    model: GaussianMixture
    records: RetrainRecords
    carry: str
    alpha: float
    t0: float
    learner: Any = None
    state: Any = None


# per-generation record arrays: name -> shape after the generation axis (d: dimension, o: order + 1)
def _record_shapes(d: int, o: int) -> dict:
    return dict(
        hermite=(d, o), hermite_se=(d, o), hermite_exact=(d, o), hermite_allowance=(d, o),
        marginal_w2=(d,), marginal_delta=(d,), marginal_w2_bound=(d,),
        sliced_w2=(), sliced_w2_floor=(), sliced_w2_limit=(), sliced_w2_limit_floor=(), delta=(), w2_bound=(),
        energy=(o,), energy_se=(o,), energy_exact=(o,),
        loss_final=(), loss_final_se=(), loss_exact=(), loss_excess_se=(),
        mean_error=(), cov_error=(),
    )


@x64
def retrain(
    key: Any,
    data: Any,
    alpha: Any,
    t0: Any,
    n_generations: int,
    n_particles: int,
    *,
    learner: Any = None,
    carry: str | None = None,
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
    n_energy: int = 2000,
    n_eval: int = 2048,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = True,
    callback: Callable[[int, jax.Array], Any] | None = None,
) -> RetrainResult:
    """Recursive retraining through a reverse-diffusion sampler, one :class:`Learner` per generation.

    For generations ``i = 0..N-1``: the training law is ``hat-q_i = alpha p_data + (1 - alpha) hat-p_i``
    (``hat-p_0 = p_data``); the learner fits a score to it (``learner.fit``: from the exact law, or from ``n``
    samples of it: ``round(alpha n)`` fresh draws of ``p_data`` and the rest the previous generation's particles);
    ``n_particles`` are drawn by :func:`reverse_sample` driven by that score (plus ``score_error`` if given); the
    learner then says which law the particles stand for (``learner.model``), and that is ``hat-p_{i+1}``.

    Learners (``hermite_limit.sampling._learners``): ``ExactScore()`` (exact score, closed-form output carried:
    the particles only measure the sampler), ``ParticleScore()`` (exact score, the particles' empirical law
    carried: a perfectly memorising learner), ``RefitScore(n_iter)`` (exact score, an EM mixture fit to the
    particles carried), ``KDEScore(bandwidth)`` and ``NeuralScore(...)`` (scores learned from the samples, the
    particles' empirical law carried). ``carry="analytic" | "particles" | "refit"`` names the first three.

    Parameters
    ----------
    key : PRNG key; the same key gives the same records (bitwise on CPU).
    data : GaussianMixture, ``p_data``.
    alpha : float in [0, 1], fresh-data fraction. t0 : float > 0, truncation time.
    n_generations, n_particles : int >= 1 (``n_particles`` is also the training-set size ``n``).
    learner : a :class:`Learner`; default ``ExactScore()``.
    carry : {"analytic", "particles", "refit"}, optional; a synonym for ``learner`` (not both).
    T, n_steps, method, grid, init, backend : sampler options (see :func:`reverse_sample`).
    score_error : callable ``e(x, t)`` or a sequence of ``N`` of them (one per generation), optional; added to
        the learner's score.
    refit_iters : int, EM steps of ``carry="refit"``.
    order : int, Hermite order of the records. n_directions : int, directions of the sliced W2.
    n_record : int, the W2, delta and moment records use the first ``n_record`` particles (exact W2 costs
        ``O(n K)`` per slice); Hermite coefficients use all particles.
    n_energy : int >= 3, particles in the energy U-statistic (cost ``O(n_energy^2)``).
    n_eval : int >= 32, rows of the DSM-loss evaluation batch.
    checkpoint_dir : path, optional
        After every generation the state of the run (records so far, particles, carried model, learner state,
        settings) is written atomically to ``checkpoint_dir/checkpoint.npz``. A call with a checkpoint present
        resumes after its last completed generation and gives the same records as an uninterrupted run; the
        settings must match (else ValueError), ``n_generations`` may grow. ``score_error`` and ``callback`` are
        not part of the check.
    progress : bool, show a tqdm bar over generations.
    callback : callable ``f(i, particles)``, optional, called after generation ``i`` (after its checkpoint) with its
        particles; its return value is ignored.

    Returns
    -------
    RetrainResult
        ``particles`` of the last generation, ``model`` (the last ``hat-p_N``), :class:`RetrainRecords`, the
        learner and its final state.

    Raises
    ------
    RuntimeError
        Non-finite particles (naming the generation) or a non-finite training loss (naming generation and step).

    Notes
    -----
    Robustness (docs/conventions.md, "Attenuation and contraction rates"): every 1-D projection ``<u, X>``
    of the recursion is the same recursion in one dimension (the OU semigroup is isotropic and mixing commutes
    with projection), so per direction
    ``W2(hat-p_{i+1}, p_{i+1}) <= delta_i(u) + kappa W2(hat-p_i, p_i)``; by Minkowski over directions the
    sliced W2 obeys ``sliced_w2_i <= w2_bound_i = sum_{j<=i} kappa^{i-j} delta_j <= max delta / (1 - kappa)``
    whenever ``hat-p_{i+1}`` is the law the particles represent (every learner here but ``RefitScore``;
    trivially ``ExactScore``). ``delta`` includes the particles' own sampling noise and, for learned scores, the
    learning error, so the bound needs no extra allowance; whether the learner is *good* is whether ``delta``
    (hence the ball) is small. Memory is flat over generations.
    """
    gm = as_mixture(data, "data")
    alpha = check_alpha(alpha)
    t0, T = check_times(t0, T)
    N = check_positive_int(n_generations, "n_generations", allow_zero=False)
    n = check_positive_int(n_particles, "n_particles", allow_zero=False)
    n_steps = check_positive_int(n_steps, "n_steps", allow_zero=False)
    order = check_positive_int(order, "order")
    n_record = check_positive_int(n_record, "n_record", allow_zero=False)
    n_directions = check_positive_int(n_directions, "n_directions", allow_zero=False)
    n_energy = check_positive_int(n_energy, "n_energy", allow_zero=False)
    n_eval = check_positive_int(n_eval, "n_eval", allow_zero=False)
    if n_energy < 3:
        raise ValueError(f"n_energy must be >= 3 (U-statistic with an error); got n_energy={n_energy}")
    if n_eval < 32:
        raise ValueError(f"n_eval must be >= 32 (one row per level of t); got n_eval={n_eval}")
    if carry is not None:
        _check_choice(carry, "carry", CARRIES)
    refit_iters = check_positive_int(refit_iters, "refit_iters", allow_zero=False)
    learner = as_learner(learner, carry, refit_iters)
    if learner.needs_samples and n < 2:
        raise ValueError(f"n_particles must be >= 2 for a learner that trains on samples; got {n}")
    _check_choice(method, "method", METHODS)
    _check_choice(grid, "grid", GRIDS)
    _check_choice(init, "init", INITS)
    _check_choice(backend, "backend", BACKENDS)
    errors = _per_generation_errors(score_error, N, gm.dim)
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be a callable f(i, particles) or None; got {type(callback).__name__}")
    if hasattr(learner, "t_range"):
        learner.t_range(t0, T)  # a training range that misses [t0, T]: fail before any work
    key = _check_key(key) if is_concrete(key) else key
    d = gm.dim
    k_dirs, k_loop = jax.random.split(key)
    U = random_directions(k_dirs, n_directions, d)
    kappa = math.sqrt(1.0 - alpha) * math.exp(-t0)
    rho = math.exp(-t0)

    # constants of the run: the limit, its coefficients and energies, the data energies
    m = np.arange(order + 1)
    lam = np.asarray(attenuation(m, alpha, t0)) if alpha > 0 else (m == 0).astype(float)
    a_data = np.asarray(mixture_hermite_marginals(gm, order))
    e_data = np.asarray(energy_spectrum(gm, order).energies)
    # the limit as a mixture has about log(tol)/log(1-alpha) K components: skipped above MAX_LIMIT_COMPONENTS
    n_terms = 1 if alpha >= 1.0 else (0 if alpha == 0.0 else math.ceil(math.log(LIMIT_TOL) / math.log1p(-alpha)))
    lim = limit_distribution(gm, alpha, t0, LIMIT_TOL) if (n_terms + 1) * gm.n_components <= MAX_LIMIT_COMPONENTS else None
    k_limit = jax.random.fold_in(k_dirs, 1)
    if lim is not None:
        lim_pad = _pad_exact(lim.law)  # empirical data: the structured law, never its N J explicit components
        # the limit's side of the W2 cells is the same every generation (same law, directions and sample count)
        lim_cells = law_cells(lim_pad, U, min(n, n_record))
        limit_floor = _rms(projected_w2_cells(lim_pad.sample(k_limit, min(n, n_record)), U, lim_cells))
    else:
        limit_floor = float("nan")

    shapes = _record_shapes(d, order + 1)
    rec = {name: np.zeros((N,) + shape) for name, shape in shapes.items()}
    rec["loss_curve"] = None
    loss_steps = None
    state = learner.init(jax.random.fold_in(k_dirs, 2), gm)
    model = gm
    particles = None
    start = 0
    fingerprint = _fingerprint(key, gm, learner, dict(
        alpha=alpha, t0=t0, T=T, n=n, n_steps=n_steps, method=method, grid=grid, init=init, backend=backend,
        order=order, n_directions=n_directions, n_record=n_record, n_energy=n_energy, n_eval=n_eval))
    ckpt = None
    if checkpoint_dir is not None:
        ckpt = Path(checkpoint_dir)
        ckpt.mkdir(parents=True, exist_ok=True)
        saved = _load_checkpoint(ckpt / CHECKPOINT, fingerprint, state)
        if saved is not None:
            start = min(saved["completed"], N)
            for name in shapes:
                rec[name][:start] = saved["rec"][name][:start]
            if saved["loss_curve"] is not None:
                rec["loss_curve"] = np.full((N, saved["loss_curve"].shape[1]), np.nan)
                rec["loss_curve"][:start] = saved["loss_curve"][:start]
                loss_steps = saved["loss_steps"]
            particles, model, state = saved["particles"], saved["model"], saved["state"]
            if start < saved["completed"]:
                raise ValueError(f"checkpoint_dir holds {saved['completed']} completed generations, more than "
                                 f"n_generations={N}; use a new directory or n_generations >= {saved['completed']}")

    bound = rec["w2_bound"][start - 1] if start else 0.0
    mbound = rec["marginal_w2_bound"][start - 1] if start else np.zeros(d)
    c_exact = np.ones(order + 1)  # a_n(p_j) = c_{j,|n|} a_n(p_data)
    for _ in range(start):
        c_exact = rho**m * (alpha + (1 - alpha) * c_exact)
    for i in tqdm(range(start, N), desc=f"retrain ({learner.name})", disable=not progress, initial=start, total=N):
        g_key = jax.random.fold_in(k_loop, i)
        k_sample, k_floor = jax.random.split(g_key)
        k_fit, k_set, k_eval, k_extra = jax.random.split(jax.random.fold_in(g_key, 7), 4)
        step = _one_generation(i, (k_set, k_fit, k_sample), gm, model, particles, alpha, t0, T, n, n_steps, learner,
                               state, score_error=errors[i], method=method, grid=grid, init=init, backend=backend)
        learned, particles, state = step.learned, step.particles, step.learned.state
        q_pad = step.training.law
        K_q = q_pad.n_components
        q = step.law
        exact = generation(gm, alpha, t0, i + 1)
        ideal = pad_mixture(_push(q, t0), K_q)
        c_exact = rho**m * (alpha + (1 - alpha) * c_exact)
        _record(rec, i, particles, exact, ideal, U, order, k_floor, n_record)
        bound = kappa * bound + rec["delta"][i]
        rec["w2_bound"][i] = bound
        mbound = kappa * mbound + rec["marginal_delta"][i]
        rec["marginal_w2_bound"][i] = mbound
        h_prev = hermite_table(particles[:n_record], max(order - 1, 0))  # (n_record, d, order)
        rms = np.sqrt(np.mean(np.asarray(h_prev) ** 2, axis=0))
        rec["hermite_allowance"][i][:, 1:] = np.sqrt(m[1:]) * rms[:, :order] * mbound[:, None]
        rec["sliced_w2_limit"][i] = (float("nan") if lim is None else
                                     _rms(projected_w2_cells(particles[:n_record], U, lim_cells)))
        rec["sliced_w2_limit_floor"][i] = limit_floor
        en = energy_spectrum(particles[: min(n, n_energy)], order, method="samples")
        rec["energy"][i], rec["energy_se"][i] = np.asarray(en.energies), np.asarray(en.errors)
        rec["energy_exact"][i] = c_exact**2 * e_data
        score = learned.score if errors[i] is None else _Plus(learned.score, errors[i])
        x0, tt, z = dsm_batch(k_eval, q_pad, n_eval, t0, T)
        lf = np.asarray(dsm_loss(score, x0, tt, z))
        le = np.asarray(dsm_loss(mixture_score(q_pad), x0, tt, z))
        rec["loss_final"][i], rec["loss_final_se"][i] = lf.mean(), lf.std(ddof=1) / math.sqrt(lf.size)
        rec["loss_exact"][i] = le.mean()
        rec["loss_excess_se"][i] = (lf - le).std(ddof=1) / math.sqrt(lf.size)
        curve = learned.info.get("loss_curve")
        if curve is not None:
            curve = np.asarray(curve, dtype=np.float64)
            if rec["loss_curve"] is None:
                rec["loss_curve"] = np.full((N, curve.size), np.nan)
                loss_steps = np.asarray(learned.info.get("loss_steps", np.arange(curve.size)))
            rec["loss_curve"][i] = curve
        model, state = learner.model(particles, step.training, state)
        if ckpt is not None:
            _save_checkpoint(ckpt / CHECKPOINT, fingerprint, i + 1, rec, particles, model, state, loss_steps)
        if callback is not None:
            callback(i, particles)
    loss_curve = rec.pop("loss_curve")
    records = RetrainRecords(
        directions=np.asarray(U), kappa=kappa, hermite_limit=lam * a_data, limit_w2_error=float("nan") if lim is None else float(lim.w2_error_bound),
        energy_limit=lam**2 * e_data, loss_curve=np.zeros((N, 0)) if loss_curve is None else loss_curve,
        loss_steps=np.zeros(0, dtype=int) if loss_steps is None else np.asarray(loss_steps), **rec,
    )
    return RetrainResult(particles, model, records, learner.name, alpha, t0, learner, state)


@dataclasses.dataclass(frozen=True)
class _Generation:
    """What one generation of the retraining loop produced (see :func:`_one_generation`)."""

    law: GaussianMixture  # the training law hat-q_i, unpadded
    training: TrainingSet
    learned: Any  # the learner's Learned: score, state, info
    particles: jax.Array  # (n, d) samples of hat-p_{i+1}
    fit_seconds: float
    sample_seconds: float


def _one_generation(i: int, keys, data: GaussianMixture, model, particles, alpha: float, t0: float, T: float, n: int,
                    n_steps: int, learner, state, *, score_error=None, context: str = "retrain", **sampler) -> _Generation:
    """Generation ``i`` of the retraining loop, the one body that :func:`retrain`, the digits job and the
    learned-generation benchmark share.

    The training law is ``hat-q_i = alpha p_data + (1 - alpha) model`` (``model`` is what the previous generation
    left, ``p_data`` itself for ``i = 0``), zero-weight padded to a bucketed size; a learner that trains on samples
    gets ``round(alpha n)`` fresh draws and ``n - round(alpha n)`` rows of ``particles`` (see
    :func:`_training_samples`); ``learner.fit`` gives the score; :func:`reverse_sample` driven by it (plus
    ``score_error``; sampler options in ``sampler``) gives ``n`` particles. ``keys = (k_set, k_fit, k_sample)``.
    Training and sampling are timed apart (``fit_seconds``, ``sample_seconds``, each synchronised). A sampler
    refusal or a non-finite particle raises RuntimeError naming ``context``, the generation and the learner.
    """
    k_set, k_fit, k_sample = keys
    q = mix(alpha, data, model) if alpha < 1.0 else data
    q_pad = pad_mixture(q, _bucket(q.n_components))  # few distinct sizes: few compilations, little padding
    samples = _training_samples(k_set, data, particles, alpha, n) if learner.needs_samples else None
    if samples is not None:
        samples = jax.block_until_ready(samples)  # its draw is not part of fit_seconds
    training = TrainingSet(i, data, alpha, t0, T, q_pad, particles, samples)
    start = time.perf_counter()
    learned = learner.fit(k_fit, training, state)
    jax.block_until_ready(jax.tree_util.tree_leaves(learned.state))
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    try:
        new = reverse_sample(k_sample, q_pad, n, t0=t0, T=T, n_steps=n_steps, score=learned.score,
                             score_error=score_error, **sampler).particles
    except ValueError as exc:  # the sampler refused the learned score or its output (non-finite, diverged)
        raise RuntimeError(f"{context}: non-finite particles in generation {i} (learner {learner.name!r}): {exc}; "
                           "the run stops here") from exc
    finite = bool(jnp.all(jnp.isfinite(new)))
    sample_seconds = time.perf_counter() - start
    if not finite:
        raise RuntimeError(f"{context}: non-finite particles in generation {i} (reverse-SDE sampling, {n_steps} "
                           f"steps, learner {learner.name!r}); the run stops here")
    return _Generation(q, training, learned, new, fit_seconds, sample_seconds)


class _Plus(eqx.Module):
    base: Any
    extra: Any

    def __call__(self, x, t):
        return self.base(x, t) + self.extra(x, t)


def _training_samples(key, data: GaussianMixture, previous, alpha: float, n: int):
    """``round(alpha n)`` fresh draws of ``p_data``, then ``n - round(alpha n)`` rows of ``previous`` drawn without
    replacement (draws of ``p_data`` when there is no previous generation): a sample of the training law."""
    if previous is None:
        # generation 0: all n rows fresh. A placeholder previous generation (never selected: n_fresh = n) keeps
        # the call on the later generations' compilation; the draws are the same bits.
        previous, n_fresh = jnp.zeros((n, data.dim)), jnp.asarray(n)
    else:
        n_fresh = jnp.asarray(int(round(alpha * n)))  # traced: one compilation for every alpha
    return _training_samples_jit(key, data, jnp.asarray(previous), n_fresh, n)


@eqx.filter_jit
def _training_samples_jit(key, data, previous, n_fresh, n: int):
    k_fresh, k_prev = jax.random.split(key)
    fresh = data.sample(k_fresh, n)
    old = previous[jax.random.permutation(k_prev, previous.shape[0])[:n]]
    return jnp.where((jnp.arange(n) < n_fresh)[:, None], fresh, old)


def _pad_exact(exact):
    """The closed-form generation padded to few distinct shapes (one compilation for many generations): a mixture
    to :func:`_bucket` components (at least ``MIN_EXACT``); pushed copies of empirical data (never expanded into
    their ``N J`` components) to :func:`_bucket` terms, the added terms with weight 0."""
    if not is_pushed(exact):
        return pad_mixture(exact, _bucket(max(exact.n_components, MIN_EXACT)))
    J = exact.n_terms
    extra = _bucket(J) - J
    if extra == 0:
        return exact
    z = jnp.zeros(extra)
    return PushedCopies.tree_unflatten(None, (exact.points, exact.point_weights, jnp.concatenate([exact.rho, z]),
                                              jnp.concatenate([exact.var, z + 1.0]), jnp.concatenate([exact.term_weights, z])))


def _record(rec, i, x, exact, ideal: GaussianMixture, U, order, key, n_record):
    h, se = sample_hermite_marginals(x, order)
    x = x[:n_record]  # W2 and moment records on a prefix of the (exchangeable) particles
    d, L = exact.dim, U.shape[0]
    sl = slice(0, L)
    if d == 1 and L == 1 and float(U[0, 0]) == 1.0:
        # one dimension: the only slice is the axis itself, so the marginal values are the slice's (computing the
        # same projection twice cost twice the time, and a compilation of its own beside the limit's on U)
        W, mg = U, sl
    else:
        W, mg = jnp.concatenate([U, jnp.eye(d)]), slice(L, None)  # slices, then axes: one compiled W2 per size
    rec["hermite"][i], rec["hermite_se"][i] = np.asarray(h), np.asarray(se)
    exact_pad = _pad_exact(exact)  # few distinct sizes: one compilation per size for the statistics below
    rec["hermite_exact"][i] = np.asarray(mixture_hermite_marginals(exact_pad, order))
    cells = law_cells(exact_pad, W, x.shape[0])  # the particles and the floor's exact draws share the law's side
    w_exact = projected_w2_cells(x, W, cells)
    w_ideal = projected_w2(x, ideal, W)
    w_floor = projected_w2_cells(exact_pad.sample(key, x.shape[0]), W, cells)
    rec["marginal_w2"][i] = np.asarray(w_exact[mg])
    rec["marginal_delta"][i] = np.asarray(w_ideal[mg])
    rec["sliced_w2"][i] = _rms(w_exact[sl])
    rec["sliced_w2_floor"][i] = _rms(w_floor[sl])
    rec["delta"][i] = _rms(w_ideal[sl])
    rec["mean_error"][i] = float(jnp.linalg.norm(x.mean(axis=0) - exact.mean()))
    rec["cov_error"][i] = float(jnp.linalg.norm(jnp.cov(x.T).reshape(exact.dim, exact.dim) - exact.cov()))


def _rms(w) -> float:
    """Sliced W2 from per-slice W2 values: ``sqrt(mean_l W2_l^2)`` (as :func:`sliced_w2`)."""
    return float(jnp.sqrt(jnp.mean(w**2)))


# -- checkpoints -----------------------------------------------------------------------------------


def _fingerprint(key, gm: GaussianMixture, learner, settings: dict) -> str:
    h = hashlib.sha256()
    for a in (gm.weights, gm.means, gm.covs):
        h.update(np.ascontiguousarray(np.asarray(a, dtype=np.float64)).tobytes())
    kd = np.asarray(jax.random.key_data(key)) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else np.asarray(key)
    settings = dict(settings, data=h.hexdigest(), key=kd.tolist(), learner=repr(learner))
    return json.dumps(settings, sort_keys=True)


def _save_checkpoint(path: Path, fingerprint: str, completed: int, rec: dict, particles, model, state, loss_steps):
    arrays = {f"rec_{k}": v for k, v in rec.items() if v is not None}
    if loss_steps is not None:
        arrays["loss_steps"] = np.asarray(loss_steps)
    arrays["particles"] = np.asarray(particles)
    arrays["model_weights"], arrays["model_means"], arrays["model_covs"] = (
        np.asarray(model.weights), np.asarray(model.means), np.asarray(model.covs))
    leaves = [leaf for leaf in jax.tree_util.tree_leaves(state) if eqx.is_array(leaf)]
    for j, leaf in enumerate(leaves):
        arrays[f"state_{j}"] = np.asarray(leaf)
    arrays["meta"] = np.asarray(json.dumps({"fingerprint": fingerprint, "completed": completed, "n_state": len(leaves)}))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _load_checkpoint(path: Path, fingerprint: str, template):
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        if meta["fingerprint"] != fingerprint:
            old, new = json.loads(meta["fingerprint"]), json.loads(fingerprint)
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ValueError(f"checkpoint_dir holds a run with different settings ({', '.join(diff)}); "
                             f"use a new checkpoint_dir or the same settings")
        rec = {k[4:]: z[k] for k in z.files if k.startswith("rec_")}
        leaves, treedef = jax.tree_util.tree_flatten(template)
        slots = [j for j, leaf in enumerate(leaves) if eqx.is_array(leaf)]
        if len(slots) != meta["n_state"]:
            raise ValueError("checkpoint_dir: the saved learner state does not match the learner")
        for k, j in enumerate(slots):
            leaves[j] = jnp.asarray(z[f"state_{k}"])
        state = jax.tree_util.tree_unflatten(treedef, leaves)
        model = GaussianMixture.tree_unflatten(None, tuple(jnp.asarray(z[f"model_{k}"]) for k in ("weights", "means", "covs")))
        return dict(
            completed=int(meta["completed"]), rec=rec, loss_curve=rec.pop("loss_curve", None),
            loss_steps=z["loss_steps"] if "loss_steps" in z.files else None,
            particles=jnp.asarray(z["particles"]), model=model, state=state,
        )


def _bucket(K: int) -> int:
    """Padded size for ``K`` components: powers of 2 up to 32, then multiples of 16.

    Few distinct sizes (one compilation each) with at most 15 padded components once ``K > 32``, where
    the score's cost grows with ``K``.
    """
    if K <= 32:
        return 1 << max(0, (K - 1).bit_length())
    return -(-K // 16) * 16


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
