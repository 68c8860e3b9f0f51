"""Score-error injection, path energies and the observability coefficient (second paper).

Conventions. The learned score is ``s + e`` with ``s = grad log P_t q``. The reverse SDE's drift changes by
``2 e`` while its diffusion is ``sqrt(2)``; Girsanov's density of the learned path law against the ideal
one has exponent ``int <u, dB> - (1/2) int |u|^2 dtau`` with ``u = 2 e / sqrt(2) = sqrt(2) e``, so

    energy  eps^2 = int_{t0}^{T} g^2 E|e(Y_t, t)|^2 dt,  g^2 = 2     (= E int |u|^2),
    martingale  M = int sqrt(2) <e(Y_t, t), dB_t>  (along the ideal path; Var M = star-eps^2, Ito isometry),

and ``KL(learned || ideal) <= (1/2) hat-eps^2`` (expectation along the learned process). Discretised on
the sampler's grid: energy ``sum_k 2 h_k |e(Y_k, t_k)|^2`` and ``M = sum_k sqrt(2) <e(Y_k, t_k), dB_k>``
with ``dB_k = sqrt(h_k) Z_k`` the increment that drives step ``k`` (for Euler-Maruyama the discrete
chains then satisfy the bound exactly: the per-step KL is ``h_k |e|^2``).

Error families (all linear in a scale ``c`` fixed by the requested energy):

- ``aligned``: ``e(x, t) = c W x`` with ``W = I`` (default): the error points along the OU drift
  direction ``x`` (the reverse drift's linear part), i.e. it rescales the score's contraction. With
  ``direction="covariance"``, ``W = Sigma_q / (tr Sigma_q / d)``: along the data covariance.
- ``random``: ``e(x, t) = c W x`` with ``W = G / |G|_F * sqrt(d)`` (same Frobenius norm as ``I``),
  ``G`` a standard Gaussian matrix from the key.
- ``time_only``: ``e(x, t) = xi(t) = c v``, ``v`` a uniform unit vector from the key (constant in time).

Calibration: ``c`` makes the *star* energy (along the ideal process, whose marginals are exactly
``P_t q`` in continuous time from the exact start) equal ``eps^2``. For ``e = W x``:
``E_{P_t q}|W Y|^2 = rho^2 tr(W^T W E_q[X X^T]) + (1 - rho^2) tr(W^T W)``, integrated in closed form:
``star = 2 [(a - b)(e^{-2 t0} - e^{-2T}) / 2 + b (T - t0)]``, ``a = tr(W^T W E_q XX^T)``, ``b = tr(W^T W)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._mixture import as_mixture
from .._precision import x64
from .._validation import (
    FLOAT_BYTES,
    as_float_array,
    check_choice,
    check_int,
    check_key,
    check_memory,
    check_time,
    check_work,
    fmt,
    is_concrete,
    real_scalar,
)
from ._grid import GRIDS, time_grid
from ._reverse import (
    DEFAULT_T,
    INITS,
    check_field,
    check_particles,
    check_sampler_size,
    check_times,
    initial_particles,
    particle_sharding,
)
from ._score import mixture_score
from ._solvers import loop_jit, scan_loop
from ._stats import hermite_table

KINDS = ("aligned", "random", "time_only")


class ScoreError(eqx.Module):
    """An affine score error ``e(x, t) = scale * (W x)`` (``W`` given) or ``scale * v`` (time-only).

    Attributes: ``kind``; ``W`` (d, d) or None; ``v`` (d,) or None; ``scale`` (the calibrated ``c``).
    ``A(t) = scale W`` and ``b(t) = scale v`` are the affine parts (see :func:`gaussian_output_moments`).
    """

    W: Any
    v: Any
    scale: jax.Array
    kind: str = eqx.field(static=True)

    @property
    def dim(self) -> int:
        return int((self.W if self.W is not None else self.v).shape[-1])

    def __call__(self, x, t):
        d = self.dim
        if is_concrete(x):
            arr = as_float_array("x", x)
            if arr.ndim not in (1, 2) or arr.shape[-1] != d:
                raise ValueError(f"x must have shape (n, {d}) or ({d},); got shape {arr.shape}")
        if is_concrete(t):
            check_time(t, "t", allow_zero=True)
        with jax.enable_x64(True):
            x = jnp.asarray(x, dtype=jnp.float64)
            if self.W is not None:
                out = self.scale * (x @ self.W.T)
            else:
                out = jnp.broadcast_to(self.scale * self.v, x.shape)
        if is_concrete(out) and is_concrete(x) and not np.all(np.isfinite(np.asarray(out))):
            raise ValueError(
                f"x out of range: the score error overflows float64 at max|x| = {fmt(float(np.max(np.abs(np.asarray(x)))))} "
                f"(scale {fmt(float(self.scale))})"
            )
        return out

    def affine(self):
        """``(A, b)`` with ``e(x, t) = A x + b`` (constant in time)."""
        d = self.dim
        A = self.scale * self.W if self.W is not None else jnp.zeros((d, d))
        b = self.scale * self.v if self.v is not None else jnp.zeros(d)
        return np.asarray(A), np.asarray(b)


class _AffineField(eqx.Module):
    """A :class:`ScoreError` as the path loops trace it: ``scale * (x W^T)`` where ``has_W``, else ``scale * v``,
    with ``W``, ``v`` and the flag all arrays (zeros where the family has none) and no static field. Every family
    of one dimension is then one pytree structure and the jitted path loop compiles once for all of them (it
    compiled once per family: three compilations of about 1.5 s in the seed-bound check). A select between the
    two exact expressions of :meth:`ScoreError.__call__` gives its values bit for bit (a sum of the two terms
    would let XLA factor out ``scale`` and round differently)."""

    W: jax.Array
    v: jax.Array
    scale: jax.Array
    has_W: jax.Array

    def __call__(self, x, t):
        return jnp.where(self.has_W, self.scale * (x @ self.W.T), self.scale * self.v)


def _traced_error(error):
    """The field ``error`` as the path loops take it: a :class:`ScoreError` becomes an :class:`_AffineField`."""
    if not isinstance(error, ScoreError):
        return error
    d = error.dim
    W = jnp.zeros((d, d)) if error.W is None else jnp.asarray(error.W, jnp.float64)
    v = jnp.zeros(d) if error.v is None else jnp.asarray(error.v, jnp.float64)
    return _AffineField(W, v, jnp.asarray(error.scale, jnp.float64), jnp.asarray(error.W is not None))


def _unit_energy(gm, W, v, t0: float, T: float) -> float:
    """Star energy of the error with scale 1 (closed form, see module notes)."""
    if W is None:
        return 2.0 * float(v @ v) * (T - t0)
    WtW = W.T @ W
    second = gm.cov() + jnp.outer(gm.mean(), gm.mean())
    a = float(jnp.trace(WtW @ second))
    b = float(jnp.trace(WtW))
    I2 = 0.5 * (math.exp(-2.0 * t0) - math.exp(-2.0 * T))
    return 2.0 * ((a - b) * I2 + b * (T - t0))


@x64
def score_error(kind: str, q: Any, eps: Any, *, t0: Any, T: Any = DEFAULT_T, key: Any = None,
                direction: str = "identity", sign: float = 1.0) -> ScoreError:
    """A score error of family ``kind`` scaled so that its star energy over ``[t0, T]`` is ``eps^2``.

    Parameters
    ----------
    kind : {"aligned", "random", "time_only"} (see the module notes for the definitions).
    q : GaussianMixture, the training law (its moments fix the calibration).
    eps : float >= 0, the target ``sqrt(star-eps^2)``. t0, T : the sampler's time interval.
    key : PRNG key, required for ``random`` and ``time_only``.
    direction : {"identity", "covariance"}, for ``aligned`` only. sign : +1 or -1, for ``aligned``.

    Examples
    --------
    >>> import hermite_limit as hl
    >>> q = hl.GaussianMixture([1.0], [[0.0, 0.0]], [1.0])
    >>> e = hl.score_error("aligned", q, 0.1, t0=0.02, T=4.0)
    >>> round(float(e.scale) ** 2 * 2 * 2 * (4.0 - 0.02), 12)  # N(0, I) is stationary: E|x|^2 = 2
    0.01
    """
    gm = as_mixture(q, "q")
    check_choice(kind, "kind", KINDS)
    eps = real_scalar("eps", eps, low=0.0)
    t0, T = check_times(t0, T)
    d = gm.dim
    W = v = None
    if kind == "aligned":
        check_choice(direction, "direction", ("identity", "covariance"))
        if isinstance(sign, (bool, np.bool_)) or not isinstance(sign, (int, float, np.integer, np.floating)) \
                or sign not in (1, -1):
            raise ValueError(f"sign must be +1 or -1; got sign={fmt(sign)}")
        if direction == "identity":
            W = jnp.eye(d)
        else:
            S = gm.cov()
            spread = float(jnp.trace(S))
            if not spread > 0:
                raise ValueError(
                    "direction='covariance' needs a training law q with non-zero covariance; "
                    f"got trace(cov(q)) = {fmt(spread)} (use direction='identity')"
                )
            W = S / (spread / d)
        W = float(sign) * W
    else:
        if key is None:
            raise ValueError(f"key is required for kind={kind!r} (the random direction is drawn from it)")
        key = check_key(key)
        if kind == "random":
            G = jax.random.normal(key, (d, d), dtype=jnp.float64)
            W = G / jnp.linalg.norm(G) * math.sqrt(d)
        else:
            g = jax.random.normal(key, (d,), dtype=jnp.float64)
            v = g / jnp.linalg.norm(g)
    unit = _unit_energy(gm, W, v, t0, T)
    if not math.isfinite(unit):
        raise ValueError(
            f"q out of range: the second moment of q is too large for float64 (the energy of a unit error over "
            f"[t0, T] is {fmt(unit)}); rescale the data"
        )
    scale = jnp.asarray(eps / math.sqrt(unit) if unit > 0 else 0.0)
    return ScoreError(W, v, scale, kind)


@dataclasses.dataclass(frozen=True)
class MCEstimate:
    """A Monte Carlo estimate with its standard error."""

    value: float
    stderr: float

    def __iter__(self):
        return iter((self.value, self.stderr))


@x64
def path_energy(key: Any, q: Any, error: Any, n: int, *, t0: Any, T: Any = DEFAULT_T, n_steps: int = 500,
                method: str = "em", grid: str = "uniform", init: str = "exact", process: str = "learned") -> MCEstimate:
    """Monte Carlo path energy ``sum_k 2 h_k E|e(Y_k, t_k)|^2`` with its standard error.

    ``process="learned"`` gives hat-eps^2 (paths driven by ``s + e``), ``"ideal"`` gives star-eps^2 (paths
    driven by the exact score ``s``). The standard error is ``std(per-path energy) / sqrt(n)``, so ``n >= 2``.
    ``error`` is probed once (shape, finite values) before the paths run; limits on ``n`` and ``n_steps`` are
    those of :func:`reverse_sample`.
    """
    gm, n, times, key = _setup(key, q, error, n, t0, T, n_steps, method, grid, init, min_n=2)
    check_choice(process, "process", ("learned", "ideal"))
    y, energy, _ = _paths(key, gm, n, times, _traced_error(error), method, init, process == "learned",
                          particle_sharding(n))
    check_particles(y, times, method, "paths", user_fields=True)
    e = np.asarray(energy)
    _check_finite_energy(e, "energy")
    return MCEstimate(float(e.mean()), float(e.std(ddof=1) / math.sqrt(n)))


@dataclasses.dataclass(frozen=True)
class Observability:
    """MCEstimate of ``eta = Var(E[M | Y_t0]) / Var(M)`` (see :func:`observability`).

    Attributes
    ----------
    eta, eta_stderr : the ratio and its bootstrap standard error.
    eta_energy : ``Var(E[M | Y_t0]) / star-eps^2`` (the energy-normalised form; equal to ``eta`` up to
        discretisation since ``Var M = star-eps^2``).
    var_cond, var_m, energy_star, energy_star_stderr : the ingredients.
    n_features : number of regression features.
    """

    eta: float
    eta_stderr: float
    eta_energy: float
    var_cond: float
    var_m: float
    energy_star: float
    energy_star_stderr: float
    n_features: int


@x64
def observability(key: Any, q: Any, error: Any, n: int, *, t0: Any, T: Any = DEFAULT_T, n_steps: int = 500,
                  grid: str = "uniform", init: str = "exact", degree: int = 2, n_boot: int = 200) -> Observability:
    """The observability coefficient ``eta = Var(E[M | Y_{t0}]) / Var(M)`` of a score error.

    ``M = sum_k sqrt(2) <e(Y_k, t_k), dB_k>`` is accumulated along ideal Euler-Maruyama paths, each path
    paired with the Brownian increments ``dB_k`` that drive it (so ``M`` is the discretised Girsanov
    exponent's martingale part, see the module notes). ``E[M | Y_{t0}]`` is estimated by least squares on
    the normalised Hermite products ``h_n(z)`` of total degree ``1..degree`` of the standardised endpoint
    ``z``, with two-fold cross-fitting: fit on one half, and estimate ``Var(E[M|Y])`` by ``Cov(M, fit)`` on
    the other (unbiased for the variance of the projection: no overfitting inflation), both ways averaged.
    A finite feature set estimates the variance of a projection of ``E[M | Y]``, so ``eta`` is biased low
    when ``E[M | Y]`` is not in the span (exact for affine errors on Gaussian laws with ``degree >= 1``,
    where ``E[M|Y]`` is linear). Standard error: bootstrap over paths (``n_boot >= 2`` resamples).

    Sizes: the least-squares fit on each half needs more paths than features, so
    ``n >= 2 (n_features + 2)`` with ``n_features = C(d + degree, degree) - 1``; the features
    (``n * n_features`` floats) and the bootstrap (``n_boot * n`` draws) must fit the library's memory and
    work budgets. ``eta`` is undefined (ValueError) when the error vanishes along the paths (``Var M = 0``).
    """
    gm = as_mixture(q, "q")
    degree = check_int(degree, "degree", minimum=1)
    n_features = math.comb(gm.dim + degree, degree) - 1
    min_n = 2 * (n_features + 2)
    gm, n, times, key = _setup(key, q, error, n, t0, T, n_steps, "em", grid, init, min_n=min_n,
                               why=f"two halves, each with more paths than the {n_features} features of degree <= {degree} plus the "
                               "intercept; use more paths or a lower degree")
    check_memory("degree", FLOAT_BYTES * float(n) * n_features, detail=f"{n_features} features of {fmt(n)} paths")
    n_boot = check_int(n_boot, "n_boot", minimum=2)
    check_work("n_boot", float(n_boot) * n, detail=f"n_boot={fmt(n_boot)} resamples of {fmt(n)} paths")
    k_paths, k_boot = jax.random.split(key)
    y, energy, M = _paths(k_paths, gm, n, times, _traced_error(error), "em", init, False, particle_sharding(n))
    check_particles(y, times, "em", "paths", user_fields=True)
    y, energy, M = np.asarray(y), np.asarray(energy), np.asarray(M)
    _check_finite_energy(energy, "energy")
    _check_finite_energy(M, "martingale")
    sd = y.std(axis=0)
    if not np.all(sd > 0):
        raise ValueError("n too small: the path endpoints have zero spread along some axis; use more paths")
    z = (y - y.mean(axis=0)) / sd
    F = _features(z, degree)
    half = n // 2
    parts = [(slice(0, half), slice(half, n)), (slice(half, n), slice(0, half))]
    fits = np.empty(n)
    for fit, test in parts:
        X = np.column_stack([np.ones(F[fit].shape[0]), F[fit]])
        beta, *_ = np.linalg.lstsq(X, M[fit], rcond=None)
        fits[test] = np.column_stack([np.ones(F[test].shape[0]), F[test]]) @ beta

    def ratio(idx):
        m, f = M[idx], fits[idx]
        return np.cov(m, f)[0, 1], m.var(ddof=1)

    cov_mf, var_m = ratio(np.arange(n))
    if not var_m > 0:
        raise ValueError(
            "error vanishes along the paths (Var M = 0, e.g. eps = 0): the observability ratio "
            "Var(E[M | Y]) / Var(M) is undefined"
        )
    rng = np.random.default_rng(np.asarray(jax.random.key_data(k_boot)).ravel()[-1:])
    boots = []
    for _ in range(n_boot):
        c, v = ratio(rng.integers(0, n, n))
        if v > 0:  # a resample of identical paths (probability about n^(1-n)) carries no information
            boots.append(c / v)
    e_star = float(energy.mean())
    return Observability(
        eta=float(cov_mf / var_m),
        eta_stderr=float(np.std(boots, ddof=1)) if len(boots) > 1 else float("inf"),
        eta_energy=float(cov_mf / e_star) if e_star > 0 else float("nan"),
        var_cond=float(cov_mf),
        var_m=float(var_m),
        energy_star=e_star,
        energy_star_stderr=float(energy.std(ddof=1) / math.sqrt(n)),
        n_features=int(F.shape[1]),
    )


def _features(z: np.ndarray, degree: int) -> np.ndarray:
    """Products ``prod_j h_{n_j}(z_j)`` over multi-indices with ``1 <= |n| <= degree``."""
    n, d = z.shape
    H = np.asarray(hermite_table(jnp.asarray(z), degree))  # (n, d, degree+1)
    cols = []

    def rec(j, remaining, current):
        if j == d:
            if remaining < degree:
                cols.append(current)
            return
        for k in range(remaining + 1):
            rec(j + 1, remaining - k, current * H[:, j, k] if k else current)

    rec(0, degree, np.ones(n))
    return np.column_stack(cols)


def _setup(key, q, error, n, t0, T, n_steps, method, grid, init, *, min_n: int = 1, why: str = ""):
    gm = as_mixture(q, "q")
    n, n_steps = check_sampler_size(n, n_steps, gm.dim)
    if n < min_n:
        reason = why or "the standard error needs at least two paths"
        raise ValueError(f"n must be >= {min_n} ({reason}); got n={fmt(n)}")
    t0, T = check_times(t0, T)
    check_choice(method, "method", ("em", "exponential"))
    check_choice(grid, "grid", GRIDS)
    check_choice(init, "init", INITS)
    key = check_key(key)
    check_field(error, "error", gm.dim, T, gm)
    return gm, n, time_grid(t0, T, n_steps, grid), key


def _check_finite_energy(values: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(values)):
        raise ValueError(
            f"error too large: the path {what} overflowed float64 (the score error's values along the paths "
            "are beyond float64's range); use a smaller eps"
        )


@loop_jit
def _paths(key, gm, n, times, error, method, init, learned, sharding):
    k_init, k_noise = jax.random.split(key)
    y0 = initial_particles(k_init, gm, n, times[0], init)
    return scan_loop(k_noise, y0, times, mixture_score(gm), method, sharding, error=error, learned=learned)
