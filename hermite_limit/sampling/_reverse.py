"""``reverse_sample``: particles from the reverse diffusion of a Gaussian-mixture training law."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .._mixture import GaussianMixture, _sample, as_mixture
from .._noise import standard_normal
from .._ou import _push
from .._precision import x64
from .._validation import (
    FLOAT_BYTES,
    as_float_array,
    check_callable,
    check_choice,
    check_int,
    check_key,
    check_memory,
    check_time,
    fmt,
    is_concrete,
)
from ._grid import GRIDS, time_grid
from ._score import MixtureScore, mixture_score
from ._solvers import BACKENDS, METHODS, diffrax_loop, loop_jit, scan_loop

INITS = ("exact", "gaussian")
BROWNIAN = ("unsafe", "tree")
# Size limits of the samplers (refused up front, with the limit in the message). The loop keeps about six
# (n, d) float64 arrays alive (particles, noise, noise words, the score's temporaries), so the particle count
# is bounded by the shared memory budget through ``LIVE_ARRAYS``; the time grid and the scan's length by
# ``MAX_STEPS`` (10^7 steps of even one particle take minutes); and the whole run by ``MAX_ELEMENT_STEPS``
# particle-coordinate steps (10^12: about an hour of a 2-core CPU).
LIVE_ARRAYS = 6
MAX_STEPS = 10**7
MAX_ELEMENT_STEPS = 10**12
# the error-propagation paper's T (docs/conventions.md, "Error propagation"); P_4 moves a law to within ~e^-4 of N(0, I)
DEFAULT_T = 4.0


@dataclasses.dataclass(frozen=True)
class ReverseSample:
    """Particles at OU time ``t0`` with the grid that produced them.

    Attributes
    ----------
    particles : jax.Array (n, d), float64
    times : jax.Array (n_steps + 1,), decreasing OU times ``T = t_0 > ... > t_N = t0``.
    method, grid, init, backend : str
    """

    particles: jax.Array
    times: jax.Array
    method: str
    grid: str
    init: str
    backend: str

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.particles, dtype=dtype)

    @property
    def shape(self):
        return self.particles.shape


def particle_sharding(n: int):
    """``NamedSharding`` of the particle axis over a 1-D mesh of all devices, or None.

    None (single device, or ``n`` not divisible by the device count): everything runs on one device.
    The random numbers are defined on the logical (unsharded) arrays (``jax_threefry_partitionable``), so a
    sharded run draws exactly the same noise as a single-device one.
    """
    devices = jax.devices()
    if len(devices) <= 1 or n % len(devices):
        return None
    mesh = Mesh(np.asarray(devices), ("particles",))
    return NamedSharding(mesh, PartitionSpec("particles"))


@x64
def reverse_sample(
    key: Any,
    q: Any,
    n: int,
    *,
    t0: Any,
    T: Any = DEFAULT_T,
    n_steps: int = 500,
    method: str = "em",
    grid: str = "uniform",
    init: str = "exact",
    score: Callable | None = None,
    score_error: Callable | None = None,
    backend: str = "scan",
    brownian: str = "unsafe",
) -> ReverseSample:
    """Sample the reverse diffusion of ``q`` from OU time ``T`` down to ``t0``: ideally ``P_{t0} q``.

    Parameters
    ----------
    key : PRNG key (``jax.random.key(seed)``); the same key gives the same particles.
    q : GaussianMixture
        The training law. Its exact score ``grad log P_t q`` drives the sampler unless ``score`` is given.
    n : int >= 1, number of particles.
    t0 : float > 0, truncation (early-stopping) time. T : float > t0, start time (default 4).
    n_steps : int >= 1, number of steps of the time grid.
    method : {"em", "exponential", "ode"}
        Euler-Maruyama on the reverse SDE; the exponential integrator (linear part exact); Heun on the
        probability-flow ODE. See ``hermite_limit.sampling._solvers`` for the derivations.
    grid : {"uniform", "geometric"}
        Uniform in ``t``, or geometric (equal ratios, fine near ``t0``).
    init : {"exact", "gaussian"}
        Start from exact draws of ``P_T q`` (no initialisation error) or from ``N(0, I)``.
    score : callable ``(x, t) -> (n, d)``, optional
        A score to use instead of the exact one (``q`` is then still used for ``init="exact"``).
    score_error : callable ``e(x, t)``, optional
        Added to the score: the learned score is ``s + e`` (see :func:`aligned_error` and friends).
    backend : {"scan", "diffrax"}
        ``scan`` (default, faster here: see ``benchmarks/sampling_throughput.py``) or ``diffrax``
        (``em`` and ``ode`` only; ``brownian`` = "unsafe" (UnsafeBrownianPath) or "tree"
        (VirtualBrownianTree)).

    Returns
    -------
    ReverseSample
        ``.particles`` (n, d) and ``.times`` (the grid); ``np.asarray(result)`` gives the particles.

    Notes
    -----
    With several JAX devices the particle axis is sharded over a 1-D mesh (``NamedSharding``); results
    equal the single-device ones. Parameters ``t0``, ``T`` are traced: sweeps over them do not recompile.

    Checks (``ValueError`` / ``TypeError`` naming the argument, before compiling): ``key`` one PRNG key;
    ``n`` within the memory budget (``LIVE_ARRAYS`` arrays of ``n x d`` floats); ``n_steps <= MAX_STEPS``
    and ``n d n_steps <= MAX_ELEMENT_STEPS``; ``score`` / ``score_error`` called once on two points at ``T``
    (finite, shape of ``x``). Particles that come out non-finite, or beyond ``DIVERGED_FACTOR`` times the
    scale of ``P_t0 q`` (steps too long for the explicit scheme), raise naming ``n_steps``.

    Examples
    --------
    >>> import jax, hermite_limit as hl
    >>> q = hl.GaussianMixture([1.0], [[1.0]], [0.5])
    >>> out = hl.reverse_sample(jax.random.key(0), q, 1000, t0=0.1, n_steps=50)
    >>> out.particles.shape, out.times.shape
    ((1000, 1), (51,))
    """
    gm = as_mixture(q, "q")
    n, n_steps = check_sampler_size(n, n_steps, gm.dim)
    t0, T = check_times(t0, T)
    check_choice(method, "method", METHODS)
    check_choice(grid, "grid", GRIDS)
    check_choice(init, "init", INITS)
    check_choice(backend, "backend", BACKENDS)
    check_choice(brownian, "brownian", BROWNIAN)
    if backend == "diffrax" and method == "exponential":
        raise ValueError("method='exponential' is only available with backend='scan'")
    key = check_key(key)
    user_fields = score is not None or score_error is not None
    # a score that is not a mixture's (a learned network) does not depend on the law's component count
    law_free_score = score is not None and not isinstance(score, MixtureScore)
    if score is None:
        score = mixture_score(gm)
    else:
        check_field(score, "score", gm.dim, T, gm)
    if score_error is not None:
        check_field(score_error, "score_error", gm.dim, T, gm)
    times = time_grid(t0, T, n_steps, grid)
    sharding = particle_sharding(n)
    if law_free_score:
        # only the initial draw reads the law's component count: that draw gets its own small compilation and the
        # loop one compilation for every training law of a retraining run (whose generation 0 and later ones have
        # different padded sizes: the loop compiled twice, about 1.5-2 s each); the same particles bit for bit
        k_init, k_noise = jax.random.split(key)
        y0 = _initial_particles_jit(k_init, gm, n, times[0], init)
        y = _loop_core(k_noise, y0, times, score, score_error, method, backend, brownian, sharding)
    else:
        y = _sample_core(key, gm, n, times, score, score_error, method, init, backend, brownian, sharding)
    check_particles(y, times, method, "particles", user_fields=user_fields,
                    scale=None if user_fields else law_scale(gm, t0))
    return ReverseSample(y, times, method, grid, init, backend)


@loop_jit
def _sample_core(key, gm, n, times, score, score_error, method, init, backend, brownian, sharding):
    k_init, k_noise = jax.random.split(key)
    y0 = initial_particles(k_init, gm, n, times[0], init)
    return _loop(k_noise, y0, times, score, score_error, method, backend, brownian, sharding)


def _loop(key, y0, times, score, score_error, method, backend, brownian, sharding):
    """The reverse loop from initial particles ``y0`` (``key``: the noise key, :func:`_sample_core`'s ``k_noise``)."""
    if score_error is not None:
        base = score
        score = lambda x, t: base(x, t) + score_error(x, t)  # noqa: E731
    if backend == "scan":
        return scan_loop(key, y0, times, score, method, sharding)[0]
    return diffrax_loop(key, y0, times, score, method, brownian, sharding)


# the loop alone, compiled once for every law when the score does not read the law (a learned network)
_loop_core = loop_jit(_loop)


@loop_jit
def _initial_particles_jit(key, gm, n, T, init):
    return initial_particles(key, gm, n, T, init)


def initial_particles(key, gm: GaussianMixture, n: int, T, init: str):
    """Draws of ``P_T q`` (``init="exact"``) or of ``N(0, I)`` (``"gaussian"``)."""
    if init == "exact":
        return _sample(_push(gm, T), key, n)
    return standard_normal(key, (n, gm.dim))


# -- validation helpers shared by the sampling modules ---------------------------------------


def check_times(t0, T):
    t0 = check_time(t0, "t0")
    T = check_time(T, "T")
    if is_concrete(t0) and is_concrete(T) and not T > t0:
        raise ValueError(f"T must be > t0; got T={fmt(T)}, t0={fmt(t0)}")
    return t0, T


def check_sampler_size(n, n_steps, d: int, *, name_n: str = "n"):
    """Particle count and step count of a sampler run, within the memory and time limits above."""
    n = check_int(n, name_n, minimum=1)
    check_memory(name_n, float(LIVE_ARRAYS) * FLOAT_BYTES * n * d, detail=f"{name_n}={fmt(n)} particles in d={d}")
    n_steps = check_steps(n_steps)
    if float(n) * d * n_steps > MAX_ELEMENT_STEPS:
        raise ValueError(
            f"n_steps too large for {name_n}={fmt(n)} particles in d={d}: {fmt(n_steps)} steps make "
            f"{float(n) * d * n_steps:.3g} particle-coordinate steps, over the limit of {MAX_ELEMENT_STEPS:.0e} "
            f"(about an hour of CPU); use fewer steps or particles"
        )
    return n, n_steps


def check_steps(n_steps, name: str = "n_steps") -> int:
    """Number of steps of a time grid: an integer in [1, MAX_STEPS]."""
    n_steps = check_int(n_steps, name, minimum=1)
    if n_steps > MAX_STEPS:
        raise ValueError(
            f"{name} too large: {name}={fmt(n_steps)} is over the limit of {MAX_STEPS:,} steps per run "
            f"(a loop that long takes minutes even for one particle); use fewer steps"
        )
    return n_steps


def _check_choice(value, name, choices):
    check_choice(value, name, choices)


def _check_callable(f, name):
    return check_callable(f, name, n_args=2)


def check_dim(f, d: int, name: str):
    """Objects with a ``dim`` (MixtureScore, ScoreError) must match the data dimension."""
    fd = getattr(f, "dim", None)
    if fd is not None and int(fd) != d:
        raise ValueError(f"{name} has dimension {int(fd)} but the training law has dimension {d}")


def _outside_traces() -> bool:
    """True when no JAX transformation is tracing (operations run now)."""
    return not isinstance(jnp.zeros(()), jax.core.Tracer)


def check_field(f, name: str, d: int, t, gm: GaussianMixture | None = None):
    """A vector field ``f(x, t) -> (n, d)`` (a score or a score error): callable with two arguments, of the
    data's dimension, and, probed once at time ``t`` on two points before any sampling, returning a finite
    array of the shape of ``x``. Outside JAX transformations only (the probe needs concrete values)."""
    check_callable(f, name, n_args=2)
    check_dim(f, d, name)
    if not (_outside_traces() and is_concrete(t)):
        return f
    centre = np.zeros(d) if gm is None or not is_concrete(gm.means) else np.asarray(gm.mean()) * np.exp(-float(t))
    x = jnp.asarray(np.stack([centre, centre + 1.0]))
    try:
        with jax.enable_x64(True):
            out = f(x, jnp.asarray(float(t)))
    except Exception as exc:  # noqa: BLE001 - reported with the argument's name, original attached
        raise ValueError(
            f"{name} must be a function (x, t) -> array of x's shape (n, {d}); calling it on x of shape (2, {d}) "
            f"at t={fmt(float(t))} raised {type(exc).__name__}: {exc}"
        ) from exc
    if not is_concrete(out):
        return f
    try:
        arr = as_float_array(name, out)
    except ValueError as exc:
        raise ValueError(f"{name} returned an invalid value at t={fmt(float(t))}: {exc}") from None
    if arr.shape != (2, d):
        raise ValueError(f"{name} must return an array of x's shape (n, {d}); on x of shape (2, {d}) it returned shape {arr.shape}")
    return f


def law_scale(gm: GaussianMixture, t) -> float | None:
    """Root mean square ``sqrt(E|X|^2)`` of ``P_t q`` (None when not concrete)."""
    if not (_outside_traces() and is_concrete(t) and is_concrete(gm.means) and is_concrete(gm.covs)):
        return None
    rho2 = float(np.exp(-2.0 * float(t)))
    second = float(np.trace(np.asarray(gm.cov())) + np.sum(np.asarray(gm.mean()) ** 2))
    return float(np.sqrt(rho2 * second + (1.0 - rho2) * gm.dim))


# Particles farther than this many times the law's root mean square (plus 1) mean the explicit steps
# diverged: by Chebyshev a draw of the law lands there with probability below 1e-12.
DIVERGED_FACTOR = 1e6


def check_particles(y, times, method: str, name: str, *, user_fields: bool = False, scale: float | None = None) -> None:
    """Refuse non-finite sampler output, or output that ran off to ``DIVERGED_FACTOR`` times the scale of the
    target law (eager runs only): the explicit steps diverged or overflowed."""
    if not (is_concrete(y) and is_concrete(times)):
        return
    with jax.enable_x64(True):
        finite = bool(jnp.all(jnp.isfinite(y)))
        reach = float(jnp.max(jnp.abs(y))) if finite and y.size else 0.0
    if finite and (scale is None or reach <= DIVERGED_FACTOR * (scale + 1.0)):
        return
    ts = np.asarray(times)
    h = float(np.max(ts[:-1] - ts[1:])) if ts.size > 1 else 0.0
    extra = " or the given score / score_error" if user_fields else ""
    what = "became non-finite" if not finite else (
        f"ran off to max|x| = {fmt(reach)}, over {DIVERGED_FACTOR:.0e} times the target law's scale {fmt(scale)}")
    raise ValueError(
        f"n_steps too small: the {name} {what} (the {method!r} steps diverged; largest step h = {fmt(h)} "
        f"from T = {fmt(float(ts[0]))}){extra}; explicit steps need h well below 1 and below the variance of "
        f"P_t q at the step's time: increase n_steps or use grid='geometric'"
    )
