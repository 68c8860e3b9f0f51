"""``reverse_sample``: particles from the reverse diffusion of a Gaussian-mixture training law."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .._mixture import GaussianMixture, _check_key, _sample, as_mixture
from .._noise import standard_normal
from .._ou import _push
from .._precision import x64
from .._validation import check_positive_int, check_time, is_concrete
from ._grid import GRIDS, time_grid
from ._score import mixture_score
from ._solvers import BACKENDS, METHODS, diffrax_loop, loop_jit, scan_loop

INITS = ("exact", "gaussian")
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

    Examples
    --------
    >>> import jax, hermite_limit as hl
    >>> q = hl.GaussianMixture([1.0], [[1.0]], [0.5])
    >>> out = hl.reverse_sample(jax.random.key(0), q, 1000, t0=0.1, n_steps=50)
    >>> out.particles.shape, out.times.shape
    ((1000, 1), (51,))
    """
    gm = as_mixture(q, "q")
    n = check_positive_int(n, "n", allow_zero=False)
    t0, T = check_times(t0, T)
    n_steps = check_positive_int(n_steps, "n_steps", allow_zero=False)
    _check_choice(method, "method", METHODS)
    _check_choice(grid, "grid", GRIDS)
    _check_choice(init, "init", INITS)
    _check_choice(backend, "backend", BACKENDS)
    if backend == "diffrax" and method == "exponential":
        raise ValueError("method='exponential' is only available with backend='scan'")
    key = _check_key(key) if is_concrete(key) else key
    score = mixture_score(gm) if score is None else _check_callable(score, "score")
    if score_error is not None:
        _check_callable(score_error, "score_error")
        check_dim(score_error, gm.dim, "score_error")
    check_dim(score, gm.dim, "score")
    times = time_grid(t0, T, n_steps, grid)
    sharding = particle_sharding(n)
    y = _sample_core(key, gm, n, times, score, score_error, method, init, backend, brownian, sharding)
    return ReverseSample(y, times, method, grid, init, backend)


@loop_jit
def _sample_core(key, gm, n, times, score, score_error, method, init, backend, brownian, sharding):
    k_init, k_noise = jax.random.split(key)
    y0 = initial_particles(k_init, gm, n, times[0], init)
    if score_error is not None:
        base = score
        score = lambda x, t: base(x, t) + score_error(x, t)  # noqa: E731
    if backend == "scan":
        return scan_loop(k_noise, y0, times, score, method, sharding)[0]
    return diffrax_loop(k_noise, y0, times, score, method, brownian, sharding)


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
        raise ValueError(f"T must be > t0; got T={T!r}, t0={t0!r}")
    return t0, T


def _check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {name}={value!r}")


def _check_callable(f, name):
    if not callable(f):
        raise ValueError(f"{name} must be a callable (x, t) -> array of shape x.shape; got {type(f).__name__}")
    return f


def check_dim(f, d: int, name: str):
    """Objects with a ``dim`` (MixtureScore, ScoreError) must match the data dimension."""
    fd = getattr(f, "dim", None)
    if fd is not None and int(fd) != d:
        raise ValueError(f"{name} has dimension {int(fd)} but the training law has dimension {d}")
