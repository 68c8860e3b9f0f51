"""``design_schedule``: the truncation schedule (t_0..t_{N-1}) minimising the final spectral error at a
sampling-cost budget, by gradient descent through the closed form.

Error. With ``p_0 = p_data`` every order-m coefficient after N generations is ``f_m^{(N)} a_n(p_data)``,
``f^{(0)} = 1``, ``f^{(i+1)}_m = e^{-m t_i} (alpha + (1 - alpha) f^{(i)}_m)``; the relative spectral error is

    err(t) = sum_{m=1}^{M} (1 - f_m^{(N)}(t))^2 E_m / sum_{m=1}^{M} E_m,   E_m = sum_{|n|=m} a_n(p_data)^2,

the same measure as :func:`hermite_limit.forecast.forecast`: smooth in ``t`` and differentiable by JAX.

Cost model. A reverse diffusion from ``T`` down to ``t_i`` on a geometric time grid with a fixed number of
steps per e-fold costs ``log(T / t_i)`` units (stopping ten times earlier costs ``log 10`` more steps per
unit); the schedule's cost is ``sum_i log(T / t_i)``. The budget defaults to the cost of the constant
schedule ``t_i = t0``. Constraints: ``t_min <= t_i <= T`` and ``cost <= budget``.

Optimiser. Variables ``s_i = log t_i``; Adam (optax) on ``err`` with, after every step, the exact Euclidean
projection onto ``{log t_min <= s_i <= log T, sum_i s_i >= N log T - budget}`` (``s_i <- clip(s_i + lam)``
with ``lam >= 0`` found by bisection). Started from the best equal-cost one-parameter schedule (constant,
power-law ``c / (i + 1)^p`` or geometric ``c r^i``, each with ``c`` set so its cost equals the budget), and
the best iterate is kept, so the design is never worse than that family member.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._mixture import GaussianMixture
from .._precision import x64
from .._validation import _scalar, check_alpha, check_positive_int, check_time


@dataclasses.dataclass
class DesignedSchedule:
    """The designed times, their error and cost, and the equal-cost families it is compared with."""

    times: np.ndarray
    error: float
    cost: float
    budget: float
    t_min: float
    T: float
    alpha: float
    order: int
    families: dict  # name -> {"parameter", "times", "error", "cost"}
    best_family: str
    improvement: float  # best family error / designed error
    cost_model: str = "sum_i log(T / t_i): reverse steps on a geometric grid from T to t_i"

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["times"] = self.times.tolist()
        out["families"] = {k: {**v, "times": np.asarray(v["times"]).tolist()} for k, v in self.families.items()}
        return out


def spectral_error(times, alpha, energies):
    """``err(t)`` (module docstring) in JAX; ``energies`` E_0..E_M (E_0 ignored)."""
    E = jnp.asarray(energies)
    m = jnp.arange(E.shape[0], dtype=E.dtype)

    def step(f, t):
        return jnp.exp(-m * t) * (alpha + (1.0 - alpha) * f), None

    f, _ = jax.lax.scan(step, jnp.ones_like(E), jnp.asarray(times))
    return jnp.sum((1.0 - f[1:]) ** 2 * E[1:]) / jnp.sum(E[1:])


@jax.jit
def _errors(times, alpha, E):
    """``err`` of each row of ``times`` (S, N)."""
    return jax.vmap(lambda t: spectral_error(t, alpha, E))(times)


def schedule_cost(times, T: float) -> float:
    return float(np.sum(np.log(T / np.asarray(times))))


def _energies(data: Any, order: int) -> np.ndarray:
    from ..hermite import energy_spectrum, hermite_coefficients

    if isinstance(data, GaussianMixture) or isinstance(getattr(data, "mixture", None), GaussianMixture):
        gm = data if isinstance(data, GaussianMixture) else data.mixture
        if gm.dim <= 3:
            return np.asarray(hermite_coefficients(gm, order).energies())
        return np.asarray(energy_spectrum(gm, order).energies)
    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim == 1:
        if arr.size < 2 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError("data given as energies must be a finite non-negative vector E_0..E_M (M >= 1)")
        return arr
    if arr.ndim != 2 or not np.all(np.isfinite(arr)):
        raise ValueError("data must be a GaussianMixture, samples (n, d), or energies E_0..E_M")
    return np.asarray(energy_spectrum(arr, order).energies)


def _family_times(family: str, g: float, N: int, S0: float) -> np.ndarray:
    """Member ``g`` of a family, its scale fixed by ``sum log t_i = S0`` (equal cost)."""
    i = np.arange(N, dtype=np.float64)
    if family == "constant":
        shape = np.zeros(N)
    elif family == "power-law":
        shape = -g * np.log(i + 1.0)
    else:  # geometric
        shape = i * math.log(g)
    return np.exp(shape + (S0 - shape.sum()) / N)


def _project(s, lo, hi_s, S0):
    """Euclidean projection onto {lo <= s <= hi_s, sum s >= S0}: s <- clip(s + lam, lo, hi_s), lam >= 0 by
    bisection (feasible because N hi_s >= S0)."""
    def total(lam):
        return jnp.sum(jnp.clip(s + lam, lo, hi_s))

    def bis(_, ab):
        a, b = ab
        c = 0.5 * (a + b)
        ok = total(c) >= S0
        return jnp.where(ok, a, c), jnp.where(ok, c, b)

    hi = jnp.maximum(S0 - jnp.sum(s), 0.0) + 1.0
    a, b = jax.lax.fori_loop(0, 80, bis, (jnp.zeros(()), hi))
    lam = jnp.where(total(0.0) >= S0, 0.0, b)
    return jnp.clip(s + lam, lo, hi_s)


@functools.partial(jax.jit, static_argnames=("n_steps",))
def _optimise(s0, alpha, E, lo, hi_s, S0, lr, *, n_steps: int):
    opt = optax.adam(lr)
    loss = lambda s: spectral_error(jnp.exp(s), alpha, E)
    vg = jax.value_and_grad(loss)

    def body(carry, _):
        s, state, best_s, best_v = carry
        v, g = vg(s)
        better = v < best_v
        best_s = jnp.where(better, s, best_s)
        best_v = jnp.where(better, v, best_v)
        upd, state = opt.update(g, state, s)
        s = _project(optax.apply_updates(s, upd), lo, hi_s, S0)
        return (s, state, best_s, best_v), v

    s0 = _project(s0, lo, hi_s, S0)
    (s, _, best_s, best_v), _ = jax.lax.scan(body, (s0, opt.init(s0), s0, loss(s0)), None, length=n_steps)
    v = loss(s)
    return jnp.where(v < best_v, s, best_s), jnp.minimum(v, best_v)


@x64
def design_schedule(data: Any, alpha: float, n_generations: int, *, t_min: float = 1e-3, budget: float | None = None,
                    t0: float | None = None, T: float = 1.0, order: int = 8, n_steps: int = 3000,
                    learning_rate: float = 0.05) -> DesignedSchedule:
    """Minimise the relative spectral error after ``n_generations`` over the schedule, at a cost budget.

    Parameters
    ----------
    data : GaussianMixture, samples (n, d), or energies ``E_0..E_M`` (a 1-D array; then ``order = M``)
    alpha : float in (0, 1]
    n_generations : int >= 1
    t_min : float > 0, smallest allowed truncation time (numerical stability of the sampler)
    budget : float, allowed cost ``sum_i log(T / t_i)``; default the cost of the constant ``t0`` schedule
    t0 : float > 0, reference constant time defining the default budget (required if ``budget`` is None)
    T : float > 0, the diffusion's start time in the cost model (cost units are relative; T > t_min)
    order : int >= 1, highest order M of the error (ignored for energies)
    n_steps, learning_rate : Adam iterations and step size (on log t)

    Returns
    -------
    DesignedSchedule (module docstring for the error, cost model and optimiser).
    """
    alpha = float(check_alpha(alpha))
    if alpha <= 0:
        raise ValueError("alpha must be > 0 (with alpha = 0 no schedule keeps the data); got alpha=0")
    N = check_positive_int(n_generations, "n_generations", allow_zero=False)
    t_min = float(check_time(t_min, "t_min"))
    T = float(check_time(T, "T"))
    if T <= t_min:
        raise ValueError(f"T must exceed t_min; got T={T}, t_min={t_min}")
    order = check_positive_int(order, "order", allow_zero=False)
    if budget is None:
        if t0 is None:
            raise ValueError("give budget (sum_i log(T / t_i)) or t0 (the constant schedule whose cost is the budget)")
        t0 = float(check_time(t0, "t0"))
        budget = N * math.log(T / t0)
    budget = float(_scalar("budget", budget))
    max_cost = N * math.log(T / t_min)
    if budget < 0 or budget > max_cost + 1e-12:
        raise ValueError(f"budget must lie in [0, N log(T / t_min)] = [0, {max_cost:.4g}]; got budget={budget}")
    n_steps = check_positive_int(n_steps, "n_steps", allow_zero=False)
    E = _energies(data, order)
    if np.sum(E[1:]) <= 0:
        raise ValueError("data has no Hermite energy at orders >= 1 (it is N(0, I)): nothing to protect")
    S0 = N * math.log(T) - budget  # sum log t_i >= S0  <=>  cost <= budget
    lo = math.log(t_min)

    Ej = jnp.asarray(E)
    err = lambda t: float(_errors(jnp.asarray(t)[None], alpha, Ej)[0])
    fams = {"constant": {"parameter": None, "times": _family_times("constant", 0.0, N, S0)}}
    for fam, grid in (("power-law", np.arange(0.0, 4.0001, 0.02)), ("geometric", np.arange(1.0, 0.4999, -0.005))):
        ts = np.stack([_family_times(fam, g, N, S0) for g in grid])
        ok = (ts.min(axis=1) >= t_min * (1 - 1e-12)) & (ts.max(axis=1) <= T * (1 + 1e-12))
        if ok.any():
            errs = np.asarray(_errors(jnp.asarray(ts[ok]), alpha, Ej))
            j = int(np.argmin(errs))
            fams[fam] = {"parameter": float(grid[ok][j]), "times": ts[ok][j], "error": float(errs[j])}
    for v in fams.values():
        v["error"] = err(v["times"])
        v["cost"] = schedule_cost(v["times"], T)
    best_family = min(fams, key=lambda k: fams[k]["error"])
    s0 = jnp.log(jnp.asarray(fams[best_family]["times"]))
    s, v = _optimise(s0, alpha, jnp.asarray(E), lo, math.log(T), S0, learning_rate, n_steps=n_steps)
    times = np.exp(np.asarray(s))
    times = np.clip(times, t_min, T)
    e = err(times)
    return DesignedSchedule(times, e, schedule_cost(times, T), budget, t_min, T, alpha, len(E) - 1, fams, best_family,
                            fams[best_family]["error"] / e if e > 0 else math.inf)
